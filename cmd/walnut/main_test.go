package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/proxy"
)

// runArgs runs walnut in this process; it must not reach serve.
func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// statsFields are every pool and server field of nutcracker's stats.
var statsFields = []string{
	"client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments",
	"server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at",
	"requests", "request_bytes", "responses", "response_bytes",
	"in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes",
}

func TestRunInformational(t *testing.T) {
	versionLine := "This is walnut-" + version + "\n"
	tests := []struct {
		give       []string
		wantStdout string
		wantStderr string
	}{
		// -V alone goes to stdout (nutcracker: stderr), so that
		// `walnut -V | …` works; see doc.go.
		{give: []string{"-V"}, wantStdout: versionLine},
		{give: []string{"--version"}, wantStdout: versionLine},
		{give: []string{"-h"}, wantStderr: versionLine + "\n" + usage},
		{give: []string{"--help"}, wantStderr: versionLine + "\n" + usage},
		{give: []string{"-?"}, wantStderr: versionLine + "\n" + usage},
		{give: []string{"-hV"}, wantStderr: versionLine + "\n" + usage},
		{give: []string{"-D"}, wantStderr: versionLine + "\n" + proxy.DescribeStats},
		{give: []string{"--describe-stats"}, wantStderr: versionLine + "\n" + proxy.DescribeStats},
		{give: []string{"-h", "-D"}, wantStderr: versionLine + "\n" + usage + "\n" + proxy.DescribeStats},
		// Informational flags win over -t and -d, as in nutcracker.
		{give: []string{"-t", "-V", "-c", "/nonexistent.yml"}, wantStdout: versionLine},
		{give: []string{"-d", "-D"}, wantStderr: versionLine + "\n" + proxy.DescribeStats},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			code, stdout, stderr := runArgs(tt.give...)
			assert.Equal(t, 0, code)
			assert.Equal(t, tt.wantStdout, stdout)
			assert.Equal(t, tt.wantStderr, stderr)
		})
	}
}

func TestDescribeStatsHasEveryField(t *testing.T) {
	code, _, stderr := runArgs("-D")
	require.Equal(t, 0, code)
	for _, f := range statsFields {
		assert.Regexp(t, `(?m)^  `+f+` +"`, stderr, "field %s", f)
	}
}

func TestUsageMentionsDifferences(t *testing.T) {
	assert.Contains(t, usage, "(default: 127.0.0.1)")
	assert.Contains(t, usage, "nutcracker: 0.0.0.0")
	assert.Contains(t, usage, "walnut has no mbufs")
	for _, f := range []string{"--help", "--version", "--test-conf", "--daemonize", "--describe-stats",
		"--verbose=N", "--output=S", "--conf-file=S", "--stats-port=N", "--stats-addr=S",
		"--stats-interval=N", "--pid-file=S", "--mbuf-size=N"} {
		assert.Contains(t, usage, f)
	}
}

func TestRunBadOptions(t *testing.T) {
	tests := []struct {
		give []string
		want string // first line of stderr
	}{
		{give: []string{"-v", "x"}, want: "walnut: option -v requires a number"},
		{give: []string{"-v", "-1"}, want: "walnut: option -v requires a number"},
		{give: []string{"-v", ""}, want: "walnut: option -v requires a number"},
		{give: []string{"--verbose=x"}, want: "walnut: option -v requires a number"},
		{give: []string{"-v"}, want: "walnut: option -v requires a number"},
		{give: []string{"--verbose"}, want: "walnut: option -v requires a number"},
		{give: []string{"-s", "0"}, want: "walnut: option -s value 0 is not a valid port"},
		{give: []string{"-s", "70000"}, want: "walnut: option -s value 70000 is not a valid port"},
		{give: []string{"-s", "99999999999"}, want: "walnut: option -s value 99999999999 is not a valid port"},
		{give: []string{"-s", "x"}, want: "walnut: option -s requires a number"},
		{give: []string{"-s"}, want: "walnut: option -s requires a number"},
		{give: []string{"-m", "100"}, want: "walnut: mbuf chunk size must be between 512 and 16777216 bytes"},
		{give: []string{"-m", "16777217"}, want: "walnut: mbuf chunk size must be between 512 and 16777216 bytes"},
		{give: []string{"-m", "0"}, want: "walnut: option -m requires a non-zero number"},
		{give: []string{"-m", "x"}, want: "walnut: option -m requires a non-zero number"},
		{give: []string{"-m"}, want: "walnut: option -m requires a number"},
		{give: []string{"-i", "-1"}, want: "walnut: option -i requires a number"},
		{give: []string{"--loops=x"}, want: "walnut: option --loops requires a number from 0 to 1024"},
		{give: []string{"--loops=1025"}, want: "walnut: option --loops requires a number from 0 to 1024"},
		{give: []string{"-i"}, want: "walnut: option -i requires a number"},
		{give: []string{"-i", "3000000000"}, want: "walnut: option -i value 3000000000 is too large (the maximum is 2147483647)"},
		{give: []string{"-c"}, want: "walnut: option -c requires a file name"},
		{give: []string{"-o"}, want: "walnut: option -o requires a file name"},
		{give: []string{"-p"}, want: "walnut: option -p requires a file name"},
		{give: []string{"--pid-file"}, want: "walnut: option -p requires a file name"},
		{give: []string{"-a"}, want: "walnut: option -a requires a string"},
		{give: []string{"-x"}, want: "walnut: invalid option -- 'x'"},
		{give: []string{"-hx"}, want: "walnut: invalid option -- 'x'"},
		{give: []string{"--bogus"}, want: "walnut: unrecognized option '--bogus'"},
		{give: []string{"---x"}, want: "walnut: unrecognized option '---x'"},
		{give: []string{"conf.yml"}, want: "walnut: unexpected argument 'conf.yml'"},
		// The first bad option is reported, even after -h.
		{give: []string{"-h", "-s", "0"}, want: "walnut: option -s value 0 is not a valid port"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			code, stdout, stderr := runArgs(tt.give...)
			assert.Equal(t, 1, code)
			assert.Empty(t, stdout)
			first, rest, _ := strings.Cut(stderr, "\n")
			assert.Equal(t, tt.want, first)
			assert.Equal(t, usage, rest)
		})
	}
}

func TestParseOptions(t *testing.T) {
	defaults := options{
		verbosity:     5,
		confFile:      "conf/nutcracker.yml",
		statsPort:     22222,
		statsAddr:     "127.0.0.1",
		statsInterval: 30000,
		mbufSize:      16384,
		loops:         defaultLoops(),
	}
	with := func(f func(*options)) options {
		o := defaults
		f(&o)
		return o
	}
	tests := []struct {
		give []string
		want options
	}{
		{give: nil, want: defaults},
		{give: []string{"--loops=0"}, want: with(func(o *options) { o.loops = 0 })},
		{give: []string{"--loops", "3"}, want: with(func(o *options) { o.loops = 3 })},
		{give: []string{"-v", "0"}, want: with(func(o *options) { o.verbosity = 0 })},
		{give: []string{"-v", "99"}, want: with(func(o *options) { o.verbosity = 11 })},
		{give: []string{"-v7"}, want: with(func(o *options) { o.verbosity = 7 })},
		{give: []string{"--verbose=11"}, want: with(func(o *options) { o.verbosity = 11 })},
		{give: []string{"--verbose", "6"}, want: with(func(o *options) { o.verbosity = 6 })},
		{give: []string{"-s", "1"}, want: with(func(o *options) { o.statsPort = 1 })},
		{give: []string{"--stats-port=65535"}, want: with(func(o *options) { o.statsPort = 65535 })},
		{give: []string{"-s", "00080"}, want: with(func(o *options) { o.statsPort = 80 })},
		{give: []string{"-i", "0"}, want: with(func(o *options) { o.statsInterval = 0 })},
		{give: []string{"--stats-interval=100"}, want: with(func(o *options) { o.statsInterval = 100 })},
		{give: []string{"-m", "512"}, want: with(func(o *options) { o.mbufSize = 512 })},
		{give: []string{"--mbuf-size=16777216"}, want: with(func(o *options) { o.mbufSize = 16777216 })},
		{give: []string{"-c", "x.yml", "-o", "x.log", "-p", "x.pid", "-a", "0.0.0.0"}, want: with(func(o *options) {
			o.confFile, o.output, o.pidFile, o.statsAddr = "x.yml", "x.log", "x.pid", "0.0.0.0"
		})},
		{give: []string{"--conf-file=y.yml", "--output=y.log", "--pid-file=y.pid", "--stats-addr=::1"}, want: with(func(o *options) {
			o.confFile, o.output, o.pidFile, o.statsAddr = "y.yml", "y.log", "y.pid", "::1"
		})},
		// getopt takes the next argument as the value, even if it starts with '-'.
		{give: []string{"-c", "-x"}, want: with(func(o *options) { o.confFile = "-x" })},
		{give: []string{"-tdD"}, want: with(func(o *options) { o.testConf, o.daemonize, o.describeStats = true, true, true })},
		{give: []string{"--test-conf", "--daemonize"}, want: with(func(o *options) { o.testConf, o.daemonize = true, true })},
		{give: []string{"-s", "1", "-s", "2"}, want: with(func(o *options) { o.statsPort = 2 })},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			got, err := parseOptions(tt.give)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func TestTestConf(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", `alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  redis: true
  servers:
    - 127.0.0.1:6379:1
beta:
  listen: /tmp/beta.sock 0600
  servers:
    - 127.0.0.1:11211:1 mc
`)
	badHash := writeFile(t, dir, "bad_hash.yml", `alpha:
  listen: 127.0.0.1:22121
  servers:
    - 127.0.0.1:6379:1
  hash: sha1
`)
	badKey := writeFile(t, dir, "bad_key.yml", `alpha:
  listen: 127.0.0.1:22121
  servers:
    - 127.0.0.1:6379:1
beta:
  listen: 127.0.0.1:22122
  bogus: 1
  servers:
    - 127.0.0.1:6379:1
`)
	badRefuse := writeFile(t, dir, "bad_refuse.yml", `alpha:
  listen: 127.0.0.1:22121
  redis: true
  redis_refuse_commands:
    - flushall
    - nosuch
  servers:
    - 127.0.0.1:6379:1
`)
	missing := filepath.Join(dir, "missing.yml")
	tests := []struct {
		name     string
		give     string
		wantCode int
		want     []string // the lines of stderr, as regular expressions
	}{
		{
			name: "good", give: good, wantCode: 0,
			want: []string{`^walnut: configuration file '` + good + `' syntax is ok$`},
		},
		{
			name: "bad hash", give: badHash, wantCode: 1,
			want: []string{
				`^` + badHash + `:5: pool "alpha": key "hash": .*sha1`,
				`^walnut: configuration file '` + badHash + `' syntax is invalid$`,
			},
		},
		{
			name: "unknown key", give: badKey, wantCode: 1,
			want: []string{
				`^` + badKey + `:7: pool "beta": key "bogus": `,
				`^walnut: configuration file '` + badKey + `' syntax is invalid$`,
			},
		},
		{
			name: "unknown refused command", give: badRefuse, wantCode: 1,
			want: []string{
				`^` + badRefuse + `:1: proxy: pool "alpha": redis_refuse_commands: "nosuch" is not a Redis command$`,
				`^walnut: configuration file '` + badRefuse + `' syntax is invalid$`,
			},
		},
		{
			name: "missing file", give: missing, wantCode: 1,
			want: []string{
				`no such file or directory`,
				`^walnut: configuration file '` + missing + `' syntax is invalid$`,
			},
		},
	}
	for _, tt := range tests {
		for _, flag := range []string{"-t", "--test-conf"} {
			t.Run(tt.name+" "+flag, func(t *testing.T) {
				code, stdout, stderr := runArgs(flag, "-c", tt.give)
				assert.Equal(t, tt.wantCode, code)
				assert.Empty(t, stdout)
				lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
				require.Len(t, lines, len(tt.want), stderr)
				for i, re := range tt.want {
					assert.Regexp(t, re, lines[i])
				}
			})
		}
	}
}

func TestSlogLevel(t *testing.T) {
	want := []slog.Level{
		slog.LevelError, slog.LevelError, slog.LevelError, slog.LevelError, // 0..3
		slog.LevelWarn,                 // 4
		slog.LevelInfo, slog.LevelInfo, // 5, 6
		slog.LevelDebug, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug, // 7..11
	}
	for n, w := range want {
		assert.Equal(t, w, slogLevel(n), "verbosity %d", n)
	}
}

func TestVerbosityAdd(t *testing.T) {
	v := newVerbosity(10)
	assert.Equal(t, 11, v.add(1))
	assert.Equal(t, 11, v.add(1), "clamped at 11")
	assert.Equal(t, slog.LevelDebug, v.level.Level())
	v = newVerbosity(1)
	assert.Equal(t, 0, v.add(-1))
	assert.Equal(t, 0, v.add(-1), "clamped at 0")
	assert.Equal(t, 4, v.add(4))
	assert.Equal(t, slog.LevelWarn, v.level.Level())
}

func TestLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	v := newVerbosity(4)
	log := newLogger(&buf, v)
	log.Info("hidden")
	log.Warn("shown")
	always(log, "always shown")
	v.add(-4)
	always(log, "still shown")
	log.Warn("hidden too")
	out := buf.String()
	assert.NotContains(t, out, "hidden")
	assert.Contains(t, out, `level=WARN msg=shown`)
	assert.Contains(t, out, `level=INFO msg="always shown"`)
	assert.Contains(t, out, `level=INFO msg="still shown"`)
}

func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "walnut.log")
	lf, err := newLogFile(path)
	require.NoError(t, err)
	defer lf.Close()
	_, err = lf.Write([]byte("one\n"))
	require.NoError(t, err)
	require.NoError(t, os.Rename(path, path+".1"))
	_, err = lf.Write([]byte("two\n"))
	require.NoError(t, err)
	require.NoError(t, lf.Reopen())
	_, err = lf.Write([]byte("three\n"))
	require.NoError(t, err)

	old, err := os.ReadFile(path + ".1")
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo\n", string(old))
	cur, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "three\n", string(cur))

	// A failed reopen keeps the current file.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Remove(dir+"/walnut.log.1"))
	lf.path = filepath.Join(dir, "missing", "walnut.log")
	require.Error(t, lf.Reopen())
	_, err = lf.Write([]byte("four\n"))
	assert.NoError(t, err)
}

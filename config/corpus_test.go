package config_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
)

// The corpus: testdata/good holds files walnut accepts, testdata/bad files
// it rejects. Each is small and about one rule. The listen hosts are
// loopback literals, "localhost" (resolved from /etc/hosts) or a name that
// fails to resolve without a DNS query (a 64-byte label), so that neither
// walnut nor nutcracker leaves the machine.

// differences lists the corpus files on which walnut deliberately disagrees
// with nutcracker 0.5.0 (see the package documentation). A file in good/
// is one nutcracker rejects; a file in bad/ is one nutcracker accepts.
var differences = map[string]string{
	"good/reuseport.yml":                     "reuseport is a key of twemproxy after 0.5.0",
	"good/hash_farm.yml":                     "farm is a walnut hash",
	"good/listen_ipv6_brackets.yml":          "nutcracker passes \"[::1]\" to getaddrinfo, which fails",
	"bad/timeout_int32_wraps_positive.yml":   "nutcracker wraps 99999999999 to 1215752191",
	"bad/listen_port_wraps.yml":              "nutcracker wraps port 4294967297 to 1",
	"bad/server_weight_wraps.yml":            "nutcracker wraps weight 4294967297 to 1",
	"bad/listen_sequence_servers_scalar.yml": "nutcracker only counts sequences, so listen may be the list",
	"bad/server_empty_name.yml":              "nutcracker names the server \"\"",
	"bad/server_weight_too_large.yml":        "shard caps weights at 8388608; nutcracker takes any int32",
	"bad/unix_perm_wraps.yml":                "nutcracker casts 040000000666 to a 32-bit mode_t, 0666",
}

// noDocument lists the bad files whose error has no line: there is no
// document to point into.
var noDocument = map[string]bool{
	"bad/empty.yml":         true,
	"bad/comments_only.yml": true,
}

type corpusFile struct {
	name string // "good/x.yml"
	path string
	good bool
	data []byte
}

func corpus(t testing.TB) []corpusFile {
	t.Helper()
	var files []corpusFile
	for _, dir := range []string{"good", "bad"} {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.yml"))
		require.NoError(t, err)
		for _, path := range paths {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			files = append(files, corpusFile{name: dir + "/" + filepath.Base(path), path: path, good: dir == "good", data: data})
		}
	}
	return files
}

func TestCorpusSize(t *testing.T) {
	var good, bad int
	for _, f := range corpus(t) {
		if f.good {
			good++
		} else {
			bad++
		}
	}
	assert.GreaterOrEqual(t, good, 25)
	assert.GreaterOrEqual(t, bad, 45)
	for name := range differences {
		_, err := os.Stat(filepath.Join("testdata", name))
		assert.NoError(t, err, "differences names a missing file")
	}
}

// TestCorpus checks walnut's verdict on every corpus file, with the real
// resolver.
func TestCorpus(t *testing.T) {
	for _, f := range corpus(t) {
		t.Run(f.name, func(t *testing.T) {
			file, err := config.Parse(f.path, f.data)
			if f.good {
				require.NoError(t, err)
				checkPools(t, file.Pools)
				return
			}
			require.Error(t, err)
			t.Logf("walnut: %v", err)
			var e *config.Error
			require.ErrorAs(t, err, &e)
			assert.ErrorIs(t, err, config.ErrInvalid)
			assert.Equal(t, f.path, e.File)
			assert.NotEmpty(t, e.Msg)
			if noDocument[f.name] {
				assert.Zero(t, e.Line)
			} else {
				assert.Positive(t, e.Line)
				assert.LessOrEqual(t, e.Line, bytes.Count(f.data, []byte("\n"))+1)
			}
		})
	}
}

// TestCorpusAgainstNutcracker runs nutcracker -t on every corpus file and
// checks that it agrees with walnut, except on the files listed in
// differences, where it must disagree in the documented direction.
func TestCorpusAgainstNutcracker(t *testing.T) {
	bin := testserver.RequireBinary(t, "nutcracker")
	for _, f := range corpus(t) {
		t.Run(f.name, func(t *testing.T) {
			_, err := config.Parse(f.path, f.data)
			walnutOK := err == nil
			if err != nil {
				t.Logf("walnut: %v", err)
			}
			nutcrackerOK := nutcrackerAccepts(t, bin, f.path)
			require.Equal(t, f.good, walnutOK, "walnut's verdict does not match the directory")
			if why, ok := differences[f.name]; ok {
				assert.Equal(t, !walnutOK, nutcrackerOK, "documented difference (%s) not observed", why)
				return
			}
			assert.Equal(t, walnutOK, nutcrackerOK, "nutcracker disagrees (accepts: %v)", nutcrackerOK)
		})
	}
}

// nutcrackerAccepts runs nutcracker -t -c path: exit 0 with "syntax is ok"
// or exit 1 with "syntax is invalid", both on stderr.
func nutcrackerAccepts(t *testing.T, bin, path string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-t", "-c", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		require.Contains(t, stderr.String(), "syntax is ok")
		return true
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		require.Contains(t, stderr.String(), "syntax is invalid")
		return false
	}
	require.NoError(t, err, "nutcracker -t: %s", strings.TrimSpace(stderr.String()))
	return false
}

package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strconv"

	"github.com/spf13/pflag"
)

// Defaults of the options, as nutcracker's except for defaultStatsAddr.
const (
	defaultConfFile      = "conf/nutcracker.yml"
	defaultStatsPort     = 22222
	defaultStatsAddr     = "127.0.0.1" // nutcracker: 0.0.0.0
	defaultStatsInterval = 30000       // milliseconds
	defaultVerbosity     = 5           // nutcracker's LOG_NOTICE
	defaultMbufSize      = 16384

	maxVerbosity = 11 // nutcracker's LOG_PVERB
	minMbufSize  = 512
	maxMbufSize  = 16777216
)

// options are the parsed command line.
type options struct {
	help, version, testConf, daemonize, describeStats bool

	verbosity     int    // -v, 0..11
	output        string // -o, "" for stderr
	confFile      string // -c
	statsPort     int    // -s
	statsAddr     string // -a
	statsInterval int    // -i, milliseconds
	pidFile       string // -p, "" for none
	mbufSize      int    // -m, validated and otherwise unused
	adminAddr     string // --admin-addr, "" for none
	loops         int    // --loops, 0: a goroutine per client; default defaultLoops()
}

// usageError is a command-line error: its text (without the "walnut: "
// prefix) is printed, then the usage, and walnut exits with status 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) *usageError {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// missing says what each option taking a value requires when the value is
// absent, in nutcracker's words.
var missing = map[string]string{
	"o": "a file name",
	"c": "a file name",
	"p": "a file name",
	"v": "a number",
	"s": "a number",
	"i": "a number",
	"m": "a number",
	"a": "a string",
}

// digits parses s as nutcracker's nc_atoi does: one or more ASCII digits,
// nothing else. ok is false for anything else; a value too large for an
// int32 is returned as math.MaxInt32+1 so that callers can treat it as out
// of range.
func digits(s string) (n int, ok bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return math.MaxInt32 + 1, true
	}
	return int(v), true
}

// optionValue is a pflag.Value that validates its text with check, so that
// errors carry nutcracker's messages and are reported in command-line order.
type optionValue struct {
	text  string
	check func(s string) error
}

func (v *optionValue) String() string { return v.text }
func (v *optionValue) Type() string   { return "string" }

func (v *optionValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	}
	v.text = s
	return nil
}

// parseOptions parses args (without the program name) as nutcracker does:
// getopt's "hVtdDv:o:c:s:i:a:p:m:" with the long forms. The returned error
// is a *usageError.
func parseOptions(args []string) (options, error) {
	o := options{
		verbosity:     defaultVerbosity,
		confFile:      defaultConfFile,
		statsPort:     defaultStatsPort,
		statsAddr:     defaultStatsAddr,
		statsInterval: defaultStatsInterval,
		mbufSize:      defaultMbufSize,
		loops:         defaultLoops(),
	}
	fs := pflag.NewFlagSet("walnut", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false

	var questionMark bool
	fs.BoolVarP(&o.help, "help", "h", false, "")
	// nutcracker's usage line advertises -? but getopt rejects it; walnut
	// takes it as -h.
	fs.BoolVarP(&questionMark, "help-question-mark", "?", false, "")
	fs.BoolVarP(&o.version, "version", "V", false, "")
	fs.BoolVarP(&o.testConf, "test-conf", "t", false, "")
	fs.BoolVarP(&o.daemonize, "daemonize", "d", false, "")
	fs.BoolVarP(&o.describeStats, "describe-stats", "D", false, "")

	str := func(dst *string) func(string) error {
		return func(s string) error { *dst = s; return nil }
	}
	values := []struct {
		long, short string
		check       func(string) error
	}{
		{"verbose", "v", func(s string) error {
			n, ok := digits(s)
			if !ok {
				return usageErrorf("option -v requires a number")
			}
			o.verbosity = min(n, maxVerbosity)
			return nil
		}},
		{"output", "o", str(&o.output)},
		{"conf-file", "c", str(&o.confFile)},
		{"stats-port", "s", func(s string) error {
			n, ok := digits(s)
			if !ok {
				return usageErrorf("option -s requires a number")
			}
			if n < 1 || n > math.MaxUint16 {
				return usageErrorf("option -s value %s is not a valid port", s)
			}
			o.statsPort = n
			return nil
		}},
		{"stats-addr", "a", str(&o.statsAddr)},
		{"stats-interval", "i", func(s string) error {
			n, ok := digits(s)
			if !ok {
				return usageErrorf("option -i requires a number")
			}
			if n > math.MaxInt32 {
				return usageErrorf("option -i value %s is too large (the maximum is %d)", s, math.MaxInt32)
			}
			o.statsInterval = n
			return nil
		}},
		{"pid-file", "p", str(&o.pidFile)},
		{"mbuf-size", "m", func(s string) error {
			n, ok := digits(s)
			if !ok || n == 0 {
				return usageErrorf("option -m requires a non-zero number")
			}
			if n < minMbufSize || n > maxMbufSize {
				return usageErrorf("mbuf chunk size must be between %d and %d bytes", minMbufSize, maxMbufSize)
			}
			o.mbufSize = n
			return nil
		}},
	}
	for _, v := range values {
		fs.VarP(&optionValue{check: v.check}, v.long, v.short, "")
	}
	// walnut's own, long only.
	fs.Var(&optionValue{check: func(s string) error {
		n, ok := digits(s)
		if !ok || n > maxLoops {
			return usageErrorf("option --loops requires a number from 0 to %d", maxLoops)
		}
		o.loops = n
		return nil
	}}, "loops", "")
	fs.Var(&optionValue{check: func(s string) error {
		host, port, err := net.SplitHostPort(s)
		if err != nil || port == "" {
			return usageErrorf("option --admin-addr value '%s' is not HOST:PORT", s)
		}
		if host == "" {
			// ":PORT" means loopback, not every interface: the admin
			// listener serves profiles and reloads.
			host = "127.0.0.1"
		}
		o.adminAddr = net.JoinHostPort(host, port)
		return nil
	}}, "admin-addr", "")

	if err := fs.Parse(args); err != nil {
		return options{}, flagError(err)
	}
	if fs.NArg() > 0 {
		// nutcracker ignores them; they are almost always a mistake, such
		// as a configuration file given without -c.
		return options{}, usageErrorf("unexpected argument '%s'", fs.Arg(0))
	}
	o.help = o.help || questionMark
	return o, nil
}

// flagError turns a pflag error into nutcracker's message.
func flagError(err error) error {
	var (
		ue      *usageError
		missErr *pflag.ValueRequiredError
		notExst *pflag.NotExistError
		syntax  *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.As(err, &missErr):
		short := missErr.GetFlag().Shorthand
		if short == "" {
			return usageErrorf("option '--%s' requires an argument", missErr.GetFlag().Name)
		}
		return usageErrorf("option -%s requires %s", short, missing[short])
	case errors.As(err, &notExst):
		if notExst.GetSpecifiedShortnames() != "" {
			return usageErrorf("invalid option -- '%s'", notExst.GetSpecifiedName())
		}
		// nutcracker prints the option character, which getopt sets to
		// NUL for an unknown long option: "invalid option -- '\0'".
		return usageErrorf("unrecognized option '--%s'", notExst.GetSpecifiedName())
	case errors.As(err, &syntax):
		return usageErrorf("unrecognized option '%s'", syntax.GetSpecifiedFlag())
	default:
		return usageErrorf("%v", err)
	}
}

// writeVersion writes the version block: "This is walnut-VERSION".
func writeVersion(w io.Writer) {
	fmt.Fprintf(w, "This is walnut-%s\n", version)
}

// usage is nutcracker's usage text with walnut's name and defaults.
const usage = `Usage: walnut [-?hVdDt] [-v verbosity level] [-o output file]
              [-c conf file] [-s stats port] [-a stats addr]
              [-i stats interval] [-p pid file] [-m mbuf size]
              [--admin-addr host:port] [--loops N]

Options:
  -h, --help             : this help
  -V, --version          : show version and exit
  -t, --test-conf        : test configuration for syntax errors and exit
  -d, --daemonize        : run as a daemon
  -D, --describe-stats   : print stats description and exit
  -v, --verbose=N        : set logging level (default: 5, min: 0, max: 11)
  -o, --output=S         : set logging file (default: stderr)
  -c, --conf-file=S      : set configuration file (default: conf/nutcracker.yml)
  -s, --stats-port=N     : set stats monitoring port (default: 22222)
  -a, --stats-addr=S     : set stats monitoring ip (default: 127.0.0.1)
  -i, --stats-interval=N : set stats aggregation interval in msec (default: 30000 msec)
  -p, --pid-file=S       : set pid file (default: off)
  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: 16384 bytes)
      --admin-addr=S     : serve /metrics, /debug/pprof/, /healthz and /readyz
                           over HTTP on HOST:PORT (default: off;
                           e.g. 127.0.0.1:22223)
      --loops=N          : serve clients with N event loops (Linux; default: half
                           of GOMAXPROCS, at least 1; elsewhere 0); 0: a
                           goroutine per client

Unlike nutcracker, walnut binds the stats server to 127.0.0.1 by default
(nutcracker: 0.0.0.0; give -a 0.0.0.0 for that), and it checks -m but does
not use it: walnut has no mbufs. --admin-addr is walnut's own; bind it
to a loopback address: it serves profiles and process details.
`

// defaultLoops is --loops's default: on Linux, half of the Ps (GOMAXPROCS,
// the CPUs walnut may use), at least one, so that a loop has a P to spare
// for walnut's other goroutines; elsewhere 0, a goroutine per client.
func defaultLoops() int {
	if runtime.GOOS != "linux" {
		return 0
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// maxLoops is the most event loops --loops takes.
const maxLoops = 1024

func writeUsage(w io.Writer) { io.WriteString(w, usage) }

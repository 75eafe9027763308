package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type options struct {
	servers        int
	conns          []int // -c, each measured
	pipelines      []int // -P, each measured
	requests       int
	keyspace       int
	valSize        int
	rows           []string
	redisBenchmark bool
	noNutcracker   bool
	repeat         int
	strace         bool
	straceRequests int       // requests of the strace pass
	variants       []variant // walnut targets, in column order
	out            string
	args           []string // the command line, for the report
}

// variant is one walnut target (one column of the report).
type variant struct {
	name string
	// bin is a prebuilt walnut binary; empty means the walnut built from
	// this module.
	bin string
	// env holds KEY=VAL pairs added to the tool's own environment, in the
	// order given.
	env []string
	// workers is the number of walnut processes sharing the listen ports
	// through SO_REUSEPORT (reuseport: true in their configuration); 0
	// means one ordinary process.
	workers int
	// loops is walnut's --loops (event loops; 0: a goroutine per client)
	// when loopsSet; otherwise walnut's default.
	loops    int
	loopsSet bool
}

// envValue returns the value of key in v.env.
func (v variant) envValue(key string) (string, bool) {
	for _, kv := range v.env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			return val, true
		}
	}
	return "", false
}

// processEnv is the environment added to each of v's processes: v.env,
// plus GOMAXPROCS=1 for workers unless v.env sets GOMAXPROCS.
func (v variant) processEnv() []string {
	env := slices.Clone(v.env)
	if _, ok := v.envValue("GOMAXPROCS"); v.workers > 0 && !ok {
		env = append(env, "GOMAXPROCS=1")
	}
	return env
}

// describe says what v runs, for the report; what is the binary's
// description ("walnut built from this module at dd4735b").
func (v variant) describe(what string) string {
	parts := []string{what}
	if v.workers > 0 {
		parts = append(parts, fmt.Sprintf("%d worker processes on shared ports (reuseport: true), figures summed over them", v.workers))
	}
	if v.loopsSet {
		parts = append(parts, fmt.Sprintf("--loops=%d", v.loops))
	}
	if env := v.processEnv(); len(env) > 0 {
		parts = append(parts, "environment "+strings.Join(env, " "))
	}
	return strings.Join(parts, ", ")
}

// intList is a flag holding a comma-separated list of positive integers,
// without duplicates, in the order given.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(s string) error {
	var out intList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	*l = out
	return nil
}

// Syntax of -walnut: variant names, environment keys, and the names of
// the columns that are not walnut variants.
var (
	variantName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	envKey          = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reservedTargets = []string{"direct", "nutcracker"}
)

// variantSet collects -walnut and -walnut-bin; several flags may name the
// same variant, and their settings are combined.
type variantSet struct {
	list []*variant
	keys map[string]map[string]bool // variant → keys given, to reject repeats
}

func (vs *variantSet) get(name string) (*variant, error) {
	if !variantName.MatchString(name) {
		return nil, fmt.Errorf("bad variant name %q (letters, digits and _.+- only)", name)
	}
	if slices.Contains(reservedTargets, name) {
		return nil, fmt.Errorf("variant name %q is reserved", name)
	}
	for _, v := range vs.list {
		if v.name == name {
			return v, nil
		}
	}
	v := &variant{name: name}
	vs.list = append(vs.list, v)
	if vs.keys == nil {
		vs.keys = map[string]map[string]bool{}
	}
	vs.keys[name] = map[string]bool{}
	return v, nil
}

// setKey applies KEY=VAL to the variant v. WORKERS, LOOPS and BIN are the
// tool's own keys; every other key is environment.
func (vs *variantSet) setKey(v *variant, key, val string) error {
	if !envKey.MatchString(key) {
		return fmt.Errorf("variant %s: bad key %q", v.name, key)
	}
	if vs.keys[v.name][key] {
		return fmt.Errorf("variant %s: %s given twice", v.name, key)
	}
	vs.keys[v.name][key] = true
	switch key {
	case "WORKERS":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("variant %s: WORKERS=%q: want an integer from 1 to 64", v.name, val)
		}
		v.workers = n
	case "LOOPS":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 64 {
			return fmt.Errorf("variant %s: LOOPS=%q: want an integer from 0 to 64", v.name, val)
		}
		v.loops, v.loopsSet = n, true
	case "BIN":
		if val == "" {
			return fmt.Errorf("variant %s: empty BIN", v.name)
		}
		v.bin = val
	default:
		v.env = append(v.env, key+"="+val)
	}
	return nil
}

// parseWalnut handles one -walnut NAME[:KEY=VAL[,KEY=VAL]...].
func (vs *variantSet) parseWalnut(spec string) error {
	name, rest, _ := strings.Cut(spec, ":")
	v, err := vs.get(strings.TrimSpace(name))
	if err != nil {
		return err
	}
	if strings.TrimSpace(rest) == "" {
		return nil
	}
	for _, kv := range strings.Split(rest, ",") {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("variant %s: %q is not KEY=VAL", v.name, kv)
		}
		if err := vs.setKey(v, strings.TrimSpace(key), val); err != nil {
			return err
		}
	}
	return nil
}

// parseWalnutBin handles one -walnut-bin NAME=PATH.
func (vs *variantSet) parseWalnutBin(spec string) error {
	name, path, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("%q is not NAME=PATH", spec)
	}
	v, err := vs.get(strings.TrimSpace(name))
	if err != nil {
		return err
	}
	return vs.setKey(v, "BIN", path)
}

// variants returns the walnut targets: "walnut" (the module's build, as
// is, unless a variant of that name changes it) first, then the others
// in the order first named.
func (vs *variantSet) variants() []variant {
	out := []variant{{name: "walnut"}}
	for _, v := range vs.list {
		if v.name == "walnut" {
			out[0] = *v
			continue
		}
		out = append(out, *v)
	}
	return out
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{args: args}
	conns, pipelines := intList{50}, intList{1}
	var vs variantSet
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.servers, "servers", 4, "number of redis-server and of memcached `backends`")
	fs.Var(&conns, "c", "client `connections`, a comma-separated list: every row is measured at each")
	fs.Var(&pipelines, "P", "pipeline `depths` (requests in flight per connection), a comma-separated list: every row is measured at each")
	fs.IntVar(&o.requests, "n", 200000, "`requests` per row, client count, pipeline depth and target")
	fs.IntVar(&o.keyspace, "r", 100000, "key space: keys are key:N, N uniform in [0, `r`)")
	fs.IntVar(&o.valSize, "d", 16, "value size in `bytes`")
	rows := fs.String("t", "set,get,mset,mcset,mcget,mcmget", "comma-separated `rows`: "+strings.Join(rowNames(), ", "))
	fs.BoolVar(&o.redisBenchmark, "redis-benchmark", false, "also run redis-benchmark for the Redis rows set, get, mset (if installed)")
	fs.BoolVar(&o.noNutcracker, "no-nutcracker", false, "leave nutcracker out even if installed")
	fs.IntVar(&o.repeat, "repeat", 1, "run the whole matrix `K` times, targets interleaved, and report median [min–max]")
	fs.BoolVar(&o.strace, "strace", false, "after each timed pass, count system calls per request with strace -c -f in an extra, shorter pass")
	fs.IntVar(&o.straceRequests, "strace-n", 0, "`requests` of the strace pass (default: -n/10)")
	fs.Func("walnut", "add a walnut target `NAME[:KEY=VAL,...]`; KEY=VAL is environment, except WORKERS=N (N processes on shared ports with reuseport, GOMAXPROCS=1 unless given), LOOPS=N (walnut's --loops=N: N event loops, 0 a goroutine per client) and BIN=PATH (a prebuilt binary); repeatable",
		vs.parseWalnut)
	fs.Func("walnut-bin", "add a walnut target `NAME=PATH` running a prebuilt walnut binary (same as -walnut NAME:BIN=PATH); repeatable",
		vs.parseWalnutBin)
	fs.StringVar(&o.out, "out", "bench/compare/results.md", "write the markdown report to `file` (relative to the module root; empty: none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.conns, o.pipelines, o.variants = conns, pipelines, vs.variants()
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"servers", o.servers}, {"n", o.requests}, {"r", o.keyspace}, {"repeat", o.repeat}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("-%s must be at least 1", f.name))
		}
	}
	if o.valSize < 0 {
		errs = append(errs, errors.New("-d must not be negative"))
	}
	switch {
	case o.straceRequests < 0:
		errs = append(errs, errors.New("-strace-n must not be negative"))
	case o.straceRequests == 0:
		o.straceRequests = max(o.requests/10, 1)
	}
	for _, r := range strings.Split(*rows, ",") {
		r = strings.TrimSpace(strings.ToLower(r))
		if r == "" {
			continue
		}
		if _, ok := rowKinds[r]; !ok {
			errs = append(errs, fmt.Errorf("-t: unknown row %q (known: %s)", r, strings.Join(rowNames(), ", ")))
			continue
		}
		if !slices.Contains(o.rows, r) {
			o.rows = append(o.rows, r)
		}
	}
	if len(o.rows) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("-t: no rows"))
	}
	return o, errors.Join(errs...)
}

func rowNames() []string {
	var names []string
	for n := range rowKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

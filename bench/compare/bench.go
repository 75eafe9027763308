package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// target is one column of the report: where requests go and whose CPU,
// memory and context switches are measured.
type target struct {
	name      string
	desc      string // what it is, for the report
	redisAddr string
	mcAddr    string
	redisPIDs []int // processes measured on Redis rows
	mcPIDs    []int // processes measured on memcached rows
}

// endpoint returns the address a row's load goes to and the processes
// measured meanwhile.
func (t target) endpoint(row string) (string, []int) {
	if rowKinds[strings.TrimPrefix(row, "rb-")].memcache {
		return t.mcAddr, t.mcPIDs
	}
	return t.redisAddr, t.redisPIDs
}

// cell is one point of the matrix, measured against every target: a row
// at one client count and pipeline depth.
type cell struct {
	row      string
	conns    int
	pipeline int
}

// label names c in the report, as "get c=10", with " P=16" when more than
// one pipeline depth is measured.
func (c cell) label(showP bool) string {
	s := fmt.Sprintf("%s c=%d", c.row, c.conns)
	if showP {
		s += fmt.Sprintf(" P=%d", c.pipeline)
	}
	return s
}

// result is one cell measured against one target in one repetition.
type result struct {
	cell   cell
	target string
	rep    int
	err    error

	ops            float64       // requests per second
	p50, p99       time.Duration // per request
	p999           time.Duration // -1: not reported
	cpu            time.Duration // CPU time of the pass, summed over the target's processes
	cpuPerReq      float64       // CPU µs per request
	switchesPerReq float64       // context switches per request, summed over their threads
	threadsGone    int           // threads that exited during the cell (their switches are missing)
	rss            int64         // bytes at the end of the cell, summed over the processes
	errReplies     uint64

	// The strace pass, with -strace.
	sys         *sysCounts
	sysRequests uint64
	sysErr      error
}

type bench struct {
	opts           *options
	stdout, stderr io.Writer

	root      string // module root
	dir       string // temporary directory
	ps        *procSet
	targets   []target
	cells     []cell // in the order measured
	notes     []string
	results   []result
	straceBin string
	straceSeq int

	redisPorts, mcPorts []int
	versions            []string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, format+"\n", args...)
}

func (b *bench) cleanup() {
	if b.ps != nil {
		b.ps.stopAll()
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// moduleRoot returns the directory of this module's go.mod.
func moduleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run from inside the walnut module")
		}
		dir = parent
	}
}

func version(bin string, arg string) string {
	out, err := exec.Command(bin, arg).CombinedOutput() // nutcracker -V writes to stderr
	if err != nil {
		return filepath.Base(bin) + " (version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// moduleCommit describes the module's checkout for the report, as git
// describe does ("dd4735b", "dd4735b-dirty"); empty if git cannot tell.
func moduleCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// checkBinary returns an error unless path is an executable regular file.
func checkBinary(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

func (b *bench) setup(ctx context.Context) error {
	o := b.opts
	if o.strace {
		if b.straceBin = lookBinary("strace"); b.straceBin == "" {
			return errors.New("-strace: strace is not installed (Debian and Ubuntu: apt-get install strace)")
		}
	}
	var err error
	if b.root, err = moduleRoot(); err != nil {
		return err
	}
	redisBin, mcBin := lookBinary("redis-server"), lookBinary("memcached")
	if redisBin == "" || mcBin == "" {
		return errors.New("redis-server and memcached must be installed")
	}
	needBuild := false
	for i, v := range o.variants {
		if v.bin == "" {
			needBuild = true
			continue
		}
		// The processes run in the temporary directory: a relative path
		// is made absolute here, against the working directory.
		abs, err := filepath.Abs(v.bin)
		if err == nil {
			err = checkBinary(abs)
		}
		if err != nil {
			return fmt.Errorf("walnut variant %s: %w", v.name, err)
		}
		o.variants[i].bin = abs
	}
	if b.dir, err = os.MkdirTemp("", "walnut-compare-"); err != nil {
		return err
	}
	b.ps = &procSet{dir: b.dir}

	walnutBin := filepath.Join(b.dir, "walnut")
	if needBuild {
		b.logf("building walnut")
		build := exec.CommandContext(ctx, "go", "build", "-o", walnutBin, "./cmd/walnut")
		build.Dir = b.root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/walnut: %w\n%s", err, out)
		}
	}

	b.logf("starting %d redis-server and %d memcached", o.servers, o.servers)
	var redisPIDs, mcPIDs []int
	for i := range o.servers {
		p, port, err := startWithPort(ctx, b.ps, "redis-server", func(port int) (*proc, error) {
			return b.ps.start(fmt.Sprintf("redis%d", i), redisBin, nil,
				"--port", strconv.Itoa(port), "--bind", host, "--save", "", "--appendonly", "no",
				"--daemonize", "no", "--protected-mode", "no", "--dir", b.dir)
		}, probeRedis)
		if err != nil {
			return err
		}
		b.redisPorts = append(b.redisPorts, port)
		redisPIDs = append(redisPIDs, p.pid)
		p, port, err = startWithPort(ctx, b.ps, "memcached", func(port int) (*proc, error) {
			args := []string{"-l", host, "-p", strconv.Itoa(port), "-U", "0", "-m", "256"}
			if os.Geteuid() == 0 {
				args = append(args, "-u", "root")
			}
			return b.ps.start(fmt.Sprintf("memcached%d", i), mcBin, nil, args...)
		}, probeMemcached)
		if err != nil {
			return err
		}
		b.mcPorts = append(b.mcPorts, port)
		mcPIDs = append(mcPIDs, p.pid)
	}
	b.versions = append(b.versions, version(redisBin, "--version"), version(mcBin, "-V"))
	b.targets = append(b.targets, target{
		name:      "direct",
		desc:      "the first redis-server or memcached alone",
		redisAddr: addrOf(b.redisPorts[0]), mcAddr: addrOf(b.mcPorts[0]),
		redisPIDs: redisPIDs[:1], mcPIDs: mcPIDs[:1],
	})

	switch nutBin := lookBinary("nutcracker"); {
	case o.noNutcracker:
		b.notes = append(b.notes, "nutcracker left out (-no-nutcracker).")
	case nutBin == "":
		b.notes = append(b.notes, "nutcracker is not installed: its column and the ratios to it are left out.")
		b.logf("nutcracker not installed: skipping its column")
	default:
		v := version(nutBin, "-V")
		b.versions = append(b.versions, v)
		t, err := b.startProxy(ctx, "nutcracker", nutBin, nil, 0, "-i", "1000", "-v", "5")
		if err != nil {
			return err
		}
		t.desc = strings.TrimPrefix(v, "This is ")
		b.targets = append(b.targets, t)
	}
	for _, v := range o.variants {
		bin := v.bin
		if bin == "" {
			bin = walnutBin
		}
		var extra []string
		if v.loopsSet {
			extra = append(extra, "--loops="+strconv.Itoa(v.loops))
		}
		t, err := b.startProxy(ctx, v.name, bin, v.processEnv(), v.workers, extra...)
		if err != nil {
			return err
		}
		what := "walnut built from this module"
		if v.bin != "" {
			what = fmt.Sprintf("walnut binary %s (%s)", v.bin, strings.TrimPrefix(version(v.bin, "-V"), "This is "))
		} else if c := moduleCommit(b.root); c != "" {
			what += " at " + c
		}
		t.desc = v.describe(what)
		b.targets = append(b.targets, t)
	}
	return nil
}

// yml returns the configuration the proxies read: one redis pool and one
// memcache pool over the backends, listening on the given ports, with
// reuseport: true for a variant of several worker processes.
func (b *bench) yml(redisListen, mcListen int, reuseport bool) string {
	var s strings.Builder
	pool := func(name string, listen int, redis bool, ports []int) {
		fmt.Fprintf(&s, "%s:\n  listen: %s\n  hash: fnv1a_64\n  distribution: ketama\n  hash_tag: \"{}\"\n", name, addrOf(listen))
		fmt.Fprintf(&s, "  redis: %t\n  timeout: 2000\n  server_retry_timeout: 2000\n  server_failure_limit: 3\n  auto_eject_hosts: false\n", redis)
		if reuseport {
			s.WriteString("  reuseport: true\n")
		}
		s.WriteString("  servers:\n")
		for i, p := range ports {
			fmt.Fprintf(&s, "   - %s:1 %s%d\n", addrOf(p), name, i)
		}
	}
	pool("redis", redisListen, true, b.redisPorts)
	pool("memcache", mcListen, false, b.mcPorts)
	return s.String()
}

// startProxy writes the configuration with fresh listen ports and starts
// a nutcracker-compatible proxy on it, with env added to its environment,
// retrying with new ports if it exits before both pools answer. With
// workers > 0 it starts that many processes on the same listen ports
// (reuseport: true), each with its own stats port; the first must answer
// on both pools and each later one on its stats port, which walnut binds
// after its pools.
func (b *bench) startProxy(ctx context.Context, name, bin string, env []string, workers int, extra ...string) (target, error) {
	var last error
	for attempt := range 3 {
		rp, err1 := freePort()
		mp, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return target{}, err
		}
		conf := filepath.Join(b.dir, fmt.Sprintf("%s-%d.yml", name, attempt))
		if err := os.WriteFile(conf, []byte(b.yml(rp, mp, workers > 0)), 0o644); err != nil {
			return target{}, err
		}
		var (
			procs []*proc
			pids  []int
			err   error
		)
		for w := range max(workers, 1) {
			pname := name
			if workers > 0 {
				pname = fmt.Sprintf("%s-w%d", name, w)
			}
			sp, perr := freePort()
			if perr != nil {
				err = perr
				break
			}
			logPath := filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", pname, attempt))
			args := append([]string{"-c", conf, "-s", strconv.Itoa(sp), "-a", host, "-o", logPath}, extra...)
			p, serr := b.ps.start(pname, bin, env, args...)
			if serr != nil {
				for _, p := range procs {
					p.stop()
				}
				return target{}, serr
			}
			procs, pids = append(procs, p), append(pids, p.pid)
			probe := func() error { return errors.Join(probeRedis(addrOf(rp)), probeMemcached(addrOf(mp))) }
			if w > 0 {
				probe = func() error { return probeStats(addrOf(sp)) }
			}
			if err = waitReady(ctx, p, probe); err != nil {
				err = fmt.Errorf("%w; log: %s", err, tailFile(logPath))
				break
			}
		}
		if err == nil {
			b.logf("started %s (pid %v): redis %s, memcache %s", name, pids, addrOf(rp), addrOf(mp))
			return target{name: name, redisAddr: addrOf(rp), mcAddr: addrOf(mp), redisPIDs: pids, mcPIDs: pids}, nil
		}
		for _, p := range procs {
			p.stop()
		}
		if ctx.Err() != nil {
			return target{}, ctx.Err()
		}
		last = err
	}
	return target{}, fmt.Errorf("%s: %w", name, last)
}

// matrix returns the cells in the order they are measured: by pipeline
// depth, then client count, then row as given by -t, with the
// redis-benchmark rows (if rb is set) after the built-in ones.
func (b *bench) matrix(rb bool) []cell {
	o := b.opts
	var cells []cell
	for _, p := range o.pipelines {
		for _, c := range o.conns {
			for _, row := range o.rows {
				cells = append(cells, cell{row: row, conns: c, pipeline: p})
			}
			if !rb {
				continue
			}
			for _, row := range o.rows {
				if row == "set" || row == "get" || row == "mset" {
					cells = append(cells, cell{row: "rb-" + row, conns: c, pipeline: p})
				}
			}
		}
	}
	return cells
}

// rotate returns ts rotated left by k: the target order of repetition k,
// so that no target is always measured first or right after another.
func rotate[T any](ts []T, k int) []T {
	if len(ts) == 0 {
		return nil
	}
	k %= len(ts)
	return append(slices.Clone(ts[k:]), ts[:k]...)
}

// measure runs the matrix -repeat times. Within a repetition every cell
// is measured against every target in turn (the order rotated by one
// target each repetition), so that drifting noise hits the targets alike;
// with -strace, the traced passes of a cell follow its timed passes.
func (b *bench) measure(ctx context.Context) error {
	o := b.opts
	rb := ""
	if o.redisBenchmark {
		if rb = lookBinary("redis-benchmark"); rb == "" {
			b.notes = append(b.notes, "redis-benchmark is not installed: its rows are left out.")
		} else {
			b.versions = append(b.versions, version(rb, "--version"))
		}
	}
	b.cells = b.matrix(rb != "")
	for rep := range o.repeat {
		if o.repeat > 1 {
			b.logf("repetition %d of %d", rep+1, o.repeat)
		}
		order := rotate(b.targets, rep)
		for _, c := range b.cells {
			first := len(b.results)
			for _, t := range order {
				var r result
				if strings.HasPrefix(c.row, "rb-") {
					r = b.runRedisBenchmark(ctx, rb, c, t, rep)
				} else {
					r = b.runRow(ctx, c, t, rep)
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.results = append(b.results, r)
			}
			if !o.strace || strings.HasPrefix(c.row, "rb-") {
				continue
			}
			for i, t := range order {
				if r := &b.results[first+i]; r.err == nil {
					b.straceRow(ctx, c, t, r)
					if ctx.Err() != nil {
						return ctx.Err()
					}
				}
			}
		}
	}
	return nil
}

// measured runs f, which sends requests to a target, and fills in the CPU,
// context switches and RSS of the processes pids around it.
func measured(pids []int, r *result, requests func() uint64, f func() error) {
	before, err := readUsage(pids)
	if err != nil {
		r.err = err
		return
	}
	if r.err = f(); r.err != nil {
		return
	}
	after, err := readUsage(pids)
	if err != nil {
		r.err = err
		return
	}
	d := diffUsage(before, after)
	if n := requests(); n > 0 {
		r.cpuPerReq = float64(d.cpu) / float64(time.Microsecond) / float64(n)
		r.switchesPerReq = float64(d.switches) / float64(n)
	}
	r.cpu, r.rss, r.threadsGone = d.cpu, d.rss, d.threadsGone
}

func (b *bench) loadConfig(c cell, t target, requests int) loadConfig {
	o := b.opts
	addr, _ := t.endpoint(c.row)
	return loadConfig{addr: addr, row: c.row, conns: c.conns, pipeline: c.pipeline,
		requests: requests, keyspace: o.keyspace, valSize: o.valSize}
}

// runRow is the timed pass of a built-in row against t.
func (b *bench) runRow(ctx context.Context, c cell, t target, rep int) result {
	o := b.opts
	cfg := b.loadConfig(c, t, o.requests)
	_, pids := t.endpoint(c.row)
	label := c.label(true)
	r := result{cell: c, target: t.name, rep: rep, p999: -1}
	var lr loadResult
	measured(pids, &r, func() uint64 { return lr.requests }, func() error {
		var done atomic.Uint64
		stop := b.progress(label, t.name, uint64(o.requests), &done)
		var err error
		lr, err = runLoad(ctx, cfg, &done)
		stop()
		return err
	})
	if r.err != nil {
		b.logf("%-18s %-12s error: %v", label, t.name, r.err)
		return r
	}
	r.ops = float64(lr.requests) / lr.elapsed.Seconds()
	r.p50 = time.Duration(lr.hist.quantile(0.50))
	r.p99 = time.Duration(lr.hist.quantile(0.99))
	r.p999 = time.Duration(lr.hist.quantile(0.999))
	r.errReplies = lr.errors
	b.logResult(r)
	return r
}

func (b *bench) logResult(r result) {
	b.logf("%-18s %-12s %9.0f ops/s  p50 %-8v p99 %-8v CPU %6.2f µs/req  %5.2f cs/req  RSS %.1f MiB",
		r.cell.label(true), r.target, r.ops, r.p50, r.p99, r.cpuPerReq, r.switchesPerReq, float64(r.rss)/(1<<20))
}

// straceRow is the strace pass of a built-in row against t, recorded in r.
func (b *bench) straceRow(ctx context.Context, c cell, t target, r *result) {
	n := b.opts.straceRequests
	cfg := b.loadConfig(c, t, n)
	_, pids := t.endpoint(c.row)
	label := c.label(true) + " strace"
	var lr loadResult
	sc, err := b.strace(ctx, label, pids, func() error {
		var done atomic.Uint64
		stop := b.progress(label, t.name, uint64(n), &done)
		var err error
		lr, err = runLoad(ctx, cfg, &done)
		stop()
		return err
	})
	if err == nil && lr.requests == 0 {
		err = errors.New("no requests completed")
	}
	if err != nil {
		r.sysErr = err
		b.logf("%-18s %-12s error: %v", label, t.name, err)
		return
	}
	r.sys, r.sysRequests = &sc, lr.requests
	var top []string
	for _, name := range sc.top(4) {
		top = append(top, fmt.Sprintf("%s %.2f", name, float64(sc.calls[name])/float64(lr.requests)))
	}
	b.logf("%-18s %-12s %.2f syscalls/req: %s", label, t.name, float64(sc.total)/float64(lr.requests), strings.Join(top, ", "))
}

// runRedisBenchmark runs redis-benchmark for one rb- row against t.
func (b *bench) runRedisBenchmark(ctx context.Context, bin string, c cell, t target, rep int) result {
	o := b.opts
	row := strings.TrimPrefix(c.row, "rb-")
	r := result{cell: c, target: t.name, rep: rep, p999: -1}
	port := t.redisAddr[strings.LastIndexByte(t.redisAddr, ':')+1:]
	label := c.label(true)
	var out []byte
	measured(t.redisPIDs, &r, func() uint64 { return uint64(o.requests) }, func() error {
		stop := b.progress(label, t.name, 0, nil)
		defer stop()
		var err error
		out, err = exec.CommandContext(ctx, bin, "-h", host, "-p", port,
			"-c", strconv.Itoa(c.conns), "-n", strconv.Itoa(o.requests), "-r", strconv.Itoa(o.keyspace),
			"-d", strconv.Itoa(o.valSize), "-P", strconv.Itoa(c.pipeline), "-t", row, "--csv").Output()
		if err != nil {
			return fmt.Errorf("redis-benchmark: %w: %s", err, out)
		}
		return nil
	})
	if r.err != nil {
		b.logf("%-18s %-12s error: %v", label, t.name, r.err)
		return r
	}
	// --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.ReplaceAll(strings.TrimSpace(line), `"`, ""), ",")
		if len(f) < 7 || len(strings.Fields(f[0])) == 0 || !strings.EqualFold(strings.Fields(f[0])[0], row) {
			continue
		}
		ms := func(s string) time.Duration {
			v, _ := strconv.ParseFloat(s, 64)
			return time.Duration(v * float64(time.Millisecond))
		}
		r.ops, _ = strconv.ParseFloat(f[1], 64)
		r.p50, r.p99 = ms(f[4]), ms(f[6])
	}
	if r.ops == 0 {
		r.err = fmt.Errorf("redis-benchmark: no result in %q", out)
		return r
	}
	b.logResult(r)
	return r
}

// progress draws a one-line progress bar on stderr until the returned
// function is called. With total 0 (an external tool) it shows a spinner.
func (b *bench) progress(label, target string, total uint64, done *atomic.Uint64) func() {
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		const width = 24
		for i := 0; ; i++ {
			select {
			case <-quit:
				fmt.Fprintf(b.stderr, "\r%-100s\r", "")
				return
			case <-tick.C:
			}
			prefix := fmt.Sprintf("%-25s %-12s", label, target)
			if total == 0 || done == nil {
				fmt.Fprintf(b.stderr, "\r%s %c %5.1fs", prefix, `|/-\`[i%4], time.Since(start).Seconds())
				continue
			}
			d := min(done.Load(), total)
			filled := int(d * width / total)
			rate := float64(d) / time.Since(start).Seconds()
			fmt.Fprintf(b.stderr, "\r%s [%s%s] %3d%% %8.0f/s", prefix,
				strings.Repeat("#", filled), strings.Repeat(".", width-filled), d*100/total, rate)
		}
	}()
	return func() { close(quit); <-finished }
}

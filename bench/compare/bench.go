package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// target is one column of the table: where requests go and whose CPU and
// memory are measured.
type target struct {
	name      string
	redisAddr string
	mcAddr    string
	redisPID  int // process measured on Redis rows
	mcPID     int // process measured on memcached rows
}

// result is one cell group of the table: one row against one target.
type result struct {
	row, target string
	err         error
	ops         float64       // requests per second
	p50, p99    time.Duration // per request
	p999        time.Duration // -1: not reported
	cpuPerM     float64       // CPU seconds per million requests
	rss         int64         // bytes at the end of the row
	errReplies  uint64
}

type bench struct {
	opts           *options
	stdout, stderr io.Writer

	root    string // module root
	dir     string // temporary directory
	ps      *procSet
	targets []target
	notes   []string
	results []result

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

func (b *bench) setup(ctx context.Context) error {
	o := b.opts
	var err error
	if b.root, err = moduleRoot(); err != nil {
		return err
	}
	redisBin, mcBin := lookBinary("redis-server"), lookBinary("memcached")
	if redisBin == "" || mcBin == "" {
		return errors.New("redis-server and memcached must be installed")
	}
	if b.dir, err = os.MkdirTemp("", "walnut-compare-"); err != nil {
		return err
	}
	b.ps = &procSet{dir: b.dir}

	b.logf("building walnut")
	walnutBin := filepath.Join(b.dir, "walnut")
	build := exec.CommandContext(ctx, "go", "build", "-o", walnutBin, "./cmd/walnut")
	build.Dir = b.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/walnut: %w\n%s", err, out)
	}

	b.logf("starting %d redis-server and %d memcached", o.servers, o.servers)
	var redisPIDs, mcPIDs []int
	for i := range o.servers {
		p, port, err := startWithPort(ctx, b.ps, "redis-server", func(port int) (*proc, error) {
			return b.ps.start(fmt.Sprintf("redis%d", i), redisBin,
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
			return b.ps.start(fmt.Sprintf("memcached%d", i), mcBin, args...)
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
		redisAddr: addrOf(b.redisPorts[0]), mcAddr: addrOf(b.mcPorts[0]),
		redisPID: redisPIDs[0], mcPID: mcPIDs[0],
	})

	switch nutBin := lookBinary("nutcracker"); {
	case o.noNutcracker:
		b.notes = append(b.notes, "nutcracker left out (-no-nutcracker).")
	case nutBin == "":
		b.notes = append(b.notes, "nutcracker is not installed: its column is left out.")
		b.logf("nutcracker not installed: skipping its column")
	default:
		b.versions = append(b.versions, version(nutBin, "-V"))
		t, err := b.startProxy(ctx, "nutcracker", nutBin, "-i", "1000", "-v", "5")
		if err != nil {
			return err
		}
		b.targets = append(b.targets, t)
	}
	t, err := b.startProxy(ctx, "walnut", walnutBin)
	if err != nil {
		return err
	}
	b.targets = append(b.targets, t)
	return nil
}

// yml returns the configuration both proxies read: one redis pool and one
// memcache pool over the backends, listening on the given ports.
func (b *bench) yml(redisListen, mcListen int) string {
	var s strings.Builder
	pool := func(name string, listen int, redis bool, ports []int) {
		fmt.Fprintf(&s, "%s:\n  listen: %s\n  hash: fnv1a_64\n  distribution: ketama\n  hash_tag: \"{}\"\n", name, addrOf(listen))
		fmt.Fprintf(&s, "  redis: %t\n  timeout: 2000\n  server_retry_timeout: 2000\n  server_failure_limit: 3\n  auto_eject_hosts: false\n  servers:\n", redis)
		for i, p := range ports {
			fmt.Fprintf(&s, "   - %s:1 %s%d\n", addrOf(p), name, i)
		}
	}
	pool("redis", redisListen, true, b.redisPorts)
	pool("memcache", mcListen, false, b.mcPorts)
	return s.String()
}

// startProxy writes the configuration with fresh listen ports and starts
// a nutcracker-compatible proxy on it, retrying with new ports if it
// exits before both pools answer.
func (b *bench) startProxy(ctx context.Context, name, bin string, extra ...string) (target, error) {
	var last error
	for attempt := range 3 {
		rp, err1 := freePort()
		mp, err2 := freePort()
		sp, err3 := freePort()
		if err := errors.Join(err1, err2, err3); err != nil {
			return target{}, err
		}
		conf := filepath.Join(b.dir, fmt.Sprintf("%s-%d.yml", name, attempt))
		if err := os.WriteFile(conf, []byte(b.yml(rp, mp)), 0o644); err != nil {
			return target{}, err
		}
		args := append([]string{"-c", conf, "-s", strconv.Itoa(sp), "-a", host,
			"-o", filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, attempt))}, extra...)
		p, err := b.ps.start(name, bin, args...)
		if err != nil {
			return target{}, err
		}
		err = waitReady(ctx, p, func() error {
			return errors.Join(probeRedis(addrOf(rp)), probeMemcached(addrOf(mp)))
		})
		if err == nil {
			b.logf("started %s (pid %d): redis %s, memcache %s", name, p.pid, addrOf(rp), addrOf(mp))
			return target{name: name, redisAddr: addrOf(rp), mcAddr: addrOf(mp), redisPID: p.pid, mcPID: p.pid}, nil
		}
		p.stop()
		if ctx.Err() != nil {
			return target{}, ctx.Err()
		}
		last = fmt.Errorf("%w; log: %s", err, tailFile(filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, attempt))))
	}
	return target{}, fmt.Errorf("%s: %w", name, last)
}

func (b *bench) measure(ctx context.Context) error {
	o := b.opts
	for _, row := range o.rows {
		for _, t := range b.targets {
			r := b.runRow(ctx, row, t)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.results = append(b.results, r)
		}
	}
	if o.redisBenchmark {
		rb := lookBinary("redis-benchmark")
		if rb == "" {
			b.notes = append(b.notes, "redis-benchmark is not installed: its rows are left out.")
			return nil
		}
		b.versions = append(b.versions, version(rb, "--version"))
		for _, row := range o.rows {
			if row != "set" && row != "get" && row != "mset" {
				continue
			}
			for _, t := range b.targets {
				r := b.runRedisBenchmark(ctx, rb, row, t)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				b.results = append(b.results, r)
			}
		}
	}
	return nil
}

// measured runs f, which sends requests to a target, and fills in the CPU
// and RSS of process pid around it.
func measured(pid int, r *result, requests func() uint64, f func() error) {
	before, err := readProcStat(pid)
	if err != nil {
		r.err = err
		return
	}
	if r.err = f(); r.err != nil {
		return
	}
	after, err := readProcStat(pid)
	if err != nil {
		r.err = err
		return
	}
	if n := requests(); n > 0 {
		r.cpuPerM = (after.cpu - before.cpu).Seconds() / float64(n) * 1e6
	}
	r.rss = after.rss
}

func (b *bench) runRow(ctx context.Context, row string, t target) result {
	o := b.opts
	cfg := loadConfig{row: row, conns: o.conns, pipeline: o.pipeline, requests: o.requests, keyspace: o.keyspace, valSize: o.valSize}
	pid := t.redisPID
	cfg.addr = t.redisAddr
	if rowKinds[row].memcache {
		cfg.addr, pid = t.mcAddr, t.mcPID
	}
	r := result{row: row, target: t.name, p999: -1}
	var lr loadResult
	measured(pid, &r, func() uint64 { return lr.requests }, func() error {
		var done atomic.Uint64
		stop := b.progress(row, t.name, uint64(o.requests), &done)
		var err error
		lr, err = runLoad(ctx, cfg, &done)
		stop()
		return err
	})
	if r.err != nil {
		b.logf("%-8s %-10s error: %v", row, t.name, r.err)
		return r
	}
	r.ops = float64(lr.requests) / lr.elapsed.Seconds()
	r.p50 = time.Duration(lr.hist.quantile(0.50))
	r.p99 = time.Duration(lr.hist.quantile(0.99))
	r.p999 = time.Duration(lr.hist.quantile(0.999))
	r.errReplies = lr.errors
	b.logf("%-8s %-10s %10.0f ops/s  p50 %-8v p99 %-8v p999 %-8v CPU %.2f s/M  RSS %.1f MiB",
		row, t.name, r.ops, r.p50, r.p99, r.p999, r.cpuPerM, float64(r.rss)/(1<<20))
	return r
}

// runRedisBenchmark runs redis-benchmark for one Redis row against t.
func (b *bench) runRedisBenchmark(ctx context.Context, bin, row string, t target) result {
	o := b.opts
	r := result{row: "rb-" + row, target: t.name, p999: -1}
	port := t.redisAddr[strings.LastIndexByte(t.redisAddr, ':')+1:]
	var out []byte
	measured(t.redisPID, &r, func() uint64 { return uint64(o.requests) }, func() error {
		stop := b.progress(r.row, t.name, 0, nil)
		defer stop()
		var err error
		out, err = exec.CommandContext(ctx, bin, "-h", host, "-p", port,
			"-c", strconv.Itoa(o.conns), "-n", strconv.Itoa(o.requests), "-r", strconv.Itoa(o.keyspace),
			"-d", strconv.Itoa(o.valSize), "-P", strconv.Itoa(o.pipeline), "-t", row, "--csv").Output()
		if err != nil {
			return fmt.Errorf("redis-benchmark: %w: %s", err, out)
		}
		return nil
	})
	if r.err != nil {
		b.logf("%-8s %-10s error: %v", r.row, t.name, r.err)
		return r
	}
	// --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.ReplaceAll(strings.TrimSpace(line), `"`, ""), ",")
		if len(f) < 7 || !strings.EqualFold(strings.Fields(f[0])[0], row) {
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
	}
	b.logf("%-8s %-10s %10.0f ops/s  p50 %-8v p99 %-8v CPU %.2f s/M  RSS %.1f MiB",
		r.row, t.name, r.ops, r.p50, r.p99, r.cpuPerM, float64(r.rss)/(1<<20))
	return r
}

// progress draws a one-line progress bar on stderr until the returned
// function is called. With total 0 (an external tool) it shows a spinner.
func (b *bench) progress(row, target string, total uint64, done *atomic.Uint64) func() {
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		const width = 30
		for i := 0; ; i++ {
			select {
			case <-quit:
				fmt.Fprintf(b.stderr, "\r%-78s\r", "")
				return
			case <-tick.C:
			}
			label := fmt.Sprintf("%-8s %-10s", row, target)
			if total == 0 || done == nil {
				fmt.Fprintf(b.stderr, "\r%s %c %5.1fs", label, `|/-\`[i%4], time.Since(start).Seconds())
				continue
			}
			d := done.Load()
			filled := int(d * width / total)
			rate := float64(d) / time.Since(start).Seconds()
			fmt.Fprintf(b.stderr, "\r%s [%s%s] %3d%% %9.0f ops/s", label,
				strings.Repeat("#", filled), strings.Repeat(".", width-filled), d*100/total, rate)
		}
	}()
	return func() { close(quit); <-finished }
}

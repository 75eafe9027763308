package main

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (b *bench) report() error {
	md := b.markdown()
	fmt.Fprint(b.stdout, md)
	if b.opts.out == "" {
		return nil
	}
	out := b.opts.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(b.root, out)
	}
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return err
	}
	svg := strings.TrimSuffix(out, filepath.Ext(out)) + ".svg"
	if err := os.WriteFile(svg, []byte(b.svg()), 0o644); err != nil {
		return err
	}
	b.logf("wrote %s and %s", out, svg)
	return nil
}

// The names of the two reference targets.
const (
	direct     = "direct"
	nutcracker = "nutcracker"
)

// metric extracts one figure of one cell, target and repetition; ok is
// false when there is none (a failed pass, a missing reference).
type metric func(c cell, target string, rep int) (v float64, ok bool)

// result returns the successful result of c against target in repetition
// rep.
func (b *bench) result(c cell, target string, rep int) (*result, bool) {
	for i := range b.results {
		r := &b.results[i]
		if r.cell == c && r.target == target && r.rep == rep && r.err == nil {
			return r, true
		}
	}
	return nil, false
}

// field makes a metric of a figure of the result itself.
func (b *bench) field(f func(*result) (float64, bool)) metric {
	return func(c cell, target string, rep int) (float64, bool) {
		r, ok := b.result(c, target, rep)
		if !ok {
			return 0, false
		}
		return f(r)
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (b *bench) ops() metric {
	return b.field(func(r *result) (float64, bool) { return r.ops, r.ops > 0 })
}

func (b *bench) cpu() metric {
	return b.field(func(r *result) (float64, bool) { return r.cpuPerReq, true })
}

func (b *bench) switches() metric {
	return b.field(func(r *result) (float64, bool) { return r.switchesPerReq, true })
}

func (b *bench) rssMiB() metric {
	return b.field(func(r *result) (float64, bool) { return float64(r.rss) / (1 << 20), true })
}

// latency is a percentile of r in µs; p999 is -1 when not reported.
func (b *bench) latency(p func(*result) time.Duration) metric {
	return b.field(func(r *result) (float64, bool) { return micros(p(r)), p(r) >= 0 })
}

// added is the latency a target adds to direct's: its percentile minus
// direct's in the same cell and repetition.
func (b *bench) added(p func(*result) time.Duration) metric {
	return func(c cell, target string, rep int) (float64, bool) {
		if target == direct {
			return 0, false
		}
		r, ok1 := b.result(c, target, rep)
		d, ok2 := b.result(c, direct, rep)
		if !ok1 || !ok2 || p(r) < 0 || p(d) < 0 {
			return 0, false
		}
		return micros(p(r) - p(d)), true
	}
}

// toNutcracker is m of a target divided by m of nutcracker in the same
// cell and repetition; there is none when either is not positive (an
// added latency lost in noise has no meaningful ratio).
func toNutcracker(m metric) metric {
	return func(c cell, target string, rep int) (float64, bool) {
		if target == direct || target == nutcracker {
			return 0, false
		}
		v, ok1 := m(c, target, rep)
		n, ok2 := m(c, nutcracker, rep)
		if !ok1 || !ok2 || v <= 0 || n <= 0 {
			return 0, false
		}
		return v / n, true
	}
}

// sysPerReq is the strace pass's system calls per request: all of them
// with name "", else those of that name.
func (b *bench) sysPerReq(name string) metric {
	return b.field(func(r *result) (float64, bool) {
		if r.sys == nil || r.sysRequests == 0 {
			return 0, false
		}
		n := r.sys.total
		if name != "" {
			n = r.sys.calls[name]
		}
		return float64(n) / float64(r.sysRequests), true
	})
}

func (b *bench) sysRequests() metric {
	return b.field(func(r *result) (float64, bool) { return float64(r.sysRequests), r.sys != nil })
}

// detail formats m of c and target for a detailed table: median
// [min–max], followed by "(2 of 3)" when only some repetitions have a
// figure (failed passes, an added latency too small for a ratio).
func (b *bench) detail(m metric, c cell, target string, f func(float64) string) string {
	sp := b.spread(m, c, target)
	text := sp.format(f)
	if sp.n > 0 && sp.n < b.opts.repeat {
		text += fmt.Sprintf(" (%d of %d)", sp.n, b.opts.repeat)
	}
	return text
}

// spread summarises m over the repetitions.
func (b *bench) spread(m metric, c cell, target string) spread {
	var vals []float64
	for rep := range b.opts.repeat {
		if v, ok := m(c, target, rep); ok {
			vals = append(vals, v)
		}
	}
	return spreadOf(vals)
}

func (b *bench) targetNames() []string {
	var names []string
	for _, t := range b.targets {
		names = append(names, t.name)
	}
	return names
}

func (b *bench) hasNutcracker() bool { return slices.Contains(b.targetNames(), nutcracker) }

// reportCells returns the measured cells grouped for reading: by pipeline
// depth, then row, then client count, so that a row's scaling with the
// clients reads down a table.
func (b *bench) reportCells() []cell {
	index := func(xs []string, x string) int { return slices.Index(xs, x) }
	var rows []string
	for _, c := range b.cells {
		if !slices.Contains(rows, c.row) {
			rows = append(rows, c.row)
		}
	}
	cells := slices.Clone(b.cells)
	sort.SliceStable(cells, func(i, j int) bool {
		a, c := cells[i], cells[j]
		if pa, pc := slices.Index(b.opts.pipelines, a.pipeline), slices.Index(b.opts.pipelines, c.pipeline); pa != pc {
			return pa < pc
		}
		if ra, rc := index(rows, a.row), index(rows, c.row); ra != rc {
			return ra < rc
		}
		return slices.Index(b.opts.conns, a.conns) < slices.Index(b.opts.conns, c.conns)
	})
	return cells
}

// table is a markdown table under construction.
type table struct {
	s *strings.Builder
}

func (t table) header(cols ...string) {
	fmt.Fprintf(t.s, "| %s |\n|", strings.Join(cols, " | "))
	for i := range cols {
		if i == 0 || cols[i] == "target" {
			t.s.WriteString("---|")
		} else {
			t.s.WriteString("--:|")
		}
	}
	t.s.WriteString("\n")
}

func (t table) row(cells ...string) {
	fmt.Fprintf(t.s, "| %s |\n", strings.Join(cells, " | "))
}

func (b *bench) markdown() string {
	o := b.opts
	var s strings.Builder
	showP := len(o.pipelines) > 1
	cells := b.reportCells()
	targets := b.targetNames()
	nut := b.hasNutcracker()

	fmt.Fprintf(&s, "# walnut compared with nutcracker and direct\n\n")
	fmt.Fprintf(&s, "`go run ./bench/compare %s` — %s, %s/%s, %d CPUs, %s.  \n",
		strings.Join(o.args, " "), time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&s, "%d redis-server and %d memcached; %s.  \n", o.servers, o.servers, strings.Join(b.versions, "; "))
	fmt.Fprintf(&s, "Clients %s; pipeline %s; %d requests per cell and target; key space %d; values of %d bytes; %d repetition(s).\n\n",
		joinInts(o.conns), joinInts(o.pipelines), o.requests, o.keyspace, o.valSize, o.repeat)
	fmt.Fprintf(&s, "Targets:\n\n")
	for _, t := range b.targets {
		fmt.Fprintf(&s, "- **%s**: %s\n", t.name, t.desc)
	}
	s.WriteString("\n")
	if o.repeat > 1 {
		fmt.Fprintf(&s, "Each figure is the median of %d repetitions; the detailed tables add [min–max].", o.repeat)
	} else {
		s.WriteString("One repetition: each figure is one measurement.")
	}
	if nut {
		s.WriteString(" A ratio such as (1.25×) is the target's figure ÷ nutcracker's")
		if o.repeat > 1 {
			s.WriteString(", taken within each repetition and then the median of those")
		}
		s.WriteString(".")
	}
	s.WriteString(" Added latency is the target's percentile minus direct's in the same cell and repetition.\n\n")

	// At a glance: one small table per figure, targets as columns.
	s.WriteString("## At a glance\n\n")
	glance := []struct {
		title    string
		m        metric
		f        func(float64) string
		noDirect bool
	}{
		{"CPU µs per request", b.cpu(), num, false},
		{"Latency added, p50 µs", b.added(func(r *result) time.Duration { return r.p50 }), num, true},
		{"Latency added, p99 µs", b.added(func(r *result) time.Duration { return r.p99 }), num, true},
		{"Throughput, requests/s", b.ops(), whole, false},
		{"Context switches per request", b.switches(), num, false},
	}
	for _, g := range glance {
		fmt.Fprintf(&s, "### %s\n\n", g.title)
		cols := []string{"cell"}
		for _, t := range targets {
			if !(g.noDirect && t == direct) {
				cols = append(cols, t)
			}
		}
		tb := table{&s}
		tb.header(cols...)
		ratio := toNutcracker(g.m)
		for _, c := range cells {
			line := []string{c.label(showP)}
			for _, t := range cols[1:] {
				v := b.spread(g.m, c, t)
				text := "—"
				if v.n > 0 {
					text = g.f(v.med)
				}
				if r := b.spread(ratio, c, t); r.n > 0 {
					text += " (" + times(r.med) + ")"
				}
				line = append(line, text)
			}
			tb.row(line...)
		}
		s.WriteString("\n")
	}

	// Details: one long table per pipeline depth, every figure with its
	// spread over the repetitions.
	p50 := func(r *result) time.Duration { return r.p50 }
	p99 := func(r *result) time.Duration { return r.p99 }
	p999 := func(r *result) time.Duration { return r.p999 }
	cols := []struct {
		name string
		m    metric
		f    func(float64) string
	}{
		{"ops/s", b.ops(), whole},
		{"p50 µs", b.latency(p50), num},
		{"p99 µs", b.latency(p99), num},
		{"p999 µs", b.latency(p999), num},
		{"added p50 µs", b.added(p50), num},
		{"added p99 µs", b.added(p99), num},
		{"CPU µs/req", b.cpu(), num},
		{"ctx sw/req", b.switches(), num},
		{"RSS MiB", b.rssMiB(), num},
	}
	if nut {
		cols = append(cols, []struct {
			name string
			m    metric
			f    func(float64) string
		}{
			{"ops/s ÷ nc", toNutcracker(b.ops()), times},
			{"CPU/req ÷ nc", toNutcracker(b.cpu()), times},
			{"added p50 ÷ nc", toNutcracker(b.added(p50)), times},
			{"added p99 ÷ nc", toNutcracker(b.added(p99)), times},
		}...)
	}
	for _, p := range o.pipelines {
		fmt.Fprintf(&s, "## Details, pipeline %d\n\n", p)
		head := []string{"cell", "target"}
		for _, c := range cols {
			head = append(head, c.name)
		}
		head = append(head, "error replies")
		tb := table{&s}
		tb.header(head...)
		for _, c := range cells {
			if c.pipeline != p {
				continue
			}
			for _, t := range targets {
				line := []string{c.label(false), t}
				for _, col := range cols {
					line = append(line, b.detail(col.m, c, t, col.f))
				}
				var errReplies uint64
				for _, r := range b.results {
					if r.cell == c && r.target == t {
						errReplies += r.errReplies
					}
				}
				tb.row(append(line, strconv.FormatUint(errReplies, 10))...)
			}
		}
		s.WriteString("\n")
	}

	b.straceTable(&s, cells, showP)

	var failures []string
	threadsGone := 0
	for _, r := range b.results {
		threadsGone += r.threadsGone
		where := fmt.Sprintf("%s, %s, repetition %d", r.cell.label(true), r.target, r.rep+1)
		if r.err != nil {
			failures = append(failures, fmt.Sprintf("%s: %s", where, oneLine(r.err.Error())))
		}
		if r.sysErr != nil {
			failures = append(failures, fmt.Sprintf("%s, strace pass: %s", where, oneLine(r.sysErr.Error())))
		}
	}
	if len(failures) > 0 {
		s.WriteString("## Failures\n\n")
		for _, f := range failures {
			fmt.Fprintf(&s, "- %s\n", f)
		}
		s.WriteString("\n")
	}

	fmt.Fprintf(&s, "## Notes\n\n")
	notes := []string{
		"A cell is one row at one client count (c) and pipeline depth (P). In each repetition every cell is measured against every target in turn, the target order rotated by one each repetition, so that drifting noise hits the targets alike.",
		"direct is the first redis-server (Redis rows) or memcached (memcached rows) alone; its CPU, context switches and RSS are that server's own, the proxies' are the proxy processes' alone. The proxies spread the keys over every backend, direct sends them all to one.",
		"Latency is per request; with pipelining, a batch's round trip divided by the pipeline depth. Added latency subtracts direct's percentile from the target's, both from the same cell and repetition; it can be negative within noise. rb-* rows come from redis-benchmark, which reports no p999.",
		"mset and mcmget carry 10 keys and count as one request. Keys are key:N without a hash tag.",
		"CPU is utime+stime from /proc/PID/stat (every thread, exited ones included), before and after the timed pass, so it includes connecting the clients; it is counted in clock ticks of 10 ms, so a cell needs a CPU time well above that (-n) for a precise figure.",
		"Context switches are voluntary plus nonvoluntary, summed over every thread from /proc/PID/task/TID/status and matched by TID between the two snapshots (a thread started in between counts in full). /proc/PID/status alone would count only the main thread.",
	}
	if least, ok := b.leastCPU(); ok && least < 100*time.Second/clockTicks {
		notes = append(notes, fmt.Sprintf("The least CPU time measured in one pass was %v (%d clock tick(s)), so the CPU figures of the cheapest passes may be off by up to %.0f%%; raise -n for finer ones.",
			least, least*clockTicks/time.Second, 100/max(float64(least*clockTicks/time.Second), 1)))
	}
	if threadsGone > 0 {
		notes = append(notes, fmt.Sprintf("%d thread(s) exited during timed passes; the context switches they made in those passes are missing.", threadsGone))
	}
	for _, t := range b.targets {
		if len(t.redisPIDs) > 1 {
			notes = append(notes, "A variant with workers sums CPU, context switches and RSS over its processes (RSS counts pages they share once per process). With SO_REUSEPORT the kernel spreads connections over the workers by a hash of their addresses, so with few clients some workers may get none.")
			break
		}
	}
	if nut {
		notes = append(notes, "÷ nc is the target's figure divided by nutcracker's in the same cell and repetition; the median ratio need not equal the ratio of the medians. There is no ratio when either figure is zero or negative.")
	}
	if o.repeat > 1 {
		notes = append(notes, fmt.Sprintf("In the detailed tables, \"(1 of %d)\" after a figure says on how many repetitions it rests when not on all (a failed pass, an added latency too small for a ratio).", o.repeat))
	}
	notes = append(notes, b.notes...)
	for _, n := range notes {
		fmt.Fprintf(&s, "- %s\n", n)
	}
	return s.String()
}

// leastCPU returns the least CPU time that a successful timed pass
// measured; ok is false if there is none.
func (b *bench) leastCPU() (least time.Duration, ok bool) {
	for _, r := range b.results {
		if r.err == nil && (!ok || r.cpu < least) {
			least, ok = r.cpu, true
		}
	}
	return least, ok
}

// straceTable writes the system calls per request of the strace passes:
// the total and the calls that are among the four most frequent of any
// target's pass, most frequent first, at most eight of them.
func (b *bench) straceTable(s *strings.Builder, cells []cell, showP bool) {
	peak := map[string]float64{}
	for _, r := range b.results {
		if r.sys == nil || r.sysRequests == 0 {
			continue
		}
		for _, name := range r.sys.top(4) {
			peak[name] = max(peak[name], float64(r.sys.calls[name])/float64(r.sysRequests))
		}
	}
	if len(peak) == 0 {
		return
	}
	names := make([]string, 0, len(peak))
	for name := range peak {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if peak[names[i]] != peak[names[j]] {
			return peak[names[i]] > peak[names[j]]
		}
		return names[i] < names[j]
	})
	names = names[:min(len(names), 8)]

	fmt.Fprintf(s, "## System calls per request (strace pass)\n\n")
	fmt.Fprintf(s, "After the timed passes of a cell, each target is driven again with %d requests while strace -c -f is attached to its processes.\n\n", b.opts.straceRequests)
	tb := table{s}
	tb.header(append([]string{"cell", "target", "requests", "total"}, names...)...)
	for _, c := range cells {
		for _, t := range b.targetNames() {
			if b.spread(b.sysRequests(), c, t).n == 0 {
				continue
			}
			line := []string{c.label(showP), t, b.detail(b.sysRequests(), c, t, whole), b.detail(b.sysPerReq(""), c, t, num)}
			for _, name := range names {
				line = append(line, b.detail(b.sysPerReq(name), c, t, num))
			}
			tb.row(line...)
		}
	}
	s.WriteString("\nCounts include what a target does regardless of requests (timers, the Go runtime's background work), which the slower traced pass inflates, and accepting and closing the client connections.\n\n")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// oneLine makes an error message fit a markdown list item.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// svg draws the median throughput per cell as grouped bars, one colour
// per target.
func (b *bench) svg() string {
	cells := b.reportCells()
	showP := len(b.opts.pipelines) > 1
	targets := b.targetNames()
	colours := []string{"#999999", "#e07b39", "#3b7dd8", "#5aa05a", "#a05aa0", "#c8b400", "#39b8c8", "#c83939"}
	ops := b.ops()
	maxOps := 1.0
	for _, c := range cells {
		for _, t := range targets {
			maxOps = max(maxOps, b.spread(ops, c, t).med)
		}
	}
	const (
		left, top, barW, gap, plotH = 70, 40, 14, 20, 260
	)
	groupW := barW*len(targets) + gap
	width := max(left+groupW*len(cells)+20, left+110*len(targets)+20)
	height := top + plotH + 90
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&s, `<text x="%d" y="20" font-size="14">throughput (requests/s, median), -c %s -P %s</text>`+"\n",
		left, joinInts(b.opts.conns), joinInts(b.opts.pipelines))
	for i := 0; i <= 4; i++ {
		y := top + plotH - plotH*i/4
		fmt.Fprintf(&s, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" text-anchor="end">%.0fk</text>`+"\n",
			left, width-10, y, y, left-5, y+4, maxOps*float64(i)/4/1000)
	}
	for gi, c := range cells {
		x0 := left + gap/2 + gi*groupW
		label := html.EscapeString(c.label(showP))
		for ti, t := range targets {
			v := b.spread(ops, c, t)
			if v.n == 0 {
				continue
			}
			h := int(v.med / maxOps * plotH)
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s: %.0f ops/s</title></rect>`+"\n",
				x0+ti*barW, top+plotH-h, barW-2, h, colours[ti%len(colours)], label, html.EscapeString(t), v.med)
		}
		cx := x0 + barW*len(targets)/2
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end" transform="rotate(-30 %d %d)">%s</text>`+"\n",
			cx, top+plotH+15, cx, top+plotH+15, label)
	}
	for ti, t := range targets {
		x := left + ti*110
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, top+plotH+60, colours[ti%len(colours)], x+16, top+plotH+70, html.EscapeString(t))
	}
	s.WriteString("</svg>\n")
	return s.String()
}

package main

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"runtime"
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

func us(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// rowOrder lists the rows as they appear in the results.
func (b *bench) rowOrder() []string {
	var rows []string
	for _, r := range b.results {
		if len(rows) == 0 || rows[len(rows)-1] != r.row {
			rows = append(rows, r.row)
		}
	}
	return rows
}

func (b *bench) find(row, target string) (result, bool) {
	for _, r := range b.results {
		if r.row == row && r.target == target && r.err == nil {
			return r, true
		}
	}
	return result{}, false
}

func (b *bench) markdown() string {
	o := b.opts
	var s strings.Builder
	fmt.Fprintf(&s, "# walnut compared with nutcracker and direct\n\n")
	fmt.Fprintf(&s, "`go run ./bench/compare %s` — %s, %s/%s, %d CPUs, %s.  \n",
		strings.Join(o.args, " "), time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&s, "%d redis-server and %d memcached; %s.  \n", o.servers, o.servers, strings.Join(b.versions, "; "))
	fmt.Fprintf(&s, "%d connections, pipeline %d, %d requests per row and target, key space %d, values of %d bytes.\n\n",
		o.conns, o.pipeline, o.requests, o.keyspace, o.valSize)

	fmt.Fprintf(&s, "| row | target | ops/s | p50 µs | p99 µs | p999 µs | CPU s / M req | RSS MiB | error replies |\n")
	fmt.Fprintf(&s, "|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range b.results {
		if r.err != nil {
			fmt.Fprintf(&s, "| %s | %s | failed: %s | | | | | | |\n", r.row, r.target, strings.ReplaceAll(r.err.Error(), "|", "/"))
			continue
		}
		fmt.Fprintf(&s, "| %s | %s | %.0f | %s | %s | %s | %.2f | %.1f | %d |\n",
			r.row, r.target, r.ops, us(r.p50), us(r.p99), us(r.p999), r.cpuPerM, float64(r.rss)/(1<<20), r.errReplies)
	}

	fmt.Fprintf(&s, "\n| row | ops/s walnut / nutcracker | ops/s walnut / direct | p99 walnut / nutcracker | CPU per req walnut / nutcracker | RSS walnut / nutcracker |\n")
	fmt.Fprintf(&s, "|---|--:|--:|--:|--:|--:|\n")
	for _, row := range b.rowOrder() {
		w, okW := b.find(row, "walnut")
		n, okN := b.find(row, "nutcracker")
		d, okD := b.find(row, "direct")
		if !okW {
			continue
		}
		if !okN {
			n = result{}
		}
		if !okD {
			d = result{}
		}
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s |\n", row,
			ratio(w.ops, n.ops), ratio(w.ops, d.ops), ratio(float64(w.p99), float64(n.p99)),
			ratio(w.cpuPerM, n.cpuPerM), ratio(float64(w.rss), float64(n.rss)))
	}
	fmt.Fprintf(&s, "\nNotes:\n\n")
	notes := append([]string{
		"direct is the first redis-server (Redis rows) or memcached (memcached rows) alone; its CPU and RSS are that server's own, the proxies' are the proxy process's alone.",
		"Latency is per request; with pipelining, a batch's round trip divided by the pipeline depth. rb-* rows come from redis-benchmark, which reports no p999.",
		"mset and mcmget carry 10 keys and count as one request. Keys are key:N without a hash tag.",
		"CPU is measured in clock ticks (10 ms): short rows give coarse figures.",
	}, b.notes...)
	for _, n := range notes {
		fmt.Fprintf(&s, "- %s\n", n)
	}
	return s.String()
}

// svg draws throughput per row as grouped bars, one colour per target.
func (b *bench) svg() string {
	rows := b.rowOrder()
	var targets []string
	for _, t := range b.targets {
		targets = append(targets, t.name)
	}
	colours := []string{"#999999", "#e07b39", "#3b7dd8", "#5aa05a"}
	maxOps := 1.0
	for _, r := range b.results {
		maxOps = max(maxOps, r.ops)
	}
	const (
		left, top, barW, gap, plotH = 70, 40, 18, 24, 260
	)
	groupW := barW*len(targets) + gap
	width := left + groupW*len(rows) + 20
	height := top + plotH + 70
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&s, `<text x="%d" y="20" font-size="14">throughput (ops/s), -c %d -P %d</text>`+"\n", left, b.opts.conns, b.opts.pipeline)
	for i := 0; i <= 4; i++ {
		y := top + plotH - plotH*i/4
		fmt.Fprintf(&s, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" text-anchor="end">%.0fk</text>`+"\n",
			left, width-10, y, y, left-5, y+4, maxOps*float64(i)/4/1000)
	}
	for gi, row := range rows {
		x0 := left + gap/2 + gi*groupW
		for ti, t := range targets {
			r, ok := b.find(row, t)
			if !ok {
				continue
			}
			h := int(r.ops / maxOps * plotH)
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s: %.0f ops/s</title></rect>`+"\n",
				x0+ti*barW, top+plotH-h, barW-2, h, colours[ti%len(colours)], html.EscapeString(row), t, r.ops)
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+barW*len(targets)/2, top+plotH+15, html.EscapeString(row))
	}
	for ti, t := range targets {
		x := left + ti*110
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, top+plotH+35, colours[ti%len(colours)], x+16, top+plotH+45, t)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

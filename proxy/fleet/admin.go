package fleet

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walnutproxy/walnut/proxy/metrics"
)

// Collector returns a Prometheus collector of the fleet's pools, read at
// every scrape (pools added or removed by a reload appear or disappear),
// and of its reloads; see package proxy/metrics for the metrics. A scrape
// sees the pools of one configuration. Register it with a registry of your
// own to serve the metrics elsewhere than AdminHandler.
func (f *Fleet) Collector() prometheus.Collector {
	return metrics.NewCollector(metrics.Source{
		Pools:   f.Pools,
		Reloads: f.ReloadStats,
		Lock:    f.reloadMu.RLocker(),
	})
}

// Unready returns the names of the pools none of whose servers is live
// (every one ejected), in order; it is empty when every pool can route
// requests. /readyz answers 503 while it is not empty.
func (f *Fleet) Unready() []string {
	return metrics.Unready(f.Pools())
}

// AdminHandler returns a new handler of the admin endpoints (see the
// package documentation): the fleet's metrics with the Go runtime and
// process collectors on /metrics, net/http/pprof on /debug/pprof/, liveness
// on /healthz, readiness on /readyz and reloads (POST, ReloadFile("POST
// /reload")) on /reload. Nothing is registered on http.DefaultServeMux.
func (f *Fleet) AdminHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		f.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if down := f.Unready(); len(down) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "no live server in pools: %s\n", strings.Join(down, ", "))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed: POST to reload the configuration", http.StatusMethodNotAllowed)
			return
		}
		if err := f.ReloadFile("POST /reload"); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrConfig) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	return mux
}

package main

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walnutproxy/walnut/internal/metrics"
	"github.com/walnutproxy/walnut/proxy"
)

// adminHandler serves --admin-addr: Prometheus metrics of pools (and of
// the Go runtime and the process) on /metrics, net/http/pprof on
// /debug/pprof/, liveness on /healthz and readiness on /readyz. Nothing is
// registered on http.DefaultServeMux.
func adminHandler(pools []*proxy.Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(metrics.Source{Pools: func() []*proxy.Server { return pools }}),
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
		if down := metrics.Unready(pools); len(down) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "no live server in pools: %s\n", strings.Join(down, ", "))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// newAdminServer returns the http.Server for --admin-addr.
func newAdminServer(pools []*proxy.Server) *http.Server {
	return &http.Server{
		Handler:           adminHandler(pools),
		ReadHeaderTimeout: 10 * time.Second,
	}
}

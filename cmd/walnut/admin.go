package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walnutproxy/walnut/internal/metrics"
)

// adminHandler serves --admin-addr: Prometheus metrics of the pools of src
// (and of the Go runtime and the process) on /metrics, net/http/pprof on
// /debug/pprof/, liveness on /healthz, readiness on /readyz and
// configuration reloads (POST, which calls reload) on /reload. Nothing is
// registered on http.DefaultServeMux.
func adminHandler(src metrics.Source, reload func(trigger string) error) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(src),
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
		if down := metrics.Unready(src.Pools()); len(down) > 0 {
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
		if err := reload("POST /reload"); err != nil {
			code := http.StatusInternalServerError
			var ce *configError
			if errors.As(err, &ce) {
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

// newAdminServer returns the http.Server for --admin-addr.
func newAdminServer(src metrics.Source, reload func(trigger string) error) *http.Server {
	return &http.Server{
		Handler:           adminHandler(src, reload),
		ReadHeaderTimeout: 10 * time.Second,
	}
}

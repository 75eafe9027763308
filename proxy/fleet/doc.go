// Package fleet serves every pool of one nutcracker.yml together, as one
// nutcracker process does: a proxy.Server per pool, nutcracker's stats
// server, an admin HTTP server (Prometheus metrics, health, readiness,
// pprof, reload) and whole-file reloads that keep clients connected. It is
// what cmd/walnut runs; cmd/walnut adds only flags, signals, logging and
// daemonising.
//
// The name: a proxy.Server is one pool; a Fleet is the pools of one file,
// started, reloaded and stopped as a unit.
//
// # Use
//
//	file, err := config.Load("nutcracker.yml")
//	...
//	f, err := fleet.New(file, fleet.Options{StatsAddr: "127.0.0.1:22222", Logger: logger})
//	...
//	go func() { errc <- f.ListenAndServe() }()
//	...
//	err = f.ReloadFile("SIGHUP")       // re-read the file and apply it
//	...
//	err = f.Shutdown(ctx)              // stop accepting, answer, close
//
// The lifecycle follows net/http's Server: New builds the pools and
// connects to nothing (unless a pool has preconnect); Listen binds every
// listener, so that a caller can fail before serving if any address is
// taken, as nutcracker does; Serve (or ListenAndServe) serves and blocks;
// Shutdown stops accepting and lets clients receive the replies to what
// they have sent; Close closes at once.
//
// # Reloading
//
// Reload applies a new configuration to the running fleet, and ReloadFile
// re-reads the file first (config.Load of File.Name). Pools are matched by
// name:
//
//   - A kept pool gets its new configuration with proxy.Server.Reload:
//     servers added, removed or re-weighted, the hash, distribution and the
//     other keys apply to requests read afterwards; requests in flight
//     finish with the configuration they started with; unchanged servers
//     keep their connections. Its clients stay connected.
//   - If a kept pool's listen address changes, the new address is bound and
//     served, and then the old listener closed: clients connected through
//     the old address stay connected, new ones must use the new address.
//     backlog, reuseport and a unix socket's permission apply when an
//     address is bound.
//   - An added pool is created, bound and served.
//   - A removed pool's listener is closed at once and the pool shut down in
//     the background: its clients receive the replies to what they have
//     sent, for at most Options.DrainTimeout, and are disconnected.
//   - The stats JSON, the metrics and the readiness report the new set of
//     pools.
//
// A reload is all or nothing. The file is loaded and checked, every pool
// checked as proxy.New would, a pool whose protocol changes rejected
// ("pool 'x': changing the protocol needs a restart"), the added pools
// created and every new listen address that none of the fleet's own
// listeners holds bound; if any of that fails, what was made is closed and
// nothing changes (such errors match ErrConfig when the configuration
// itself is at fault). Only then is the change applied. An address that
// one of the fleet's own listeners holds, as when a pool is renamed
// (removed and added) with the same listen address, is bound after that
// listener is closed; should that bind fail, the rest of the new
// configuration is in force, the pool accepts no new clients, and the
// reload is reported as failed. Options (stats, admin server, logger) are
// not reloaded.
//
// The outcome is logged: "configuration reloaded" at info level with the
// file, the trigger and the numbers of pools added, removed and changed, or
// "configuration reload failed" at error level with the file, the trigger
// and the reason. It is counted in ReloadStats and in the metrics
// walnut_config_reloads_total, walnut_config_reload_failures_total,
// walnut_config_last_reload_successful and
// walnut_config_last_reload_success_timestamp_seconds.
//
// # Admin endpoints
//
// AdminHandler serves, on a private ServeMux (nothing is registered on
// http.DefaultServeMux):
//
//	/metrics        Prometheus text: every stats-JSON counter of every pool
//	                and server, latency histograms per pool and command,
//	                round-trip histograms per server and the reload counts
//	                (see package proxy/metrics for the names), read at
//	                scrape time, plus the Go runtime and process collectors
//	/debug/pprof/   net/http/pprof (index, cmdline, profile, symbol, trace,
//	                and the named profiles such as heap and goroutine)
//	/healthz        200 "ok" while the process serves
//	/readyz         200 "ok" when every pool has at least one server that
//	                is not ejected, else 503 naming the pools without one
//	/reload         POST: ReloadFile("POST /reload"); 200 "ok", 400 and the
//	                reason if the configuration is rejected (ErrConfig), 500
//	                and the reason for another failure (a new address that
//	                cannot be bound); other methods get 405
//
// With Options.AdminAddr the fleet serves it itself; otherwise mount it, or
// register Collector with a registry of your own. Bind it to a loopback
// address: it serves profiles and process details without authentication.
package fleet

// Command walnut is a drop-in replacement for nutcracker (twemproxy): it
// reads the same nutcracker.yml (see package config), takes the same
// command-line options, serves the same stats and handles the same signals.
// Each pool of the configuration is served by a proxy.Server; the pools,
// the stats and admin servers and reloads are package proxy/fleet's, which
// programs can embed. This command adds the options, signals, logging and
// daemonising.
//
// # Usage
//
//	walnut [-?hVdDt] [-v verbosity level] [-o output file]
//	       [-c conf file] [-s stats port] [-a stats addr]
//	       [-i stats interval] [-p pid file] [-m mbuf size]
//	       [--admin-addr host:port] [--loops N]
//
//	-h, --help             print the version and this usage (stderr), exit 0
//	-V, --version          print "This is walnut-VERSION" (stdout), exit 0
//	-t, --test-conf        check the configuration file and exit
//	-d, --daemonize        run as a daemon
//	-D, --describe-stats   print the version and the stats fields (stderr), exit 0
//	-v, --verbose=N        log level 0..11 (default 5; above 11 means 11)
//	-o, --output=S         log file (default: stderr)
//	-c, --conf-file=S      configuration file (default conf/nutcracker.yml)
//	-s, --stats-port=N     stats TCP port, 1..65535 (default 22222)
//	-a, --stats-addr=S     stats listen address (default 127.0.0.1)
//	-i, --stats-interval=N stats aggregation interval in ms (default 30000)
//	-p, --pid-file=S       pid file (default: none)
//	-m, --mbuf-size=N      512..16777216 (default 16384); checked, not used
//	    --admin-addr=S     serve the admin HTTP endpoints on HOST:PORT
//	                       (default: off; walnut's own, long only)
//	    --loops=N          serve the clients of every pool with N event
//	                       loops (walnut's own, long only; Linux; default:
//	                       half of GOMAXPROCS, at least 1; 0 and the
//	                       default elsewhere: a goroutine per client)
//
// Numbers are decimal digits only, as nutcracker reads them. A bad option
// prints nutcracker's message with "walnut:" for "nutcracker:" (such as
// "walnut: option -s value 0 is not a valid port"), then the usage, and
// exits with status 1.
//
// With -t, walnut prints "walnut: configuration file 'F' syntax is ok" and
// exits 0, or prints why the file is rejected (FILE:LINE: pool "P": key "K":
// reason), then "walnut: configuration file 'F' syntax is invalid", and
// exits 1. Without -t an invalid file is reported the same way.
//
// # Running
//
// walnut loads the configuration, creates every pool, binds every pool's
// listener and then the stats listener, writes the pid file (-p: the pid in
// decimal and a newline), and only then serves. If any step fails it
// prints why, such as "walnut: bind on pool 'alpha' to addr
// '127.0.0.1:22121' failed: address already in use", closes what it had
// opened and exits 1. A unix socket listener is removed when it is closed.
//
// The log is written with log/slog's text handler to stderr, or appended
// to the -o file (created with mode 0644). The verbosity maps nutcracker's
// levels onto slog's: 0-3 (EMERG to ERR) show errors, 4 (WARN) warnings,
// 5 (NOTICE, the default) and 6 (INFO) informational lines, 7-11 (DEBUG and
// above) debug lines. The start ("walnut started", with the version, pid,
// pools and configuration file), stop ("walnut stopped") and signal lines
// are written at every verbosity, shown as INFO.
//
// # Event loops
//
// On Linux walnut serves clients with event loops (proxy.Engine): each loop
// is one goroutine that owns its clients' sockets and its own connections
// to the servers, and does every read and write itself, so a request
// wakes no goroutine and the requests of all the clients ready at once
// leave in one write per server. This costs less CPU per request and adds
// less latency than a goroutine per client. Each loop opens
// server_connections connections to each server, so a server sees --loops
// times as many as with nutcracker. --loops=0 serves each client with a
// goroutine of its own instead.
//
// # Admin HTTP server
//
// With --admin-addr=HOST:PORT walnut binds that address too (":PORT" means
// 127.0.0.1:PORT; write 0.0.0.0:PORT to serve every interface) (after the
// stats listener; a failure exits 1 with "walnut: bind on admin server addr
// 'HOST:PORT' failed: …") and serves, on a private ServeMux:
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
//	/reload         POST: reload the configuration (below); 200 "ok", 400
//	                and the reason if the file is rejected, 500 and the
//	                reason for another failure (a new address that cannot
//	                be bound); other methods get 405
//
// Bind it to a loopback address, such as 127.0.0.1:22223: it serves
// profiles and process details without authentication. It is shut down
// with the rest on SIGTERM or SIGINT.
//
// # Reloading the configuration
//
// On SIGHUP, after reopening the log file, and on POST /reload, walnut
// re-reads the -c file and applies it to the running process, one reload at
// a time. Pools are matched by name:
//
//   - A kept pool gets its new configuration with proxy.Server.Reload:
//     servers added, removed or re-weighted, the hash, distribution and the
//     other keys apply to requests read afterwards; requests in flight
//     finish with the configuration they started with; unchanged servers
//     keep their connections. Its clients stay connected.
//   - If a kept pool's listen address changes, walnut binds the new address,
//     serves it, and then closes the old listener: clients connected
//     through the old address stay connected, new ones must use the new
//     address. backlog, reuseport and a unix socket's permission apply when
//     an address is bound.
//   - An added pool is created, bound and served.
//   - A removed pool's listener is closed at once and the pool shut down in
//     the background as on SIGTERM: its clients receive the replies to what
//     they have sent, for at most 10 seconds, and are disconnected.
//   - The stats JSON, /metrics and /readyz report the new set of pools.
//
// A reload is all or nothing. walnut first loads and checks the file,
// checks every pool as proxy.New would, rejects a pool whose protocol
// changes ("pool 'x': changing the protocol needs a restart"), creates the
// added pools and binds every new listen address that none of its own
// listeners holds; if any of that fails, it closes what it made and
// nothing changes. Only then does it apply the change. An address that
// one of its own listeners holds, as when a pool is renamed (removed and
// added) with the same listen address, is bound after that listener is
// closed; should that bind fail, the rest of the new configuration is in
// force, the pool accepts no new clients, and the reload is reported as
// failed. The command-line options (stats, admin server, log) are not
// reloaded.
//
// The outcome is logged: "configuration reloaded" at info level with the
// numbers of pools added, removed and changed, or "configuration reload
// failed" at error level with the file and the reason. It is counted in
// the metrics walnut_config_reloads_total (attempts),
// walnut_config_reload_failures_total, walnut_config_last_reload_successful
// and walnut_config_last_reload_success_timestamp_seconds (the start until
// a reload succeeds).
//
// # Signals
//
//	SIGHUP           reopen the -o file (log rotation: rename the file, send
//	                 SIGHUP, and new lines go to a new file; the line saying
//	                 so is written to the old file), then reload the
//	                 configuration
//	SIGTTIN, SIGTTOU raise or lower the verbosity by one, within 0..11
//	SIGUSR1          reload the configuration (the reload signal twemproxy
//	                 planned); the log file is not reopened
//	SIGUSR2          logged; nothing else
//	SIGSEGV, SIGBUS, SIGFPE
//	                 sent to walnut (by kill): with -o, the stacks of every
//	                 goroutine are written to the log; then "signal received,
//	                 crashing" is logged and walnut dies without cleaning up,
//	                 the Go runtime writing the stacks to stderr and exiting
//	                 with status 2 (GOTRACEBACK=crash: abort with a core
//	                 dump). A real fault inside walnut is the Go runtime's,
//	                 reported on stderr only
//	SIGTERM          graceful shutdown, exit status 0
//	SIGINT           graceful shutdown, exit status 1 (nutcracker exits 1)
//	SIGPIPE          ignored
//
// A graceful shutdown stops accepting clients, lets every client receive
// the replies to the requests it has sent, waiting at most 10 seconds (or
// until a second SIGTERM or SIGINT) before closing the remaining
// connections, closes the stats server, removes the unix sockets and the
// pid file, and logs "walnut stopped".
//
// # Version
//
// -V prints "This is walnut-MAJOR.MINOR.PATCH", the shape of nutcracker's
// "This is nutcracker-0.5.0". A release build sets the version with
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/walnut
//
// go install of a tagged release reports the tag; any other build reports
// the version of the source tree, 0.2.0.
//
// # Daemon
//
// With -d, walnut starts itself again (Go cannot fork) with the same
// arguments, the environment variable WALNUT_DAEMONIZED=1, in a new session
// (setsid), with standard input, output and error on /dev/null and the same
// working directory; the daemon sets its umask to 0 after opening the log
// file, as nutcracker's does. The first process waits until the daemon
// serves, then exits 0, or prints the daemon's startup error and exits 1.
// The daemon reports on an inherited pipe (file descriptor 3), which it
// closes after reporting.
//
// # Exit status
//
// 0 after -h, -V, -D, a valid -t, or SIGTERM. 1 after a bad option, an
// invalid configuration, a failure to start (log file, bind, pid file), a
// listener failing while serving (not one closed by a reload), or SIGINT.
// 2 after SIGSEGV, SIGBUS or SIGFPE.
//
// # Differences from nutcracker 0.5.0
//
//   - The stats server listens on 127.0.0.1 by default, not 0.0.0.0; give
//     -a 0.0.0.0 for nutcracker's behaviour. Its "service" is "walnut".
//   - -m is checked as nutcracker checks it and otherwise ignored: walnut has
//     no mbufs.
//   - -V prints to stdout (nutcracker: stderr) and only its first line,
//     "This is walnut-VERSION".
//   - -t and a failed start print why the configuration is rejected;
//     nutcracker -t prints only "syntax is invalid" (twice).
//   - An unknown long option is reported as "unrecognized option '--x'";
//     nutcracker prints "invalid option -- '\0'" with a NUL byte. -? is read
//     as -h (nutcracker lists it in the usage but rejects it). Arguments
//     that are not options are rejected (nutcracker ignores them). Long
//     options cannot be abbreviated.
//   - SIGTERM and SIGINT shut down gracefully and always remove the pid file
//     and unix sockets. nutcracker exits at once on SIGINT, leaving both
//     behind, and dies without cleaning up on SIGTERM.
//   - The pid file is written after the listeners are bound, so a walnut
//     that could not start leaves no pid file.
//   - walnut -d reports the daemon's startup errors and exit status;
//     nutcracker's parent exits 0 before the daemon binds anything. The
//     daemon is started once in a new session rather than forked twice.
//   - SIGHUP also reloads the configuration, and so do SIGUSR1 and POST
//     /reload; nutcracker must be restarted, which disconnects every client.
//   - SIGBUS and SIGFPE sent to walnut are logged as SIGSEGV is; nutcracker
//     dies of them without a line. Its SIGSEGV line is "signal 11 (SIGSEGV)
//     received, core dumping" and it dies of the signal (status 139 in a
//     shell); walnut exits with status 2 unless GOTRACEBACK=crash.
//   - Log lines are log/slog text (time=… level=… msg=… key=value), not
//     nutcracker's "[date] file.c:LINE message".
//
// walnut runs on Unix systems.
package main

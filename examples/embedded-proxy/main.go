// Command embedded-proxy runs walnut's proxy inside a Go program: every pool
// of a nutcracker.yml is served by a proxy/fleet Fleet, with nutcracker's
// stats JSON and, with -admin, the admin endpoints (metrics, health,
// readiness, reload); SIGHUP reloads the file and SIGINT or SIGTERM shuts
// everything down gracefully. It is what cmd/walnut does, in a few dozen
// lines, for programs that want the proxy next to their own code (their
// own health checks, configuration source or tests).
//
//	go run ./examples/embedded-proxy -c examples/demo/nutcracker.yml -stats 127.0.0.1:22222
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy/fleet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Stdout, hup, nil); err != nil {
		fmt.Fprintln(os.Stderr, "embedded-proxy:", err)
		os.Exit(1)
	}
}

// run serves the pools of the -c file until ctx ends, reloading the file
// whenever reload receives. ready, if not nil, receives the listen address
// of each pool (by name) and of the stats server ("stats") once all are
// listening.
func run(ctx context.Context, args []string, out io.Writer, reload <-chan os.Signal, ready chan<- map[string]string) error {
	fs := flag.NewFlagSet("embedded-proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "examples/demo/nutcracker.yml", "nutcracker.yml")
	statsAddr := fs.String("stats", "127.0.0.1:22222", "stats listen address")
	adminAddr := fs.String("admin", "", "admin HTTP listen address (none if empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	file, err := config.Load(*conf)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	f, err := fleet.New(file, fleet.Options{
		Logger:        log,
		StatsAddr:     *statsAddr,
		StatsInterval: time.Second,
		Version:       "embedded",
		AdminAddr:     *adminAddr,
	})
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Listen(); err != nil { // every address bound, or none
		return err
	}
	addrs := map[string]string{"stats": f.StatsAddr().String()}
	for _, name := range f.Names() {
		addrs[name] = f.Addr(name).String()
	}
	errc := make(chan error, 1)
	go func() { errc <- f.Serve() }()
	log.Info("serving", "pools", f.Names(), "addrs", addrs)
	if ready != nil {
		ready <- addrs
	}

	for stopping := false; !stopping; {
		select {
		case <-reload:
			_ = f.ReloadFile("SIGHUP") // the fleet logs the outcome
		case err := <-errc:
			return err
		case <-ctx.Done():
			stopping = true
		}
	}
	// Graceful: stop accepting, answer what clients have sent, close.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(shutdown); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

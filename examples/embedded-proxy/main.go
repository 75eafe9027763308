// Command embedded-proxy runs walnut's proxy inside a Go program: every pool
// of a nutcracker.yml gets a proxy.Server, a proxy.StatsServer serves
// nutcracker's stats JSON, and SIGINT or SIGTERM shuts everything down
// gracefully. It is what cmd/walnut does, in a few dozen lines, for programs
// that want the proxy next to their own code (health endpoints, custom
// configuration sources, tests).
//
//	go run ./examples/embedded-proxy -c examples/demo/nutcracker.yml -stats 127.0.0.1:22222
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "embedded-proxy:", err)
		os.Exit(1)
	}
}

// run serves the pools of the -c file until ctx ends. ready, if not nil,
// receives the listen address of each pool (by name) and of the stats
// server ("stats") once all are listening.
func run(ctx context.Context, args []string, out io.Writer, ready chan<- map[string]string) error {
	fs := flag.NewFlagSet("embedded-proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "examples/demo/nutcracker.yml", "nutcracker.yml")
	statsAddr := fs.String("stats", "127.0.0.1:22222", "stats listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := config.Load(*conf)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(out, nil))

	var servers []*proxy.Server
	var listeners []net.Listener
	addrs := map[string]string{}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, p := range f.Pools {
		s, err := proxy.New(proxy.FromPool(p, log))
		if err != nil {
			return err
		}
		defer s.Close()
		l, err := s.Listen()
		if err != nil {
			return fmt.Errorf("pool %s: %w", p.Name, err)
		}
		servers = append(servers, s)
		listeners = append(listeners, l)
		addrs[p.Name] = l.Addr().String()
	}
	sl, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	stats := &proxy.StatsServer{Pools: servers, Version: "embedded", Interval: time.Second}
	defer stats.Close()
	addrs["stats"] = sl.Addr().String()

	errc := make(chan error, len(servers)+1)
	for i, s := range servers {
		go func() { errc <- s.Serve(listeners[i]) }()
	}
	go func() { errc <- stats.Serve(sl) }()
	log.Info("serving", "pools", len(servers), "addrs", addrs)
	if ready != nil {
		ready <- addrs
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	// Graceful: stop accepting, answer what clients have sent, close.
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdown); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// Command inprocess-client shards Redis or memcached requests inside the
// process, on exactly the servers nutcracker (or walnut's proxy) would use
// for the same nutcracker.yml pool, with no proxy in between.
//
//	go run ./examples/inprocess-client -c examples/demo/nutcracker.yml -pool redis
//
// It writes a few keys, reads them back with one MGET that walnut splits
// across the servers and merges, and prints where each key lives.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "inprocess-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("inprocess-client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "examples/demo/nutcracker.yml", "nutcracker.yml")
	poolName := fs.String("pool", "redis", "pool to use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The pool, by name; listen is not needed (nor resolved) by a client.
	pool, err := config.LoadClientPool(*conf, *poolName)
	if err != nil {
		return err
	}
	// The same Config the proxy would serve the pool with.
	client, err := proxy.NewClient(proxy.FromPool(pool, nil))
	if err != nil {
		return err
	}
	defer client.Close()

	keys := []string{"user:{1000}:name", "user:{1000}:mail", "session:42", "cart:7", "greeting"}
	if pool.Redis {
		return redisDemo(ctx, client, keys, out)
	}
	return memcacheDemo(ctx, client, keys, out)
}

func redisDemo(ctx context.Context, client *proxy.Client, keys []string, out io.Writer) error {
	rdb, err := client.Redis() // typed calls; fails on a memcached pool
	if err != nil {
		return err
	}
	for _, k := range keys {
		// A server's error reply is an error (*proxy.RedisError).
		if err := rdb.Set(ctx, k, "value of "+k, time.Hour); err != nil {
			return err
		}
		fmt.Fprintf(out, "SET %-18s → %s\n", k, client.Ring().LookupString(k).ID())
	}
	// One MGET over every server: walnut splits it and merges the replies
	// in key order (go-redis's Ring would send it to the first key's
	// server only). A missing key's reply is proxy.ErrNil.
	vals, err := rdb.MGet(ctx, keys...)
	if err != nil {
		return err
	}
	for i, v := range vals {
		text, err := v.Text()
		if err != nil {
			return fmt.Errorf("MGET %s: %w", keys[i], err)
		}
		fmt.Fprintf(out, "MGET %-17s = %q\n", keys[i], text)
	}
	if _, err := rdb.Get(ctx, "no-such-key"); !errors.Is(err, proxy.ErrNil) {
		return fmt.Errorf("GET of a missing key: %v, want proxy.ErrNil", err)
	}
	return nil
}

func memcacheDemo(ctx context.Context, client *proxy.Client, keys []string, out io.Writer) error {
	mc := client.Memcache() // typed memcached calls
	for _, k := range keys {
		if err := mc.Set(ctx, &proxy.MemcacheItem{Key: k, Value: []byte("value of " + k)}); err != nil {
			return err
		}
		fmt.Fprintf(out, "set %-18s → %s\n", k, client.Ring().LookupString(k).ID())
	}
	// One get per server, merged; a server that is down would fail only
	// its own keys (a *proxy.GetMultiError beside the others' items).
	items, err := mc.GetMulti(ctx, keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "get (all keys, one request per server, merged):\n")
	for _, k := range keys {
		if it, ok := items[k]; ok {
			fmt.Fprintf(out, "VALUE %s %q\n", k, it.Value)
		}
	}
	if _, err := mc.Get(ctx, "no-such-key"); !errors.Is(err, proxy.ErrCacheMiss) {
		return fmt.Errorf("get of a missing key: %v, want proxy.ErrCacheMiss", err)
	}
	return nil
}

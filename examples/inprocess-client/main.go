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

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/protocol/resp"
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
	for _, k := range keys {
		v, err := client.Command(ctx, "SET", k, "value of "+k)
		if err != nil {
			return err
		}
		if v.Type == resp.TypeError {
			return errors.New(string(v.Str))
		}
		fmt.Fprintf(out, "SET %-18s → %s\n", k, client.Ring().LookupString(k).ID())
	}
	// One MGET over every server: walnut splits it and merges the replies
	// in key order (go-redis's Ring would send it to the first key's
	// server only).
	v, err := client.Command(ctx, append([]string{"MGET"}, keys...)...)
	if err != nil {
		return err
	}
	if v.Type == resp.TypeError {
		return errors.New(string(v.Str))
	}
	for i, e := range v.Elems {
		fmt.Fprintf(out, "MGET %-17s = %q\n", keys[i], e.Str)
	}
	return nil
}

func memcacheDemo(ctx context.Context, client *proxy.Client, keys []string, out io.Writer) error {
	get := []byte("get")
	for _, k := range keys {
		val := "value of " + k
		reply, err := client.Do(ctx, fmt.Appendf(nil, "set %s 0 0 %d\r\n%s\r\n", k, len(val), val))
		if err != nil {
			return err
		}
		if string(reply) != "STORED\r\n" {
			return fmt.Errorf("set %s: %q", k, reply)
		}
		fmt.Fprintf(out, "set %-18s → %s\n", k, client.Ring().LookupString(k).ID())
		get = append(get, ' ')
		get = append(get, k...)
	}
	reply, err := client.Do(ctx, append(get, '\r', '\n'))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "get (all keys, split and merged):\n%s", reply)
	return nil
}

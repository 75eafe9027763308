// Command gomemcache-client uses an ordinary gomemcache *memcache.Client
// whose connections walnut serves in-process
// (adapter/gomemcache.NewClientFromPool): every key lands on the memcached
// nutcracker would pick for the pool, and GetMulti spans servers. It sets
// each key, reads them all back with one GetMulti and prints where each key
// lives:
//
//	go run ./examples/gomemcache-client -c examples/demo/nutcracker.yml -pool memcache foo bar
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gomemcache-client:", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gomemcache-client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "examples/demo/nutcracker.yml", "nutcracker.yml")
	poolName := fs.String("pool", "memcache", "the pool to use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := fs.Args()
	if len(keys) == 0 {
		keys = []string{"foo", "bar", "session:42", "cart:7", "greeting"}
	}
	pool, err := config.LoadClientPool(*conf, *poolName)
	if err != nil {
		return err
	}
	mc, err := gomemcache.NewClientFromPool(pool)
	if err != nil {
		return err
	}
	defer mc.Close()
	ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte("value of " + k)}); err != nil {
			return err
		}
		s := ring.LookupString(k)
		fmt.Fprintf(out, "set %-12s → %s (%s)\n", k, s.ID(), s.Addr)
	}
	// One GetMulti over every server: walnut splits and merges it.
	items, err := mc.GetMulti(keys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if it, ok := items[k]; ok {
			fmt.Fprintf(out, "get %-12s = %s\n", k, it.Value)
		} else {
			fmt.Fprintf(out, "get %-12s : miss\n", k)
		}
	}
	return nil
}

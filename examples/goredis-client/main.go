// Command goredis-client uses an ordinary go-redis *redis.Client whose
// connections walnut serves in-process (adapter/goredis.NewClientFromPool):
// every key lands on the server nutcracker would pick for the pool, whatever
// its hash tag, and MGET and DEL span servers. It SETs each key, reads them
// all back with one MGET and prints where each key lives:
//
//	go run ./examples/goredis-client -c examples/demo/nutcracker.yml -pool redis foo bar baz
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "goredis-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("goredis-client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "examples/demo/nutcracker.yml", "nutcracker.yml")
	poolName := fs.String("pool", "redis", "the pool to use")
	del := fs.Bool("del", true, "delete the keys at the end, with one DEL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := fs.Args()
	if len(keys) == 0 {
		keys = []string{"foo", "bar", "user:{42}:name", "user:{42}:email", "cart:7"}
	}
	pool, err := config.LoadClientPool(*conf, *poolName)
	if err != nil {
		return err
	}
	rdb, err := goredis.NewClientFromPool(pool, goredis.ClientOptions{})
	if err != nil {
		return err
	}
	defer rdb.Close()
	ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, "value of "+k, 0).Err(); err != nil {
			return err
		}
		s := ring.LookupString(k)
		fmt.Fprintf(out, "SET %-16s → %s (%s)\n", k, s.ID(), s.Addr)
	}
	// One MGET over every server: walnut splits and merges it.
	vals, err := rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return err
	}
	for i, v := range vals {
		fmt.Fprintf(out, "MGET %-15s = %v\n", keys[i], v)
	}
	if !*del {
		return nil
	}
	n, err := rdb.Del(ctx, keys...).Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "DEL %d keys\n", n)
	return nil
}

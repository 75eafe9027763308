// Command goredis-ring talks to the redis servers of a nutcracker.yml pool
// directly, through a go-redis Ring built by walnut's adapter/goredis, which
// places every key on the server nutcracker would pick. For each key it
// SETs a value, GETs it back and prints the key, the server's name, its
// address and the value read:
//
//	go run ./examples/goredis-ring -c nutcracker.yml -pool cache foo user:{42}:name
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/config"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "goredis-ring:", err)
		os.Exit(1)
	}
}

// defaultKeys are used when no key is given.
var defaultKeys = []string{"foo", "bar", "user:{42}:name", "user:{42}:email"}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("goredis-ring", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("c", "nutcracker.yml", "the nutcracker configuration file")
	name := fs.String("pool", "", "the pool to use; may be omitted if the file has one pool")
	allow := fs.Bool("allow-brace-keys", false, `accept a pool whose hash_tag is not "{}", where keys containing {…} may be misplaced`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := fs.Args()
	if len(keys) == 0 {
		keys = defaultKeys
	}

	// Only the servers and placement settings are needed, so a file
	// written for this client alone may leave out listen, and a listen
	// host name is not resolved.
	f, err := config.ClientLoader().Load(*path)
	if err != nil {
		return err
	}
	pool, err := choose(f, *name)
	if err != nil {
		return err
	}
	ring, err := goredis.NewRingFromPool(pool, goredis.Options{AllowMisplacedBraceKeys: *allow})
	if err != nil {
		return err
	}
	defer ring.Close()

	server := map[string]string{} // address -> server name
	for id, addr := range ring.Options().Addrs {
		server[addr] = id
	}
	ctx := context.Background()
	for _, key := range keys {
		if err := ring.Set(ctx, key, "value of "+key, 0).Err(); err != nil {
			return fmt.Errorf("SET %q: %w", key, err)
		}
		v, err := ring.Get(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("GET %q: %w", key, err)
		}
		c, err := ring.GetShardClientForKey(key)
		if err != nil {
			return err
		}
		addr := c.Options().Addr
		fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", key, server[addr], addr, v)
	}
	return nil
}

// choose returns the pool called name, or the only pool if name is empty
// (with several, Pools[0] would be the first by name, not the file's first).
func choose(f *config.File, name string) (config.Pool, error) {
	if name == "" {
		if len(f.Pools) != 1 {
			return config.Pool{}, errors.New("the file has several pools: give -pool")
		}
		return f.Pools[0], nil
	}
	if p, ok := f.Pool(name); ok {
		return p, nil
	}
	return config.Pool{}, fmt.Errorf("no pool %q", name)
}

// Command gomemcache-selector talks to the memcacheds of a nutcracker.yml
// pool directly, with bradfitz/gomemcache, and puts every key on the server
// nutcracker (or walnut's proxy) would put it on.
//
//	go run ./examples/gomemcache-selector -c examples/demo/nutcracker.yml -pool memcache [key…]
//
// It stores each key with the client adapter/gomemcache builds from the pool,
// reads it back, then asks every server of the pool which one holds it, and
// prints the key, that server's name and its address.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gomemcache-selector:", err)
		os.Exit(1)
	}
}

// defaultKeys are stored when no key is given; the two user:{1000} keys share
// a hash tag in a pool with hash_tag "{}", so they land on one server.
var defaultKeys = []string{"user:{1000}:name", "user:{1000}:mail", "session:42", "cart:7", "greeting"}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gomemcache-selector", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "examples/demo/nutcracker.yml", "nutcracker.yml")
	poolName := fs.String("pool", "memcache", "memcached pool to use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := fs.Args()
	if len(keys) == 0 {
		keys = defaultKeys
	}
	// The pool, by name; listen is not needed (nor resolved) by a client.
	pool, err := config.LoadClientPool(*conf, *poolName)
	if err != nil {
		return err
	}

	// The client: gomemcache with a Selector that places keys as
	// nutcracker does for this pool, and the pool's timeout.
	mc, err := gomemcache.NewFromPool(pool)
	if err != nil {
		return err
	}
	defer mc.Close()

	// One single-server client per server, to see where each key went.
	direct := make([]*memcache.Client, len(pool.Servers))
	for i, s := range pool.Servers {
		_, addr := s.Network()
		direct[i] = memcache.New(addr)
		direct[i].Timeout = mc.Timeout
		defer direct[i].Close()
	}

	// A value unique to this run, so that a copy left on another server by
	// an earlier run with another configuration is not mistaken for it.
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, key := range keys {
		value := []byte(key + "@" + nonce)
		if err := mc.Set(&memcache.Item{Key: key, Value: value}); err != nil {
			return fmt.Errorf("set %q: %w", key, err)
		}
		it, err := mc.Get(key)
		if err != nil {
			return fmt.Errorf("get %q: %w", key, err)
		}
		if string(it.Value) != string(value) {
			return fmt.Errorf("get %q: got %q, want %q", key, it.Value, value)
		}
		holder := -1
		for i, d := range direct {
			it, err := d.Get(key)
			if errors.Is(err, memcache.ErrCacheMiss) {
				continue
			}
			if err != nil {
				return fmt.Errorf("get %q from %s: %w", key, pool.Servers[i].ID(), err)
			}
			if string(it.Value) == string(value) {
				holder = i
			}
		}
		if holder < 0 {
			return fmt.Errorf("key %q is on no server of pool %q", key, pool.Name)
		}
		s := pool.Servers[holder]
		fmt.Fprintf(out, "%s\t%s\t%s\n", key, s.ID(), s.Addr)
	}
	return nil
}

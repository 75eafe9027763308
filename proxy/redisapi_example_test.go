package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// The typed Redis API of a Client over two redis-servers. (Not run as a
// test: it needs the servers. TestRedisTyped* run the same calls against
// real ones.)
func ExampleClient_Redis() {
	client, err := proxy.NewClient(proxy.Config{
		Name:     "sessions",
		Protocol: protocol.Redis,
		Servers:  []shard.Server{{Addr: "127.0.0.1:6379", Weight: 1}, {Addr: "127.0.0.1:6380", Weight: 1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	rdb, err := client.Redis() // fails for a memcached pool
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	if err := rdb.Set(ctx, "user:1", "ada", time.Hour); err != nil {
		log.Fatal(err) // an error reply, or a server that cannot be reached
	}
	name, err := rdb.Get(ctx, "user:2")
	switch {
	case errors.Is(err, proxy.ErrNil):
		fmt.Println("no user:2")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(name)
	}

	// MGET over both servers, merged in key order; a missing key is ErrNil.
	vals, err := rdb.MGet(ctx, "user:1", "user:2")
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range vals {
		s, err := v.Text()
		fmt.Println(s, errors.Is(err, proxy.ErrNil))
	}

	// Any command, with typed accessors on its reply.
	reply, err := rdb.Do(ctx, "STRLEN", "user:1")
	if err != nil {
		log.Fatal(err)
	}
	n, _ := reply.Int()
	fmt.Println(n)

	// A pipeline: one batch, each command's reply read after Exec.
	p := rdb.Pipeline()
	visits := p.Incr("visits:1")
	p.Expire("visits:1", 24*time.Hour)
	if err := p.Exec(ctx); err != nil {
		log.Fatal(err)
	}
	count, _ := visits.Int()
	fmt.Println(count)
}

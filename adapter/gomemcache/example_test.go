package gomemcache_test

import (
	"errors"
	"fmt"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

// A Selector sends each key to the memcached nutcracker picks for it in the
// pool
//
//	cache:
//	  listen: 127.0.0.1:22121
//	  hash_tag: "{}"
//	  auto_eject_hosts: true
//	  servers:
//	   - 127.0.0.1:11213:1 mc-c
//	   - 127.0.0.1:11211:2 mc-a
//	   - 127.0.0.1:11212:1 mc-b
//
// (config.Load and NewSelectorFromPool build the same Selector from the
// file). When nutcracker ejects mc-a, SetLive does the same: only mc-a's keys
// move.
func ExampleSelector() {
	sel, err := gomemcache.NewSelector([]shard.Server{
		{Addr: "127.0.0.1:11213", Weight: 1, Name: "mc-c"},
		{Addr: "127.0.0.1:11211", Weight: 2, Name: "mc-a"},
		{Addr: "127.0.0.1:11212", Weight: 1, Name: "mc-b"},
	}, shard.RingOptions{HashTag: "{}"})
	if err != nil {
		panic(err)
	}
	// A service talks to the memcacheds through this client; each Get, Set…
	// goes to the server PickServer names.
	mc := memcache.NewFromSelector(sel)
	_ = mc

	keys := []string{"foo", "bar", "apple", "cherry", "user:{1000}:name", "user:{1000}:email"}
	before := map[string]string{}
	for _, key := range keys {
		addr, err := sel.PickServer(key)
		if err != nil {
			panic(err)
		}
		before[key] = addr.String()
	}
	// Servers are indexed in nutcracker's order: by name, shorter first.
	ring := sel.Ring()
	for i := range ring.Len() {
		fmt.Printf("server %d: %s (%s)\n", i, ring.ID(i), ring.Server(i).Addr)
	}
	if err := sel.SetLive([]bool{false, true, true}); err != nil { // eject mc-a
		panic(err)
	}
	for _, key := range keys {
		addr, _ := sel.PickServer(key)
		fmt.Printf("%-17s -> %s; mc-a ejected: %s\n", key, before[key], addr)
	}
	_, err = sel.PickServer("no spaces allowed")
	fmt.Println(errors.Is(err, memcache.ErrMalformedKey))
	// Output:
	// server 0: mc-a (127.0.0.1:11211)
	// server 1: mc-b (127.0.0.1:11212)
	// server 2: mc-c (127.0.0.1:11213)
	// foo               -> 127.0.0.1:11212; mc-a ejected: 127.0.0.1:11212
	// bar               -> 127.0.0.1:11213; mc-a ejected: 127.0.0.1:11213
	// apple             -> 127.0.0.1:11212; mc-a ejected: 127.0.0.1:11212
	// cherry            -> 127.0.0.1:11211; mc-a ejected: 127.0.0.1:11213
	// user:{1000}:name  -> 127.0.0.1:11211; mc-a ejected: 127.0.0.1:11212
	// user:{1000}:email -> 127.0.0.1:11211; mc-a ejected: 127.0.0.1:11212
	// true
}

// New builds a gomemcache Client from a server list and the ring options of
// the pool it mirrors; a Go service needs no nutcracker.yml. Building it
// connects to nothing.
func ExampleNew() {
	mc, err := gomemcache.New([]shard.Server{
		{Addr: "127.0.0.1:11212", Weight: 1, Name: "mc-2"},
		{Addr: "127.0.0.1:11211", Weight: 1, Name: "mc-1"},
	}, shard.RingOptions{HashTag: "{}"})
	if err != nil {
		panic(err)
	}
	// mc.Set(&memcache.Item{Key: "user:{42}:name", Value: []byte("ann")})
	// would store the item on the memcached nutcracker picks for "42".
	fmt.Println(mc.Timeout) // 0: gomemcache's default, memcache.DefaultTimeout
	// Output:
	// 0s
}

// NewFromPool builds a gomemcache Client for a pool of a nutcracker.yml,
// read with config.Load (here config.Parse); the pool's timeout becomes the
// Client's. Building it connects to nothing.
func ExampleNewFromPool() {
	f, err := config.Parse("nutcracker.yml", []byte(`
cache:
  listen: 127.0.0.1:22122
  hash: fnv1a_64
  distribution: ketama
  hash_tag: "{}"
  timeout: 400
  servers:
   - 127.0.0.1:11212:1 mc-2
   - 127.0.0.1:11211:1 mc-1
`))
	if err != nil {
		panic(err)
	}
	pool, ok := f.Pool("cache")
	if !ok {
		panic("no pool cache")
	}
	mc, err := gomemcache.NewFromPool(pool)
	if err != nil {
		panic(err)
	}
	// mc.Set(&memcache.Item{Key: "user:{42}:name", Value: []byte("ann")})
	// would store the item on the memcached nutcracker picks for "42".
	fmt.Println(mc.Timeout)
	// Output:
	// 400ms
}

package goredis_test

import (
	"fmt"
	"time"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/shard"
)

// A Placement shows where a go-redis Ring sends each key: go-redis calls
// NewConsistentHash with the names of its live shards and asks the result
// for each key's shard. The servers are those of a pool
//
//	beta:
//	  redis: true
//	  hash_tag: "{}"
//	  servers:
//	   - 127.0.0.1:6380:1 server2
//	   - 127.0.0.1:6379:1 server1
//	   - 127.0.0.1:6381:1 server3
func ExamplePlacement() {
	p, err := goredis.NewPlacement([]shard.Server{
		{Addr: "127.0.0.1:6380", Name: "server2"},
		{Addr: "127.0.0.1:6379", Name: "server1"},
		{Addr: "127.0.0.1:6381", Name: "server3"},
	}, shard.RingOptions{HashTag: "{}"})
	if err != nil {
		panic(err)
	}
	addrs := p.Addrs() // redis.RingOptions.Addrs

	keys := []string{"foo", "bar", "user:1", "session:a", "user:{1000}:name", "user:{1000}:email"}
	all := p.NewConsistentHash([]string{"server1", "server2", "server3"})
	// After three failed heartbeats go-redis drops server1 (for a pool with
	// auto_eject_hosts: true): only its keys move, as in nutcracker.
	ejected := p.NewConsistentHash([]string{"server2", "server3"})
	for _, key := range keys {
		id := all.Get(key)
		fmt.Printf("%-17s -> %s (%s); without server1: %s\n", key, id, addrs[id], ejected.Get(key))
	}
	// Output:
	// foo               -> server1 (127.0.0.1:6379); without server1: server2
	// bar               -> server2 (127.0.0.1:6380); without server1: server2
	// user:1            -> server3 (127.0.0.1:6381); without server1: server3
	// session:a         -> server1 (127.0.0.1:6379); without server1: server3
	// user:{1000}:name  -> server2 (127.0.0.1:6380); without server1: server2
	// user:{1000}:email -> server2 (127.0.0.1:6380); without server1: server2
}

// RingOptions assembles the options of a go-redis Ring from the servers and
// ring options of a pool; building them connects to nothing. The caller may
// adjust them before redis.NewRing(ro).
func ExampleRingOptions() {
	ro, err := goredis.RingOptions([]shard.Server{
		{Addr: "127.0.0.1:6380", Weight: 1, Name: "server2"},
		{Addr: "127.0.0.1:6379", Weight: 1, Name: "server1"},
	}, shard.RingOptions{HashTag: "{}"}, goredis.Options{Password: "s3cret", Timeout: 400 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	fmt.Println(ro.Addrs["server1"], ro.Addrs["server2"], ro.Password, ro.ReadTimeout)
	// Output:
	// 127.0.0.1:6379 127.0.0.1:6380 s3cret 400ms
}

package shard_test

import (
	"fmt"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// The servers: list and settings of a nutcracker.yml pool:
//
//	beta:
//	  hash: fnv1a_64
//	  hash_tag: "{}"
//	  distribution: ketama
//	  servers:
//	   - 127.0.0.1:6380:1 server2
//	   - 127.0.0.1:6379:1 server1
//	   - 127.0.0.1:6382:1 server4
//	   - 127.0.0.1:6381:1 server3
func ExampleNewRing() {
	servers, err := shard.ParseServers(
		"127.0.0.1:6380:1 server2",
		"127.0.0.1:6379:1 server1",
		"127.0.0.1:6382:1 server4",
		"127.0.0.1:6381:1 server3",
	)
	if err != nil {
		panic(err)
	}
	ring, err := shard.NewRing(servers, shard.RingOptions{
		Hash:         hashkit.FNV64a, // the default; nil means the same
		Distribution: shard.Ketama,   // the default
		HashTag:      "{}",
	})
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"foo", "bar", "user:{1000}:name", "user:{1000}:email"} {
		s := ring.LookupString(key)
		fmt.Printf("%-17s -> %s (%s)\n", key, s.ID(), s.Addr)
	}
	// Output:
	// foo               -> server1 (127.0.0.1:6379)
	// bar               -> server4 (127.0.0.1:6382)
	// user:{1000}:name  -> server2 (127.0.0.1:6380)
	// user:{1000}:email -> server2 (127.0.0.1:6380)
}

func ExampleServer_ID() {
	for _, entry := range []string{"10.0.0.1:6379:1", "10.0.0.1:11211:1", "/var/run/mc.sock:1", "10.0.0.1:6379:1 cache-a"} {
		s, _ := shard.ParseServer(entry)
		fmt.Printf("%-24s %s\n", entry, s.ID())
	}
	// Output:
	// 10.0.0.1:6379:1          10.0.0.1:6379
	// 10.0.0.1:11211:1         10.0.0.1
	// /var/run/mc.sock:1       /var/run/mc.sock:
	// 10.0.0.1:6379:1 cache-a  cache-a
}

// Ejecting a server: derive a ring over the live servers, as nutcracker
// rebuilds its continuum with auto_eject_hosts.
func ExampleRing_WithLive() {
	ring, _ := shard.NewRing([]shard.Server{
		{Addr: "127.0.0.1:6379"}, {Addr: "127.0.0.1:6380"}, {Addr: "127.0.0.1:6381"},
	}, shard.RingOptions{})
	fmt.Println(ring.ID(ring.PickString("hello")))
	ejected, err := ring.WithLive([]bool{false, true, true})
	if err != nil {
		panic(err)
	}
	fmt.Println(ejected.ID(ejected.PickString("hello")))
	// Output:
	// 127.0.0.1:6379
	// 127.0.0.1:6380
}

// Servers come back in ring order, sorted by name as twemproxy sorts them
// (shorter first), whatever order the entries are in.
func ExampleParseServers() {
	servers, err := shard.ParseServers("10.0.0.2:6379:2 cache-b", "10.0.0.1:6379:1 zz", "10.0.0.3:11211:1")
	if err != nil {
		panic(err)
	}
	for _, s := range servers {
		fmt.Println(s.ID(), s.Addr, s.Weight)
	}
	_, err = shard.ParseServers("10.0.0.1:6379:1", "10.0.0.1:6379:2")
	fmt.Println(err)
	// Output:
	// zz 10.0.0.1:6379 1
	// cache-b 10.0.0.2:6379 2
	// 10.0.0.3 10.0.0.3:11211 1
	// shard: servers with the same name "10.0.0.1:6379" (entries 0 and 1)
}

// Lookup returns the server itself. Pick returns an index in ring order,
// which is not the order the servers were given in: index ring.Servers()
// with it, never the caller's slice.
func ExampleRing_Lookup() {
	mine := []shard.Server{ // not in ring order
		{Addr: "127.0.0.1:6381"}, {Addr: "127.0.0.1:6379"}, {Addr: "127.0.0.1:6380"},
	}
	ring, err := shard.NewRing(mine, shard.RingOptions{})
	if err != nil {
		panic(err)
	}
	key := "foo"
	fmt.Println("Lookup:        ", ring.LookupString(key).Addr)
	fmt.Println("Servers()[i]:  ", ring.Servers()[ring.PickString(key)].Addr)
	fmt.Println("mine[i], wrong:", mine[ring.PickString(key)].Addr)
	// Output:
	// Lookup:         127.0.0.1:6381
	// Servers()[i]:   127.0.0.1:6381
	// mine[i], wrong: 127.0.0.1:6380
}

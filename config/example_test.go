package config_test

import (
	"fmt"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/shard"
)

func ExampleParse() {
	yml := `
sessions:
  listen: 127.0.0.1:22122
  redis: true
  hash_tag: "{}"
  servers:
    - 127.0.0.1:6380:1
    - 127.0.0.1:6379:1

cache:
  listen: /tmp/walnut-cache.sock 0660
  distribution: modula
  servers:
    - 127.0.0.1:11212:1 b
    - 127.0.0.1:11211:2
    - 127.0.0.1:11213:1 a
`
	f, err := config.Parse("nutcracker.yml", []byte(yml))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range f.Pools {
		fmt.Printf("%s on %s %s (%s, %s):", p.Name, p.ListenNetwork, p.ListenAddr, p.Hash, p.DistributionName)
		for _, s := range p.Servers {
			fmt.Printf(" %s", s.ID())
		}
		fmt.Println()
	}

	_, err = config.Parse("nutcracker.yml", []byte("alpha:\n  listen: 127.0.0.1:22121\n  hash: sha1\n"))
	fmt.Println(err)
	// Output:
	// cache on unix /tmp/walnut-cache.sock (fnv1a_64, modula): a b 127.0.0.1
	// sessions on tcp 127.0.0.1:22122 (fnv1a_64, ketama): 127.0.0.1:6379 127.0.0.1:6380
	// nutcracker.yml:3: pool "alpha": key "hash": "sha1" is not a valid hash; valid: one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins, farm
}

// A file that only tells Go clients where the keys are: the pool has no
// listen, or one whose host name only resolves where the proxy runs. A
// ClientLoader reads it (LoadClientPool does the same for one pool of a
// file on disk); the zero Loader, the proxy's, would reject both.
func ExampleClientLoader() {
	yml := `
sessions:
  redis: true
  hash_tag: "{}"
  servers:
    - 10.0.0.2:6379:1 cache-b
    - 10.0.0.1:6379:1 cache-a
cache:
  listen: proxy.internal.example:22122
  servers:
    - 10.0.0.1:11211:1
`
	f, err := config.ClientLoader().Parse("clients.yml", []byte(yml))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Names())
	pool, ok := f.Pool("sessions") // by name: Pools is sorted, not in the file's order
	if !ok {
		fmt.Println("no pool sessions")
		return
	}
	ring, err := shard.NewRing(pool.Servers, pool.RingOptions())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, key := range []string{"user:{42}:name", "foo"} {
		s := ring.LookupString(key)
		fmt.Println(key, "→", s.ID(), s.Addr)
	}
	// Output:
	// [cache sessions]
	// user:{42}:name → cache-b 10.0.0.2:6379
	// foo → cache-a 10.0.0.1:6379
}

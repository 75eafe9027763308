package proxy_test

import (
	"fmt"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/proxy"
)

// A pool of a nutcracker.yml becomes a proxy.Server. New connects to
// nothing (unless preconnect is set); Serve or ListenAndServe would start
// accepting clients on 127.0.0.1:22121.
func ExampleFromPool() {
	f, err := config.Parse("nutcracker.yml", []byte(`
alpha:
  listen: 127.0.0.1:22121
  redis: true
  hash_tag: "{}"
  servers:
   - 127.0.0.1:6379:1 cache-a
   - 127.0.0.1:6380:1 cache-b
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, ok := f.Pool("alpha") // by name: f.Pools is sorted by name, not in the file's order
	if !ok {
		fmt.Println("no pool alpha")
		return
	}
	s, err := proxy.New(proxy.FromPool(pool, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ring := s.Ring()
	fmt.Println(s.Name(), s.Protocol() == protocol.Redis)
	for _, key := range []string{"user:{42}:name", "user:{42}:mail", "foo"} {
		fmt.Println(key, "→", ring.LookupString(key).ID())
	}
	// Output:
	// alpha true
	// user:{42}:name → cache-b
	// user:{42}:mail → cache-b
	// foo → cache-a
}

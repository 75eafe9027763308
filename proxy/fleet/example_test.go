package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/proxy/fleet"
)

// Several pools of one nutcracker.yml served inside a program, with the
// admin endpoints on the program's own HTTP server, a whole-file reload and
// a graceful shutdown. The pools listen on unix sockets here; nothing
// connects to the servers until a client sends a request.
func Example() {
	dir, err := os.MkdirTemp("", "fleet")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	yml := func(pools ...string) string {
		all := map[string]string{
			"sessions": "sessions:\n  listen: " + filepath.Join(dir, "sessions.sock") + "\n  redis: true\n  hash_tag: \"{}\"\n" +
				"  servers:\n   - 127.0.0.1:6379:1 redis-a\n   - 127.0.0.1:6380:1 redis-b\n",
			"cache": "cache:\n  listen: " + filepath.Join(dir, "cache.sock") + "\n" +
				"  servers:\n   - 127.0.0.1:11211:1 mc-a\n   - 127.0.0.1:11212:1 mc-b\n",
			"counters": "counters:\n  listen: " + filepath.Join(dir, "counters.sock") + "\n  redis: true\n" +
				"  servers:\n   - 127.0.0.1:6381:1\n",
		}
		var s string
		for _, p := range pools {
			s += all[p]
		}
		return s
	}
	path := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(yml("sessions", "cache")), 0o644); err != nil {
		panic(err)
	}

	file, err := config.Load(path)
	if err != nil {
		panic(err)
	}
	f, err := fleet.New(file, fleet.Options{}) // no stats or admin server of its own
	if err != nil {
		panic(err)
	}
	if err := f.Listen(); err != nil { // every address bound, or none
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.Serve() }()
	for _, name := range f.Names() {
		fmt.Println(name, "on", filepath.Base(f.Addr(name).String()))
	}

	// The admin endpoints, mounted on the program's own server.
	admin := httptest.NewServer(f.AdminHandler())
	defer admin.Close()
	resp, err := http.Get(admin.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("/readyz:", resp.Status)

	// A whole-file reload: one pool added, one removed, one kept.
	if err := os.WriteFile(path, []byte(yml("sessions", "counters")), 0o644); err != nil {
		panic(err)
	}
	if err := f.ReloadFile("example"); err != nil {
		panic(err)
	}
	fmt.Println("after the reload:", f.Names())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println(<-served)
	// Output:
	// cache on cache.sock
	// sessions on sessions.sock
	// /readyz: 200 OK
	// after the reload: [counters sessions]
	// proxy: server closed
}

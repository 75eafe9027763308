package shard_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/walnutproxy/walnut/shard"
)

// FuzzParseServer checks that ParseServer never panics, that every error
// wraps ErrInvalidServer, and that an accepted entry is consistent: a
// positive weight, a non-empty address, a name without spaces, and the same
// server when written back in twemproxy's format and parsed again.
func FuzzParseServer(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:6379:1", "127.0.0.1:6379:2 alpha", "/tmp/r.sock:1 s", "[::1]:6379:1",
		"::1:6379:1", "h:0:1", "h:1:0", "h:65536:1", "h:1:1 ", "h:1:99999999999",
		"127.0.0.1:6379:1:2", ":6379:1", "a b c:1:1 n", "\x00:1:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		s, err := shard.ParseServer(entry)
		if err != nil {
			if !errors.Is(err, shard.ErrInvalidServer) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidServer", entry, err)
			}
			return
		}
		if s.Weight < 1 || s.Addr == "" || strings.Contains(s.Name, " ") {
			t.Fatalf("%q: accepted as %+v", entry, s)
		}
		again := fmt.Sprintf("%s:%d", s.Addr, s.Weight)
		if s.Name != "" {
			again += " " + s.Name
		}
		s2, err := shard.ParseServer(again)
		if err != nil || s2 != s {
			t.Fatalf("%q → %+v → %q → %+v, %v", entry, s, again, s2, err)
		}
		network, addr := s.Network()
		if network == "" || addr == "" || s.ID() == "" {
			t.Fatalf("%q: Network %q %q, ID %q", entry, network, addr, s.ID())
		}
	})
}

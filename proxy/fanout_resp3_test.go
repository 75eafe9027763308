package proxy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/walnutproxy/walnut/protocol"
)

// TestFanoutRESP3: a RESP3 client gets the fanned-out commands' replies in
// RESP3's forms, as from one redis-server: the same replies where the
// forms agree, RANDOMKEY's null as _, INFO as a verbatim string.
func TestFanoutRESP3(t *testing.T) {
	direct := startBackends(t, protocol.Redis, 1)
	bs := startBackends(t, protocol.Redis, 3)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	dtFlushAll(t, protocol.Redis, append(bs, direct...))
	stream := [][]string{
		{"HELLO", "3"},
		{"RANDOMKEY"},
		{"DBSIZE"},
		{"SET", "a", "1"}, {"SET", "b", "2"}, {"SET", "c", "3"},
		{"DBSIZE"},
		{"KEYS", "nosuch*"},
		{"SCRIPT", "LOAD", "return 1"},
		{"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0000000000000000000000000000000000000000"},
		{"FLUSHALL"},
		{"RANDOMKEY"},
		{"DBSIZE"},
	}
	want := resp3Replies(t, direct[0].Addr, stream, true)
	got := resp3Replies(t, addr, stream, true)
	for i := 1; i < len(stream); i++ {
		assert.Equal(t, want[i], got[i], "%d: %q", i, stream[i])
	}
	// INFO's text differs (servers, walnut's section) but not its form.
	info := resp3Replies(t, addr, [][]string{{"HELLO", "3"}, {"INFO", "keyspace"}}, false)[1]
	wantInfo := resp3Replies(t, direct[0].Addr, [][]string{{"HELLO", "3"}, {"INFO", "keyspace"}}, false)[1]
	assert.True(t, strings.HasPrefix(wantInfo, "="), "redis-server answers INFO with a verbatim string in RESP3: %q", wantInfo)
	assert.True(t, strings.HasPrefix(info, "="), "INFO in RESP3: %q", info)
}

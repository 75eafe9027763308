package shard_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/shard"
)

func TestParseServers(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []shard.Server // in ring order
	}{
		{
			name:    "one",
			entries: []string{"127.0.0.1:6379:1"},
			want:    []shard.Server{{Addr: "127.0.0.1:6379", Weight: 1}},
		},
		{
			name:    "sorted by ID, not by entry",
			entries: []string{"127.0.0.1:6381:1", "127.0.0.1:6379:2", "127.0.0.1:6380:1"},
			want: []shard.Server{
				{Addr: "127.0.0.1:6379", Weight: 2},
				{Addr: "127.0.0.1:6380", Weight: 1},
				{Addr: "127.0.0.1:6381", Weight: 1},
			},
		},
		{
			name:    "names: shorter first, then bytewise",
			entries: []string{"10.0.0.1:6379:1 cache-b", "10.0.0.2:6379:1 zz", "10.0.0.3:6379:1 cache-a"},
			want: []shard.Server{
				{Addr: "10.0.0.2:6379", Weight: 1, Name: "zz"},
				{Addr: "10.0.0.3:6379", Weight: 1, Name: "cache-a"},
				{Addr: "10.0.0.1:6379", Weight: 1, Name: "cache-b"},
			},
		},
		{
			name:    "port 11211 and unix sockets",
			entries: []string{"/tmp/mc.sock:1", "10.0.0.1:11211:1", "10.0.0.1:11212:3"},
			want: []shard.Server{
				{Addr: "10.0.0.1:11211", Weight: 1}, // ID "10.0.0.1"
				{Addr: "/tmp/mc.sock", Weight: 1},   // ID "/tmp/mc.sock:"
				{Addr: "10.0.0.1:11212", Weight: 3}, // ID "10.0.0.1:11212"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shard.ParseServers(tt.entries...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			ring := mustRing(t, got, shard.RingOptions{})
			assert.Equal(t, ring.Servers(), got, "ParseServers returns the ring's order")
		})
	}
}

func TestParseServersErrors(t *testing.T) {
	tests := []struct {
		name          string
		entries       []string
		want          error
		first, second int // for a duplicate
	}{
		{name: "none", want: shard.ErrNoServers},
		{name: "bad entry", entries: []string{"127.0.0.1:6379:1", "127.0.0.1:6380"}, want: shard.ErrInvalidServer},
		{name: "zero weight", entries: []string{"127.0.0.1:6379:0"}, want: shard.ErrInvalidServer},
		{name: "same address", entries: []string{"127.0.0.1:6379:1", "127.0.0.1:6380:1", "127.0.0.1:6379:2"}, want: shard.ErrDuplicateName, first: 0, second: 2},
		{name: "same name", entries: []string{"a:1:1 x", "b:1:1 y", "c:1:1 x"}, want: shard.ErrDuplicateName, first: 0, second: 2},
		{name: "11211 rule", entries: []string{"h:2:1 h", "h:11211:1"}, want: shard.ErrDuplicateName, first: 0, second: 1},
		{name: "three alike", entries: []string{"z:1:1 n", "a:1:1 n", "b:1:1 n"}, want: shard.ErrDuplicateName, first: 0, second: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shard.ParseServers(tt.entries...)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, got)
			var dup *shard.DuplicateNameError
			if errors.As(err, &dup) {
				assert.Equal(t, [2]int{tt.first, tt.second}, [2]int{dup.First, dup.Second})
			} else {
				assert.NotEqual(t, shard.ErrDuplicateName, tt.want, "a duplicate is a *DuplicateNameError")
			}
		})
	}
}

func TestRingOrder(t *testing.T) {
	tests := []struct {
		name    string
		servers []shard.Server
		want    []int
	}{
		{name: "empty", servers: nil, want: []int{}},
		{name: "in order", servers: servers("a:1:1", "b:1:1"), want: []int{0, 1}},
		{name: "reversed", servers: servers("127.0.0.1:6381:1", "127.0.0.1:6380:1", "127.0.0.1:6379:1"), want: []int{2, 1, 0}},
		{name: "shorter first", servers: servers("10.0.0.1:6379:1 aaaa", "10.0.0.2:6379:1 b", "10.0.0.3:6379:1 cc"), want: []int{1, 2, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shard.RingOrder(tt.servers)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			if len(tt.servers) == 0 {
				return
			}
			ring := mustRing(t, tt.servers, shard.RingOptions{})
			for j, i := range got {
				assert.Equal(t, tt.servers[i], ring.Server(j), "ring index %d", j)
			}
		})
	}
	_, err := shard.RingOrder(servers("a:1:1", "a:1:2"))
	var dup *shard.DuplicateNameError
	require.ErrorAs(t, err, &dup)
	assert.Equal(t, shard.DuplicateNameError{ID: "a:1", First: 0, Second: 1}, *dup)
	assert.EqualError(t, err, `shard: servers with the same name "a:1" (entries 0 and 1)`)
}

// TestLookup checks Lookup against the placements of TestSpecMappings
// (confirmed against nutcracker), with the servers given out of ring order
// so that indexing the caller's slice with Pick would be wrong.
func TestLookup(t *testing.T) {
	given := servers("127.0.0.1:6381:1", "127.0.0.1:6379:1", "127.0.0.1:6380:1")
	tests := []struct {
		name string
		opts shard.RingOptions
		key  string
		want string // address
	}{
		{name: "ketama", opts: shard.RingOptions{HashTag: "{}"}, key: "foo", want: "127.0.0.1:6381"},
		{name: "ketama", opts: shard.RingOptions{HashTag: "{}"}, key: "bar", want: "127.0.0.1:6379"},
		{name: "ketama", opts: shard.RingOptions{HashTag: "{}"}, key: "key:1", want: "127.0.0.1:6380"},
		{name: "ketama tag", opts: shard.RingOptions{HashTag: "{}"}, key: "user:{1000}:name", want: "127.0.0.1:6380"},
		{name: "ketama empty key", opts: shard.RingOptions{HashTag: "{}"}, key: "", want: "127.0.0.1:6379"},
		{name: "modula", opts: shard.RingOptions{Distribution: shard.Modula}, key: "foo", want: "127.0.0.1:6381"},
		{name: "modula", opts: shard.RingOptions{Distribution: shard.Modula}, key: "bar", want: "127.0.0.1:6380"},
		{name: "modula", opts: shard.RingOptions{Distribution: shard.Modula}, key: "hello", want: "127.0.0.1:6379"},
	}
	trapped := 0
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.key, func(t *testing.T) {
			ring := mustRing(t, given, tt.opts)
			s := ring.LookupString(tt.key)
			assert.Equal(t, tt.want, s.Addr)
			assert.Equal(t, s, ring.Lookup([]byte(tt.key)))
			assert.Equal(t, ring.Server(ring.PickString(tt.key)), s)
			assert.Equal(t, ring.Get(tt.key), s.ID())
			if given[ring.PickString(tt.key)] != s {
				trapped++
			}
		})
	}
	assert.NotZero(t, trapped, "the caller's order differs from the ring's, so indexing it with Pick goes wrong for some keys")

	ring := mustRing(t, given, shard.RingOptions{HashTag: "{}"})
	key := []byte("user:{1000}:name")
	assert.Zero(t, testing.AllocsPerRun(200, func() { _ = ring.Lookup(key) }), "Lookup")
	assert.Zero(t, testing.AllocsPerRun(200, func() { _ = ring.LookupString("user:{1000}:name") }), "LookupString")
}

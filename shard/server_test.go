package shard_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/shard"
)

func TestParseServer(t *testing.T) {
	tests := []struct {
		give    string
		want    shard.Server
		wantID  string
		wantNet [2]string
		wantErr string
	}{
		{give: "127.0.0.1:6379:1", want: shard.Server{Addr: "127.0.0.1:6379", Weight: 1}, wantID: "127.0.0.1:6379", wantNet: [2]string{"tcp", "127.0.0.1:6379"}},
		{give: "127.0.0.1:6379:5 redis1", want: shard.Server{Addr: "127.0.0.1:6379", Weight: 5, Name: "redis1"}, wantID: "redis1", wantNet: [2]string{"tcp", "127.0.0.1:6379"}},
		{give: "127.0.0.1:11211:2", want: shard.Server{Addr: "127.0.0.1:11211", Weight: 2}, wantID: "127.0.0.1", wantNet: [2]string{"tcp", "127.0.0.1:11211"}},
		{give: "mc.local:011211:1", want: shard.Server{Addr: "mc.local:011211", Weight: 1}, wantID: "mc.local", wantNet: [2]string{"tcp", "mc.local:011211"}},
		{give: "/tmp/mc.sock:1", want: shard.Server{Addr: "/tmp/mc.sock", Weight: 1}, wantID: "/tmp/mc.sock:", wantNet: [2]string{"unix", "/tmp/mc.sock"}},
		{give: "/tmp/mc.sock:3 local", want: shard.Server{Addr: "/tmp/mc.sock", Weight: 3, Name: "local"}, wantID: "local", wantNet: [2]string{"unix", "/tmp/mc.sock"}},
		{give: "::1:6379:1", want: shard.Server{Addr: "::1:6379", Weight: 1}, wantID: "::1:6379", wantNet: [2]string{"tcp", "[::1]:6379"}},
		{give: "[::1]:6379:1", want: shard.Server{Addr: "[::1]:6379", Weight: 1}, wantID: "[::1]:6379", wantNet: [2]string{"tcp", "[::1]:6379"}},
		// Parsed from the right, as twemproxy does: host "127.0.0.1:6379", port 1.
		{give: "127.0.0.1:6379:1:2", want: shard.Server{Addr: "127.0.0.1:6379:1", Weight: 2}, wantID: "127.0.0.1:6379:1", wantNet: [2]string{"tcp", "[127.0.0.1:6379]:1"}},
		{give: "127.0.0.1:6379", wantErr: `format string`},
		{give: "", wantErr: `format string`},
		{give: "/tmp/a:b.sock:1", wantErr: `format string`},
		{give: "127.0.0.1:6379:0", wantErr: `has a zero weight`},
		{give: "127.0.0.1:6379:x", wantErr: `has an invalid weight`},
		{give: "127.0.0.1:6379:-1", wantErr: `has an invalid weight`},
		{give: "127.0.0.1:6379:1 two words", wantErr: `has an invalid weight`},
		{give: "127.0.0.1:6379:1 ", wantErr: `empty name`},
		{give: "127.0.0.1:0:1", wantErr: `has an invalid port`},
		{give: "127.0.0.1:65536:1", wantErr: `has an invalid port`},
		{give: "127.0.0.1:port:1", wantErr: `has an invalid port`},
		{give: "127.0.0.1:99999999999:0", wantErr: `has a zero weight`}, // weight is checked first
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := shard.ParseServer(tt.give)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, shard.ErrInvalidServer)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), tt.give)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantID, got.ID())
			network, addr := got.Network()
			assert.Equal(t, tt.wantNet, [2]string{network, addr})
		})
	}
}

func TestServerOrder(t *testing.T) {
	// twemproxy orders servers by name: shorter first, then bytewise. The
	// config order does not matter.
	servers := []shard.Server{
		{Addr: "127.0.0.1:6390"},
		{Addr: "10.0.0.1:11211"}, // ID "10.0.0.1"
		{Addr: "127.0.0.1:6380", Name: "zz"},
		{Addr: "127.0.0.1:6381", Name: "b"},
		{Addr: "/tmp/x.sock"}, // ID "/tmp/x.sock:"
		{Addr: "127.0.0.1:6389"},
	}
	ring, err := shard.NewRing(servers, shard.RingOptions{})
	require.NoError(t, err)
	var ids []string
	for i := range ring.Len() {
		ids = append(ids, ring.ID(i))
	}
	assert.Equal(t, []string{"b", "zz", "10.0.0.1", "/tmp/x.sock:", "127.0.0.1:6389", "127.0.0.1:6390"}, ids)
	assert.Equal(t, "127.0.0.1:6381", ring.Servers()[0].Addr)

	got := ring.Servers()
	got[0].Addr = "mutated"
	assert.Equal(t, "127.0.0.1:6381", ring.Server(0).Addr, "Servers returns a copy")
	servers[0].Addr = "mutated"
	assert.Equal(t, "127.0.0.1:6390", ring.Server(5).Addr, "NewRing copies its input")
}

func TestNewRingErrors(t *testing.T) {
	one := []shard.Server{{Addr: "127.0.0.1:6379"}}
	tests := []struct {
		name    string
		servers []shard.Server
		opts    shard.RingOptions
		want    error
	}{
		{name: "no servers", want: shard.ErrNoServers},
		{name: "duplicate by address", servers: []shard.Server{{Addr: "127.0.0.1:6379", Weight: 1}, {Addr: "127.0.0.1:6379", Weight: 2}}, want: shard.ErrDuplicateName},
		{name: "duplicate by name", servers: []shard.Server{{Addr: "a:1", Name: "x"}, {Addr: "b:1", Name: "x"}}, want: shard.ErrDuplicateName},
		{name: "duplicate by 11211 rule", servers: []shard.Server{{Addr: "h:11211"}, {Addr: "h:2", Name: "h"}}, want: shard.ErrDuplicateName},
		{name: "negative weight", servers: []shard.Server{{Addr: "a:1", Weight: -1}}, want: shard.ErrInvalidWeight},
		{name: "huge weight", servers: []shard.Server{{Addr: "a:1", Weight: 1 << 30}}, want: shard.ErrInvalidWeight},
		{name: "one-byte tag", servers: one, opts: shard.RingOptions{HashTag: "{"}, want: shard.ErrInvalidHashTag},
		{name: "three-byte tag", servers: one, opts: shard.RingOptions{HashTag: "{}}"}, want: shard.ErrInvalidHashTag},
		{name: "bad distribution", servers: one, opts: shard.RingOptions{Distribution: 9}, want: shard.ErrUnknownDistribution},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring, err := shard.NewRing(tt.servers, tt.opts)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, ring)
		})
	}
}

func TestParseDistribution(t *testing.T) {
	for _, d := range []shard.Distribution{shard.Ketama, shard.Modula, shard.Random} {
		got, err := shard.ParseDistribution(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, got)
	}
	_, err := shard.ParseDistribution("Ketama")
	assert.ErrorIs(t, err, shard.ErrUnknownDistribution)
	assert.Equal(t, "Distribution(7)", shard.Distribution(7).String())
}

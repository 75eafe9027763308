package gomemcache_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/shard"
)

// mixed is a pool of every kind of server address: named and unnamed, IPv4,
// IPv6, port 11211 (whose ID drops the port) and a unix socket (whose ID
// gets a trailing ':'), listed out of nutcracker's order.
var mixed = []shard.Server{
	{Addr: "127.0.0.1:11212", Weight: 3},
	{Addr: "/tmp/walnut-gm.sock", Weight: 2},
	{Addr: "127.0.0.2:11211", Weight: 1},
	{Addr: "::1:11213", Weight: 4, Name: "v6"},
	{Addr: "127.0.0.1:11214", Weight: 1, Name: "zz"},
}

// randomKeys returns n distinct keys gomemcache accepts (1 to 40 bytes from
// 0x21..0xFF without DEL), a hash tag "{N}" inside half of them.
func randomKeys(rng *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var keys []string
	for len(keys) < n {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = byte(0x21 + rng.IntN(0x100-0x21))
			if b[i] == 0x7f {
				b[i] = 'x'
			}
		}
		k := string(b)
		if rng.IntN(2) == 0 {
			k = fmt.Sprintf("%s{%d}%s", k[:len(k)/2], rng.IntN(50), k[len(k)/2:])
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func TestNewSelectorErrors(t *testing.T) {
	ok := []shard.Server{{Addr: "127.0.0.1:11211"}, {Addr: "127.0.0.1:11212"}}
	tests := []struct {
		name    string
		servers []shard.Server
		opts    shard.RingOptions
		want    error
		msg     string
	}{
		{name: "no servers", want: shard.ErrNoServers},
		{name: "duplicate name", servers: []shard.Server{{Addr: "127.0.0.1:1", Name: "a"}, {Addr: "127.0.0.1:2", Name: "a"}}, want: shard.ErrDuplicateName},
		{name: "negative weight", servers: []shard.Server{{Addr: "127.0.0.1:1", Weight: -1}}, want: shard.ErrInvalidWeight},
		{name: "bad hash tag", servers: ok, opts: shard.RingOptions{HashTag: "{"}, want: shard.ErrInvalidHashTag},
		{name: "bad distribution", servers: ok, opts: shard.RingOptions{Distribution: 9}, want: shard.ErrUnknownDistribution},
		// An empty label is no DNS name: Go's resolver refuses it without
		// asking a name server.
		{name: "unresolvable host", servers: []shard.Server{{Addr: "127.0.0.1:11212"}, {Addr: "no..such.host:11211", Name: "mc9"}}, msg: `gomemcache: server "mc9": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := gomemcache.NewSelector(tt.servers, tt.opts)
			require.Error(t, err)
			assert.Nil(t, sel)
			assert.True(t, strings.HasPrefix(err.Error(), "gomemcache: "), "%v", err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			if tt.msg != "" {
				assert.Contains(t, err.Error(), tt.msg)
				var dns *net.DNSError
				assert.ErrorAs(t, err, &dns)
			}
		})
	}
}

// TestPickServer checks that PickServer returns, for every key, the address
// of the server the shard.Ring over the same servers picks, under each
// distribution and hash, with one net.Addr value per server.
func TestPickServer(t *testing.T) {
	keys := randomKeys(rand.New(rand.NewPCG(1, 2)), 3000)
	tests := []struct {
		name string
		opts shard.RingOptions
	}{
		{"ketama", shard.RingOptions{}},
		{"ketama/tag", shard.RingOptions{HashTag: "{}"}},
		{"ketama/md5/tag", shard.RingOptions{Hash: hashkit.MD5, HashTag: "{}"}},
		{"modula", shard.RingOptions{Distribution: shard.Modula}},
		{"modula/murmur/tag", shard.RingOptions{Distribution: shard.Modula, Hash: hashkit.Murmur, HashTag: "{}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := gomemcache.NewSelector(mixed, tt.opts)
			require.NoError(t, err)
			ring, err := shard.NewRing(mixed, tt.opts)
			require.NoError(t, err)
			byServer := map[int]net.Addr{}
			for _, k := range keys {
				addr, err := sel.PickServer(k)
				require.NoError(t, err, "%q", k)
				i := ring.PickString(k)
				network, address := ring.Server(i).Network()
				require.Equal(t, network, addr.Network(), "%q", k)
				require.Equal(t, address, addr.String(), "%q", k)
				if prev, ok := byServer[i]; ok {
					require.Same(t, prev, addr, "one net.Addr per server, for GetMulti's grouping")
				}
				byServer[i] = addr
			}
			assert.Len(t, byServer, len(mixed), "every server gets keys")
		})
	}
}

func TestAddresses(t *testing.T) {
	sel, err := gomemcache.NewSelector(mixed, shard.RingOptions{})
	require.NoError(t, err)
	var got []string
	require.NoError(t, sel.Each(func(a net.Addr) error {
		got = append(got, a.Network()+" "+a.String())
		return nil
	}))
	// nutcracker's order: by ID, shorter first, then bytewise.
	assert.Equal(t, []string{
		"tcp [::1]:11213",          // v6
		"tcp 127.0.0.1:11214",      // zz
		"tcp 127.0.0.2:11211",      // 127.0.0.2
		"tcp 127.0.0.1:11212",      // 127.0.0.1:11212
		"unix /tmp/walnut-gm.sock", // /tmp/walnut-gm.sock:
	}, got)
	ring := sel.Ring()
	var ids []string
	for i := range ring.Len() {
		ids = append(ids, ring.ID(i))
	}
	assert.Equal(t, []string{"v6", "zz", "127.0.0.2", "127.0.0.1:11212", "/tmp/walnut-gm.sock:"}, ids)
}

func TestPickServerKeys(t *testing.T) {
	sel, err := gomemcache.NewSelector(mixed, shard.RingOptions{HashTag: "{}"})
	require.NoError(t, err)
	tests := []struct {
		name string
		give string
		want error
	}{
		{"one byte", "a", nil},
		{"250 bytes", strings.Repeat("k", 250), nil},
		{"high bytes", "ключ\xff\x80", nil},
		{"brackets only", "{}", nil},
		{"punctuation", "!~{x}\"#", nil},
		{"empty", "", memcache.ErrMalformedKey},
		{"251 bytes", strings.Repeat("k", 251), memcache.ErrMalformedKey},
		{"space", "a b", memcache.ErrMalformedKey},
		{"tab", "a\tb", memcache.ErrMalformedKey},
		{"newline", "a\r\nget b", memcache.ErrMalformedKey},
		{"NUL", "a\x00", memcache.ErrMalformedKey},
		{"DEL", "a\x7f", memcache.ErrMalformedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, err := sel.PickServer(tt.give)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
				assert.Nil(t, addr)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, addr)
		})
	}
}

func TestZeroSelector(t *testing.T) {
	var sel gomemcache.Selector
	addr, err := sel.PickServer("foo")
	assert.ErrorIs(t, err, memcache.ErrNoServers)
	assert.Nil(t, addr)
	assert.NoError(t, sel.Each(func(net.Addr) error { t.Fatal("Each called f"); return nil }))
	assert.ErrorIs(t, sel.SetLive([]bool{true}), shard.ErrNoServers)
	assert.Nil(t, sel.Ring())
	// A Client over it fails cleanly.
	_, err = memcache.NewFromSelector(&sel).Get("foo")
	assert.ErrorIs(t, err, memcache.ErrNoServers)
}

func TestEach(t *testing.T) {
	sel, err := gomemcache.NewSelector(mixed, shard.RingOptions{})
	require.NoError(t, err)
	var all []net.Addr
	require.NoError(t, sel.Each(func(a net.Addr) error { all = append(all, a); return nil }))
	require.Len(t, all, len(mixed))

	// Ejected servers are still visited, in the same order.
	require.NoError(t, sel.SetLive([]bool{false, true, false, true, true}))
	var again []net.Addr
	require.NoError(t, sel.Each(func(a net.Addr) error { again = append(again, a); return nil }))
	assert.Equal(t, all, again)

	// The first error stops the walk and is returned as is.
	stop := errors.New("stop")
	n := 0
	err = sel.Each(func(net.Addr) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	assert.Same(t, stop, err)
	assert.Equal(t, 2, n)
}

// TestSetLive checks that after SetLive keys go where shard.Ring.WithLive
// sends them, which TestEjectionNutcracker checks against nutcracker.
func TestSetLive(t *testing.T) {
	keys := randomKeys(rand.New(rand.NewPCG(3, 4)), 3000)
	for _, dist := range []shard.Distribution{shard.Ketama, shard.Modula} {
		opts := shard.RingOptions{Distribution: dist, HashTag: "{}"}
		for _, live := range [][]bool{
			{true, false, true, true, true},
			{false, true, true, false, true},
			{false, false, false, false, true},
			{true, true, true, true, true},
		} {
			t.Run(fmt.Sprintf("%v/%v", dist, live), func(t *testing.T) {
				sel, err := gomemcache.NewSelector(mixed, opts)
				require.NoError(t, err)
				base := sel.Ring()
				want, err := base.WithLive(live)
				require.NoError(t, err)
				require.NoError(t, sel.SetLive(live))
				for i := range live {
					assert.Equal(t, live[i], sel.Ring().Live(i))
				}
				moved := 0
				for _, k := range keys {
					addr, err := sel.PickServer(k)
					require.NoError(t, err)
					i := want.PickString(k)
					require.True(t, live[i])
					_, address := want.Server(i).Network()
					require.Equal(t, address, addr.String(), "%q", k)
					if i != base.PickString(k) {
						moved++
					}
				}
				t.Logf("%d of %d keys moved", moved, len(keys))
				// Restoring every server restores the original placement.
				require.NoError(t, sel.SetLive([]bool{true, true, true, true, true}))
				for _, k := range keys[:500] {
					addr, err := sel.PickServer(k)
					require.NoError(t, err)
					_, address := base.Server(base.PickString(k)).Network()
					require.Equal(t, address, addr.String())
				}
			})
		}
	}
}

func TestSetLiveErrors(t *testing.T) {
	sel, err := gomemcache.NewSelector(mixed, shard.RingOptions{})
	require.NoError(t, err)
	require.NoError(t, sel.SetLive([]bool{true, false, true, true, true}))
	before := sel.Ring()
	tests := []struct {
		name string
		live []bool
		want error
	}{
		{"none live", []bool{false, false, false, false, false}, shard.ErrNoLiveServers},
		{"too few", []bool{true, true}, nil},
		{"too many", []bool{true, true, true, true, true, true}, nil},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sel.SetLive(tt.live)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.Same(t, before, sel.Ring(), "placement unchanged")
		})
	}
}

// TestConcurrent runs PickServer and Each while SetLive swaps placements;
// run it with -race.
func TestConcurrent(t *testing.T) {
	sel, err := gomemcache.NewSelector(mixed, shard.RingOptions{HashTag: "{}"})
	require.NoError(t, err)
	keys := randomKeys(rand.New(rand.NewPCG(5, 6)), 200)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if _, err := sel.PickServer(keys[i%len(keys)]); err != nil {
					t.Error(err)
					return
				}
				_ = sel.Each(func(net.Addr) error { return nil })
			}
		}()
	}
	sets := [][]bool{{true, false, true, true, true}, {true, true, true, true, true}, {false, true, true, true, false}}
	for i := range 300 {
		require.NoError(t, sel.SetLive(sets[i%len(sets)]))
	}
	close(done)
	wg.Wait()
}

func TestAllocs(t *testing.T) {
	tests := []struct {
		name    string
		servers []shard.Server
		opts    shard.RingOptions
		live    []bool
	}{
		{"ketama/tag", mixed, shard.RingOptions{HashTag: "{}"}, nil},
		{"ketama/ejected", mixed, shard.RingOptions{}, []bool{true, false, true, true, true}},
		{"modula/crc32a", mixed, shard.RingOptions{Distribution: shard.Modula, Hash: hashkit.CRC32a}, nil},
		{"random", mixed, shard.RingOptions{Distribution: shard.Random}, nil},
		{"one server", mixed[:1], shard.RingOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := gomemcache.NewSelector(tt.servers, tt.opts)
			require.NoError(t, err)
			if tt.live != nil {
				require.NoError(t, sel.SetLive(tt.live))
			}
			key := "user:{1000}:profile"
			assert.Zero(t, testing.AllocsPerRun(1000, func() {
				a, err := sel.PickServer(key)
				if err != nil || a.String() == "" || a.Network() == "" {
					t.Fatal(a, err)
				}
			}))
		})
	}
}

func TestNewSelectorFromPool(t *testing.T) {
	const yml = `mc:
  listen: 127.0.0.1:22121
  hash: murmur
  distribution: modula
  hash_tag: "{}"
  timeout: 400
  servers:
   - 127.0.0.1:11213:1 c
   - 127.0.0.1:11211:2 a
   - /tmp/walnut-gm.sock:1 b
notimeout:
  listen: 127.0.0.1:22122
  servers:
   - 127.0.0.1:11213:1
rd:
  listen: 127.0.0.1:22123
  redis: true
  servers:
   - 127.0.0.1:6379:1
unresolvable:
  listen: 127.0.0.1:22124
  servers:
   - 127.0.0.1:11213:1 ok
   - no..such.host:11211:1 bad
`
	f, err := config.Parse("nutcracker.yml", []byte(yml))
	require.NoError(t, err)
	byName := map[string]config.Pool{}
	for _, p := range f.Pools {
		byName[p.Name] = p
	}

	t.Run("memcached pool", func(t *testing.T) {
		p := byName["mc"]
		sel, err := gomemcache.NewSelectorFromPool(p)
		require.NoError(t, err)
		ring := sel.Ring()
		require.Equal(t, len(p.Servers), ring.Len())
		for i, s := range p.Servers {
			assert.Equal(t, s.ID(), ring.ID(i), "same index as the pool, so as nutcracker")
		}
		assert.Equal(t, shard.Modula, ring.Distribution())
		want, err := shard.NewRing(p.Servers, shard.RingOptions{Hash: hashkit.Murmur, Distribution: shard.Modula, HashTag: "{}"})
		require.NoError(t, err)
		for _, k := range randomKeys(rand.New(rand.NewPCG(7, 8)), 1000) {
			addr, err := sel.PickServer(k)
			require.NoError(t, err)
			_, address := want.Server(want.PickString(k)).Network()
			require.Equal(t, address, addr.String(), "%q", k)
		}

		mc, err := gomemcache.NewFromPool(p)
		require.NoError(t, err)
		assert.Equal(t, 400*time.Millisecond, mc.Timeout)
		assert.Zero(t, mc.MaxIdleConns, "gomemcache's default")
	})
	t.Run("no timeout", func(t *testing.T) {
		mc, err := gomemcache.NewFromPool(byName["notimeout"])
		require.NoError(t, err)
		assert.Zero(t, mc.Timeout, "gomemcache's default, not forever")
	})
	t.Run("redis pool", func(t *testing.T) {
		_, err := gomemcache.NewSelectorFromPool(byName["rd"])
		assert.ErrorIs(t, err, gomemcache.ErrNotMemcache)
		assert.Contains(t, err.Error(), `pool "rd"`)
		_, err = gomemcache.NewFromPool(byName["rd"])
		assert.ErrorIs(t, err, gomemcache.ErrNotMemcache)
	})
	t.Run("unresolvable server", func(t *testing.T) {
		_, err := gomemcache.NewFromPool(byName["unresolvable"])
		require.Error(t, err)
		assert.Contains(t, err.Error(), `gomemcache: pool "unresolvable": server "bad": `)
	})
}

func BenchmarkPickServer(b *testing.B) {
	for _, tt := range []struct {
		name string
		opts shard.RingOptions
	}{
		{"ketama", shard.RingOptions{HashTag: "{}"}},
		{"modula", shard.RingOptions{Distribution: shard.Modula, HashTag: "{}"}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			sel, err := gomemcache.NewSelector(mixed, tt.opts)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sel.PickServer("user:{1000}:profile"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

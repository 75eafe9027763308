package bench_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/goredis"
	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// BenchmarkInProcess compares walnut's in-process client (proxy.Client)
// with other Go Redis clients, side by side against the same four real
// redis-servers. Each sub-benchmark reports ops/s and allocations; compare
// the figures of one run. Sub-benchmarks are named OP/gN/IMPL:
//
// OP is the request:
//
//   - GET, SET: one key of 1024 (a 5-byte value for SET).
//   - MGET10: 10 keys that share a hash tag, so one server, because
//     go-redis's Ring sends an MGET to its first key's server and would miss
//     keys elsewhere.
//   - MGET10-spread: 10 keys spread over the four servers, which walnut
//     splits and merges (walnut and goredis-inmem only; no other client
//     here can do this).
//
// gN is how many goroutines issue requests: g1 is one goroutine in a plain
// b.N loop, each request waiting for its reply before the next is sent
// (the latency of a call); g64 is 64 goroutines (b.RunParallel, so
// 64/GOMAXPROCS per P, rounded down) sharing the clients.
//
// IMPL is the client:
//
//   - walnut: proxy.Client.Command with the arguments as strings, the
//     reply parsed into a resp.Value.
//   - walnut-typed: the typed API of proxy.Client (Client.Redis): Get
//     returning the value as a string, Set returning an error, MGet
//     returning one proxy.Reply per key (GET, SET and MGET10 only).
//   - walnut-do: proxy.Client.Do with the request bytes built beforehand,
//     the reply returned raw.
//   - goredis: one go-redis *redis.Client (its defaults) to one server,
//     every key on that server: the client walnut would replace when a
//     single server no longer suffices.
//   - goredis-ring: go-redis's Ring (its defaults) over the four servers.
//   - goredis-inmem: one go-redis *redis.Client (its defaults) whose
//     connections are served by walnut's router in-process through an
//     in-memory connection (adapter/goredis.NewClient): go-redis's API
//     with walnut's placement, split and merge.
//   - rueidis: one rueidis client per server (client-side cache off, its
//     other defaults), the server of each request picked by a shard.Ring
//     with walnut's placement: rueidis sharded by hand, as walnut shards.
//
// The names of earlier versions map as follows: OP/walnut is now
// OP/g64/walnut, OP/goredis-ring is OP/g64/goredis-ring, and MGET10-raw/walnut
// is MGET10/g64/walnut-do.
func BenchmarkInProcess(b *testing.B) {
	const shards = 4
	var servers []shard.Server
	addrs := map[string]string{}
	for i := range shards {
		s := testserver.StartRedis(b, testserver.RedisOptions{})
		servers = append(servers, shard.Server{Addr: s.Addr, Weight: 1})
		addrs[fmt.Sprintf("shard%d", i)] = s.Addr
	}
	ctx := context.Background()

	// walnut, with the hash tag go-redis's Ring applies, so that a tagged
	// MGET goes to one server in both.
	cfg := proxy.Config{Name: "bench", Protocol: protocol.Redis, Servers: servers,
		Ring: shard.RingOptions{HashTag: "{}"}}
	wc, err := proxy.NewClient(cfg)
	require.NoError(b, err)
	b.Cleanup(func() { wc.Close() })
	typed, err := wc.Redis()
	require.NoError(b, err)

	ring := redis.NewRing(&redis.RingOptions{Addrs: addrs})
	b.Cleanup(func() { ring.Close() })

	single := redis.NewClient(&redis.Options{Addr: servers[0].Addr})
	b.Cleanup(func() { single.Close() })

	inmem, err := goredis.NewClient(servers, cfg.Ring, goredis.ClientOptions{})
	require.NoError(b, err)
	b.Cleanup(func() { inmem.Close() })

	// rueidis, one client per server, placed by a ring built as walnut's.
	sring, err := shard.NewRing(servers, cfg.Ring)
	require.NoError(b, err)
	rcs := make([]rueidis.Client, sring.Len())
	for i, s := range sring.Servers() {
		rc, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:       []string{s.Addr},
			DisableCache:      true,
			ForceSingleClient: true,
		})
		require.NoError(b, err)
		b.Cleanup(rc.Close)
		rcs[i] = rc
	}
	rpick := func(key string) rueidis.Client { return rcs[sring.PickString(key)] }

	keys := make([]string, 1024)
	tagged := make([]string, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		tagged[i] = fmt.Sprintf("{t%d}:%d", i%64, i)
		for _, k := range []string{keys[i], tagged[i]} {
			// walnut's writes serve rueidis too: they place keys alike.
			require.NoError(b, checkValue(wc.Command(ctx, "SET", k, "value")))
			require.NoError(b, ring.Set(ctx, k, "value", 0).Err())
			require.NoError(b, single.Set(ctx, k, "value", 0).Err())
		}
	}
	spreadArgs := func(i int) []string {
		args := []string{"MGET"}
		for j := range 10 {
			args = append(args, keys[(i+j*64)%len(keys)])
		}
		return args
	}

	// Request bytes for walnut-do, built beforehand.
	getRaw := make([][]byte, len(keys))
	setRaw := make([][]byte, len(keys))
	mgetRaw := make([][]byte, len(keys))
	spreadRaw := make([][]byte, len(keys))
	for i := range keys {
		getRaw[i] = resp.AppendCommandString(nil, "GET", keys[i])
		setRaw[i] = resp.AppendCommandString(nil, "SET", keys[i], "value")
		mgetRaw[i] = resp.AppendCommandString(nil, append([]string{"MGET"}, taggedKeys(tagged, i)...)...)
		spreadRaw[i] = resp.AppendCommandString(nil, spreadArgs(i)...)
	}
	key := func(i int) string { return keys[i%len(keys)] }

	type impl struct {
		name string
		f    func(i int) error
	}
	ops := []struct {
		name  string
		impls []impl
	}{
		{"GET", []impl{
			{"walnut", func(i int) error { return checkValue(wc.Command(ctx, "GET", key(i))) }},
			{"walnut-do", func(i int) error { return checkRaw(wc.Do(ctx, getRaw[i%len(getRaw)])) }},
			{"walnut-typed", func(i int) error { _, err := typed.Get(ctx, key(i)); return err }},
			{"goredis", func(i int) error { return single.Get(ctx, key(i)).Err() }},
			{"goredis-ring", func(i int) error { return ring.Get(ctx, key(i)).Err() }},
			{"goredis-inmem", func(i int) error { return inmem.Get(ctx, key(i)).Err() }},
			{"rueidis", func(i int) error {
				c := rpick(key(i))
				return c.Do(ctx, c.B().Get().Key(key(i)).Build()).Error()
			}},
		}},
		{"SET", []impl{
			{"walnut", func(i int) error { return checkValue(wc.Command(ctx, "SET", key(i), "value")) }},
			{"walnut-do", func(i int) error { return checkRaw(wc.Do(ctx, setRaw[i%len(setRaw)])) }},
			{"walnut-typed", func(i int) error { return typed.Set(ctx, key(i), "value", 0) }},
			{"goredis", func(i int) error { return single.Set(ctx, key(i), "value", 0).Err() }},
			{"goredis-ring", func(i int) error { return ring.Set(ctx, key(i), "value", 0).Err() }},
			{"goredis-inmem", func(i int) error { return inmem.Set(ctx, key(i), "value", 0).Err() }},
			{"rueidis", func(i int) error {
				c := rpick(key(i))
				return c.Do(ctx, c.B().Set().Key(key(i)).Value("value").Build()).Error()
			}},
		}},
		{"MGET10", []impl{
			{"walnut", func(i int) error {
				return checkMGet(wc.Command(ctx, append([]string{"MGET"}, taggedKeys(tagged, i)...)...))
			}},
			{"walnut-do", func(i int) error { return checkRaw(wc.Do(ctx, mgetRaw[i%len(mgetRaw)])) }},
			{"walnut-typed", func(i int) error {
				vs, err := typed.MGet(ctx, taggedKeys(tagged, i)...)
				if err == nil && len(vs) != 10 {
					err = fmt.Errorf("MGET gave %d elements", len(vs))
				}
				return err
			}},
			{"goredis", func(i int) error { return single.MGet(ctx, taggedKeys(tagged, i)...).Err() }},
			{"goredis-ring", func(i int) error { return ring.MGet(ctx, taggedKeys(tagged, i)...).Err() }},
			{"goredis-inmem", func(i int) error { return checkMGetAny(inmem.MGet(ctx, taggedKeys(tagged, i)...).Result()) }},
			{"rueidis", func(i int) error {
				ks := taggedKeys(tagged, i)
				c := rpick(ks[0])
				vs, err := c.Do(ctx, c.B().Mget().Key(ks...).Build()).ToArray()
				if err == nil && len(vs) != 10 {
					err = fmt.Errorf("MGET gave %d elements", len(vs))
				}
				return err
			}},
		}},
		{"MGET10-spread", []impl{
			{"walnut", func(i int) error { return checkMGet(wc.Command(ctx, spreadArgs(i)...)) }},
			{"walnut-do", func(i int) error { return checkRaw(wc.Do(ctx, spreadRaw[i%len(spreadRaw)])) }},
			{"goredis-inmem", func(i int) error { return checkMGetAny(inmem.MGet(ctx, spreadArgs(i)[1:]...).Result()) }},
		}},
	}
	for _, o := range ops {
		for _, g := range []int{1, 64} {
			for _, im := range o.impls {
				b.Run(fmt.Sprintf("%s/g%d/%s", o.name, g, im.name), func(b *testing.B) {
					b.ReportAllocs()
					if g == 1 {
						for i := range b.N {
							if err := im.f(i); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						var n atomic.Int64
						b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								if err := im.f(int(n.Add(1))); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		}
	}
}

// taggedKeys returns 10 keys that share one hash tag (so one server).
func taggedKeys(tagged []string, i int) []string {
	ks := make([]string, 10)
	for j := range ks {
		ks[j] = tagged[i%64+64*((i/64+j)%16)]
	}
	return ks
}

// checkValue turns an error reply into an error, as the other clients do.
func checkValue(v resp.Value, err error) error {
	if err == nil && v.Type == '-' {
		err = fmt.Errorf("error reply: %s", v.Str)
	}
	return err
}

// checkRaw is checkValue for a raw reply.
func checkRaw(reply []byte, err error) error {
	if err == nil && (len(reply) == 0 || reply[0] == '-') {
		err = fmt.Errorf("error reply: %q", reply)
	}
	return err
}

func checkMGet(v resp.Value, err error) error {
	if err = checkValue(v, err); err == nil && len(v.Elems) != 10 {
		err = fmt.Errorf("MGET gave %d elements", len(v.Elems))
	}
	return err
}

// checkMGetAny checks a go-redis MGET reply: 10 values, none missing.
func checkMGetAny(vs []any, err error) error {
	if err != nil {
		return err
	}
	if len(vs) != 10 {
		return fmt.Errorf("MGET gave %d elements", len(vs))
	}
	for i, v := range vs {
		if v == nil {
			return fmt.Errorf("MGET element %d is nil", i)
		}
	}
	return nil
}

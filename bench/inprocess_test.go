package bench_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// BenchmarkInProcess compares walnut's in-process client (proxy.Client)
// with go-redis's Ring (its defaults), side by side against the same four
// real redis-servers, with 64 goroutines issuing requests. Each sub-
// benchmark reports ops/s; compare walnut's and go-redis's figures of one
// run.
//
// MGET10 asks both for 10 keys that share a hash tag (one server), because
// go-redis's Ring sends an MGET to its first key's server and would miss
// keys elsewhere; MGET10-spread (walnut only) asks for 10 keys spread over
// the four servers, which walnut splits and merges.
func BenchmarkInProcess(b *testing.B) {
	const shards = 4
	var servers []shard.Server
	addrs := map[string]string{}
	for i := range shards {
		s := testserver.StartRedis(b, testserver.RedisOptions{})
		servers = append(servers, shard.Server{Addr: s.Addr, Weight: 1})
		addrs[fmt.Sprintf("shard%d", i)] = s.Addr
	}
	// The hash tag go-redis's Ring applies, so that MGET10's tagged keys
	// are on one server in both.
	cfg := proxy.Config{Name: "bench", Protocol: protocol.Redis, Servers: servers,
		Ring: shard.RingOptions{HashTag: "{}"}}
	wc, err := proxy.NewClient(cfg)
	require.NoError(b, err)
	b.Cleanup(func() { wc.Close() })
	ring := redis.NewRing(&redis.RingOptions{Addrs: addrs})
	b.Cleanup(func() { ring.Close() })
	ctx := context.Background()

	keys := make([]string, 1024)
	tagged := make([]string, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		tagged[i] = fmt.Sprintf("{t%d}:%d", i%64, i)
		_, err := wc.Command(ctx, "SET", keys[i], "value")
		require.NoError(b, err)
		require.NoError(b, ring.Set(ctx, keys[i], "value", 0).Err())
		require.NoError(b, ring.Set(ctx, tagged[i], "value", 0).Err())
	}
	mgetArgs := func(i int, ks []string) []string {
		args := []string{"MGET"}
		for j := range 10 {
			args = append(args, ks[(i+j*64)%len(ks)])
		}
		return args
	}

	mgetRaw := make([][]byte, 1024)
	for i := range mgetRaw {
		mgetRaw[i] = resp.AppendCommandString(nil, append([]string{"MGET"}, taggedKeys(tagged, i)...)...)
	}

	type op struct {
		name   string
		walnut func(i int) error
		goredi func(i int) error
	}
	ops := []op{
		{"GET",
			func(i int) error { _, err := wc.Command(ctx, "GET", keys[i%len(keys)]); return err },
			func(i int) error { return ring.Get(ctx, keys[i%len(keys)]).Err() }},
		{"SET",
			func(i int) error { _, err := wc.Command(ctx, "SET", keys[i%len(keys)], "value"); return err },
			func(i int) error { return ring.Set(ctx, keys[i%len(keys)], "value", 0).Err() }},
		{"MGET10",
			func(i int) error {
				return checkMGet(wc.Command(ctx, append([]string{"MGET"}, taggedKeys(tagged, i)...)...))
			},
			func(i int) error { return ring.MGet(ctx, taggedKeys(tagged, i)...).Err() }},
		{"MGET10-raw", // as MGET10, through Client.Do with the request bytes built beforehand
			func(i int) error { _, err := wc.Do(ctx, mgetRaw[i%len(mgetRaw)]); return err },
			nil},
		{"MGET10-spread", // keys on all four servers: go-redis's Ring cannot do this
			func(i int) error { return checkMGet(wc.Command(ctx, mgetArgs(i, keys)...)) },
			nil},
	}
	for _, o := range ops {
		for _, impl := range []struct {
			name string
			f    func(int) error
		}{{"walnut", o.walnut}, {"goredis-ring", o.goredi}} {
			if impl.f == nil {
				continue
			}
			b.Run(o.name+"/"+impl.name, func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(64 / max(1, runtimeProcs()))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(n.Add(1))
						if err := impl.f(i); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// taggedKeys returns 10 keys that share one hash tag (so one server).
func taggedKeys(tagged []string, i int) []string {
	ks := make([]string, 10)
	for j := range ks {
		ks[j] = tagged[i%64+64*((i/64+j)%16)]
	}
	return ks
}

func checkMGet(v resp.Value, err error) error {
	if err == nil && len(v.Elems) != 10 {
		err = fmt.Errorf("MGET gave %d elements", len(v.Elems))
	}
	return err
}

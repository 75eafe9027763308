package pool_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/pool"
)

const (
	benchKeys       = 1000
	benchGoroutines = 64
)

// BenchmarkRedisGetSet compares, against one redis-server in the same run,
// 64 goroutines each calling GET or SET (50/50, 1,000 keys, 16-byte
// values) in a loop through a Pool with one connection, and through
// go-redis's own *redis.Client with its defaults (a pool of 10 connections
// per CPU, one command per connection at a time). Compare the ops/s
// metrics:
//
//	go test ./pool -run '^$' -bench RedisGetSet -benchtime 3s -count 3
//
// The pool's requests are prebuilt RESP, as the proxy forwards the bytes it
// read; go-redis encodes its commands, which is part of what it costs.
func BenchmarkRedisGetSet(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	keys := make([]string, benchKeys)
	vals := make([]string, benchKeys)
	sets := make([][]byte, benchKeys)
	gets := make([][]byte, benchKeys)
	c := testserver.DialRedis(b, srv.Addr)
	for k := range keys {
		keys[k] = "key:" + strconv.Itoa(k)
		vals[k] = "value-" + strconv.Itoa(1000000000+k)
		sets[k] = cmd("SET", keys[k], vals[k])
		gets[k] = cmd("GET", keys[k])
		_, err := c.Do("SET", keys[k], vals[k])
		require.NoError(b, err)
	}
	parallelism := (benchGoroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	var seed atomic.Uint64

	b.Run("walnut", func(b *testing.B) {
		p, err := pool.New(one(srv.Addr), pool.Options{Framer: respFramer, Conns: 1})
		require.NoError(b, err)
		defer p.Close()
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			x := seed.Add(0x9e3779b97f4a7c15)
			for pb.Next() {
				x = xorshift(x)
				k := int(x % benchKeys)
				data := gets[k]
				if x&(1<<32) != 0 {
					data = sets[k]
				}
				reply, err := p.Call(ctx, data)
				if err != nil || len(reply) == 0 || (reply[0] != '$' && reply[0] != '+') {
					b.Errorf("reply %q, error %v", reply, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})

	b.Run("go-redis", func(b *testing.B) {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2})
		defer rdb.Close()
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			x := seed.Add(0x9e3779b97f4a7c15)
			for pb.Next() {
				x = xorshift(x)
				k := int(x % benchKeys)
				var err error
				if x&(1<<32) != 0 {
					err = rdb.Set(ctx, keys[k], vals[k], 0).Err()
				} else {
					err = rdb.Get(ctx, keys[k]).Err()
				}
				if err != nil {
					b.Errorf("go-redis: %v", err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}

func xorshift(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// benchProxy serves a Redis pool of one redis-server until b ends.
func benchProxy(b *testing.B) string {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	s, err := proxy.New(proxy.Config{Name: "bench", Protocol: protocol.Redis, Servers: []shard.Server{{Addr: srv.Addr}}})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	b.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			b.Error(err)
		}
	})
	return l.Addr().String()
}

// benchBursts measures round trips of k pipelined SETs (about 37 bytes
// each), each burst preceded by a PING round trip if ping is set.
func benchBursts(b *testing.B, ping bool) {
	addr := benchProxy(b)
	for _, k := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprint(k), func(b *testing.B) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			var burst []byte
			for i := range k {
				burst = resp.AppendCommandString(burst, "SET", fmt.Sprintf("key:%04d", i), "value-0123456789")
			}
			replies := make([]byte, len("+OK\r\n")*k)
			pong := make([]byte, len("+PONG\r\n"))
			roundTrip := func(req, reply []byte) {
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(nc, reply); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(burst)))
			for b.Loop() {
				if ping {
					roundTrip([]byte("PING\r\n"), pong)
				}
				roundTrip(burst, replies)
			}
		})
	}
}

// BenchmarkPipelinedBursts: a client that sends bursts of pipelined
// commands, one after the other, through the proxy.
func BenchmarkPipelinedBursts(b *testing.B) { benchBursts(b, false) }

// BenchmarkBurstsAfterPing: the same bursts, each after a lone request, so
// that each arrives at a connection that has just been idle: a burst larger
// than the idle read buffer (512 bytes, see resp.Reader) is read in two
// batches.
func BenchmarkBurstsAfterPing(b *testing.B) { benchBursts(b, true) }

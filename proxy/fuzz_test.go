package proxy_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
	"github.com/walnutproxy/walnut/shard"
)

// pipeDial returns a pool Dial function whose connections are in-memory
// pipes served by serve, so fuzzing needs no sockets.
func pipeDial(serve func(net.Conn)) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		a, b := net.Pipe()
		go serve(b)
		return a, nil
	}
}

// pipeRedis answers every command with a reply of the right shape for its
// routing: an array of nils for MGET, an integer for DEL/UNLINK/TOUCH/
// EXISTS and DBSIZE, a key or a list of keys for the fan-out reads, +OK
// otherwise.
func pipeRedis(nc net.Conn) {
	defer nc.Close()
	rd := resp.NewReader(nc, protocol.Limits{})
	var cmd resp.Command
	for {
		if err := rd.ReadCommand(&cmd); err != nil {
			return
		}
		var out []byte
		switch strings.ToLower(string(cmd.Args[0])) {
		case "mget":
			out = resp.AppendArrayHeader(nil, len(cmd.Args)-1)
			for range cmd.Args[1:] {
				out = resp.AppendNullBulk(out)
			}
		case "del", "unlink", "touch", "exists":
			out = resp.AppendInt(nil, int64(len(cmd.Args)-1))
		case "dbsize":
			out = resp.AppendInt(nil, 1)
		case "keys":
			out = resp.AppendBulkString(resp.AppendArrayHeader(nil, 1), "k")
		case "randomkey":
			out = resp.AppendBulkString(nil, "k")
		case "scan":
			out = resp.AppendArrayHeader(resp.AppendBulkString(resp.AppendArrayHeader(nil, 2), "0"), 0)
		case "info":
			out = resp.AppendBulkString(nil, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n")
		default:
			out = resp.AppendSimple(nil, "OK")
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// pipeMemcached answers as memcached would for an empty cache, and not at
// all to noreply requests.
func pipeMemcached(nc net.Conn) {
	defer nc.Close()
	rd := memcache.NewReader(nc, protocol.Limits{})
	var req memcache.Request
	for {
		if err := rd.ReadRequest(&req); err != nil {
			if len(req.Raw) > 0 {
				continue
			}
			return
		}
		if req.Noreply {
			continue
		}
		var out string
		switch {
		case req.Command.IsRetrieval():
			out = "END\r\n"
		case req.Command.IsStorage() || req.Command == memcache.Cas:
			out = "STORED\r\n"
		case req.Command == memcache.Version:
			out = "VERSION fake\r\n"
		case req.Command == memcache.FlushAll || req.Command == memcache.Verbosity:
			out = "OK\r\n"
		case req.Command == memcache.Stats && strings.Contains(string(req.Raw), "reset"):
			out = "RESET\r\n"
		case req.Command == memcache.Stats:
			out = "STAT pid 7\r\nSTAT cmd_get 3\r\nSTAT rusage_user 0.250000\r\nSTAT version fake\r\nEND\r\n"
		default:
			out = "NOT_FOUND\r\n"
		}
		if _, err := nc.Write([]byte(out)); err != nil {
			return
		}
	}
}

func fuzzClient(t testing.TB, kind protocol.Kind, serve func(net.Conn)) *proxy.Client {
	cfg := proxy.Config{
		Name:     "fuzz",
		Protocol: kind,
		Servers:  []shard.Server{{Addr: "a:1"}, {Addr: "b:1", Weight: 2}, {Addr: "c:1"}},
		Ring:     shard.RingOptions{HashTag: "{}"},
		Limits:   protocol.Limits{MaxBulk: 1 << 20, MaxArgs: 1 << 10},
	}
	cfg.Dial = pipeDial(serve)
	cfg.Backend.Timeout = 2 * time.Second
	c, err := proxy.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzClientRedis sends arbitrary bytes as one request through the proxy's
// routing, splitting and merging: it must never panic or hang, and a reply
// must be one whole RESP reply.
func FuzzClientRedis(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n",
		"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
		"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n",
		"*4\r\n$4\r\nEVAL\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\nk\r\n",
		"*3\r\n$6\r\nSUNION\r\n$4\r\n{t}a\r\n$4\r\n{t}b\r\n",
		"PING hello\r\n", "*1\r\n$4\r\nQUIT\r\n", "*2\r\n$4\r\nAUTH\r\n$1\r\nx\r\n",
		"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$1\r\nx\r\n", "*1\r\n$4\r\nKEYS\r\n", "*-1\r\n", "",
		"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n", "*1\r\n$6\r\nDBSIZE\r\n", "*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n",
		"*1\r\n$9\r\nRANDOMKEY\r\n", "*1\r\n$4\r\nINFO\r\n", "*2\r\n$4\r\nINFO\r\n$3\r\na:1\r\n", "*1\r\n$8\r\nFLUSHALL\r\n",
		"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$8\r\nreturn 1\r\n", "*3\r\n$8\r\nFUNCTION\r\n$6\r\nDELETE\r\n$1\r\nx\r\n",
		"SCAN 281474976710656\r\n",
	} {
		f.Add([]byte(s))
	}
	c := fuzzClient(f, protocol.Redis, pipeRedis)
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, req []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply, err := c.Do(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("request %q hung", req)
			}
			return
		}
		n, ferr := resp.FrameReply(reply, protocol.Limits{})
		if ferr != nil || n != len(reply) {
			t.Fatalf("request %q: reply %q is not one RESP reply (n=%d, err=%v)", req, reply, n, ferr)
		}
	})
}

// FuzzClientMemcache does the same for a memcached pool.
func FuzzClientMemcache(f *testing.F) {
	for _, s := range []string{
		"get a b c a\r\n", "gets a\r\n", "gat 10 a b\r\n", "set a 0 0 1\r\nx\r\n",
		"set a 0 0 1 noreply\r\nx\r\n", "delete a\r\n", "incr a 1\r\n", "touch a 1\r\n",
		"version\r\n", "quit\r\n", "stats\r\n", "mn\r\n", "mg a v\r\n", "bogus\r\n", "get\r\n", "",
		"flush_all\r\n", "flush_all 10 noreply\r\n", "verbosity 1\r\n", "stats reset\r\n", "stats slabs\r\n",
		"get a\x01 \x7f b\tc\r\n", "gets" + strings.Repeat(" key:abcdefgh", 6000) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	c := fuzzClient(f, protocol.Memcache, pipeMemcached)
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, req []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply, err := c.Do(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("request %q hung", req)
			}
			return
		}
		if len(reply) > 0 && !strings.HasSuffix(string(reply), "\r\n") {
			t.Fatalf("request %q: reply %q is not whole lines", req, reply)
		}
	})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// multiKeys is how many keys an MSET or a memcached multi-get carries.
const multiKeys = 10

// rowKinds are the rows the built-in load generator knows.
var rowKinds = map[string]struct {
	memcache bool
	desc     string
}{
	"set":    {false, "Redis SET"},
	"get":    {false, "Redis GET"},
	"mset":   {false, "Redis MSET (10 keys)"},
	"mget":   {false, "Redis MGET (10 keys)"},
	"mcset":  {true, "memcached set"},
	"mcget":  {true, "memcached get"},
	"mcmget": {true, "memcached get (10 keys)"},
}

// loadConfig is one row's load.
type loadConfig struct {
	addr     string
	row      string
	conns    int
	pipeline int
	requests int
	keyspace int
	valSize  int
}

// loadResult is what a row measured.
type loadResult struct {
	requests uint64
	errors   uint64
	elapsed  time.Duration
	hist     *hist
}

// runLoad opens cfg.conns connections and sends cfg.requests requests in
// total, cfg.pipeline at a time per connection. Each batch's round trip
// (first byte written to last reply framed) divided by the batch size is
// recorded once per request of the batch: with -P 1 that is the request
// latency, with -P > 1 the per-request share of the batch latency, as
// redis-benchmark reports it. done is advanced as requests complete.
func runLoad(ctx context.Context, cfg loadConfig, done *atomic.Uint64) (loadResult, error) {
	conns := make([]net.Conn, cfg.conns)
	for i := range conns {
		c, err := net.DialTimeout("tcp", cfg.addr, 2*time.Second)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return loadResult{}, err
		}
		conns[i] = c
	}
	// Close every connection when ctx ends so that blocked reads return.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer func() {
		stop()
		for _, c := range conns {
			c.Close()
		}
	}()
	hists := make([]*hist, cfg.conns)
	errs := make([]error, cfg.conns)
	var errCount atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		n := cfg.requests / cfg.conns
		if i < cfg.requests%cfg.conns {
			n++
		}
		hists[i] = newHist()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = drive(c, cfg, n, uint64(i), hists[i], done, &errCount)
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), hist: newHist(), errors: errCount.Load()}
	for _, h := range hists {
		res.hist.merge(h)
	}
	res.requests = res.hist.total
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, errors.Join(errs...)
}

// drive sends n requests on c.
func drive(c net.Conn, cfg loadConfig, n int, seed uint64, h *hist, done *atomic.Uint64, errCount *atomic.Uint64) error {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	value := make([]byte, cfg.valSize)
	for i := range value {
		value[i] = 'x'
	}
	isMC := rowKinds[cfg.row].memcache
	mcCmd := memcache.Get
	if cfg.row == "mcset" {
		mcCmd = memcache.Set
	}
	var (
		out  []byte
		keys [multiKeys][]byte
		args [1 + 2*multiKeys][]byte
		mget = []byte("MGET")
		mset = []byte("MSET")
		set  = []byte("SET")
		get  = []byte("GET")
	)
	for i := range keys {
		keys[i] = make([]byte, 0, 32)
	}
	key := func(i int) []byte {
		keys[i] = strconv.AppendInt(append(keys[i][:0], "key:"...), int64(rng.IntN(cfg.keyspace)), 10)
		return keys[i]
	}
	buf := make([]byte, 0, 64<<10)
	var lim protocol.Limits
	for sent := 0; sent < n; {
		batch := min(cfg.pipeline, n-sent)
		out = out[:0]
		for range batch {
			switch cfg.row {
			case "set":
				out = resp.AppendCommand(out, set, key(0), value)
			case "get":
				out = resp.AppendCommand(out, get, key(0))
			case "mset":
				a := append(args[:0], mset)
				for k := range multiKeys {
					a = append(a, key(k), value)
				}
				out = resp.AppendCommand(out, a...)
			case "mget":
				a := append(args[:0], mget)
				for k := range multiKeys {
					a = append(a, key(k))
				}
				out = resp.AppendCommand(out, a...)
			case "mcset":
				out = memcache.AppendStorage(out, memcache.Set, key(0), 0, 0, 0, value, false)
			case "mcget":
				out = memcache.AppendGet(out, memcache.Get, key(0))
			case "mcmget":
				for k := range multiKeys {
					key(k)
				}
				out = memcache.AppendGet(out, memcache.Get, keys[:]...)
			}
		}
		t0 := time.Now()
		if _, err := c.Write(out); err != nil {
			return err
		}
		// Frame batch replies from buf, reading more as needed.
		buf = buf[:0]
		for got := 0; got < batch; {
			var (
				m   int
				err error
			)
			if isMC {
				m, err = memcache.FrameResponse(buf, mcCmd, lim)
			} else {
				m, err = resp.FrameReply(buf, lim)
			}
			if err != nil {
				return fmt.Errorf("%s: framing reply: %w", cfg.row, err)
			}
			if m == 0 {
				if len(buf) == cap(buf) {
					buf = append(buf, 0)[:len(buf)]
				}
				k, err := c.Read(buf[len(buf):cap(buf)])
				if err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return err
				}
				buf = buf[:len(buf)+k]
				continue
			}
			if isReplyError(buf[:m], isMC) {
				errCount.Add(1)
			}
			buf = buf[:copy(buf, buf[m:])]
			got++
		}
		if len(buf) != 0 {
			return fmt.Errorf("%s: %d unexpected bytes after %d replies", cfg.row, len(buf), batch)
		}
		per := uint64(time.Since(t0)) / uint64(batch)
		h.record(per, uint64(batch))
		done.Add(uint64(batch))
		sent += batch
	}
	return nil
}

// isReplyError reports whether a framed reply is an error reply.
func isReplyError(b []byte, isMC bool) bool {
	if !isMC {
		return len(b) > 0 && b[0] == '-'
	}
	return memcache.ClassifyResponse(b).IsError()
}

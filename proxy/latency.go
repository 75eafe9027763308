package proxy

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// A Histogram is a snapshot of a latency distribution.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, ascending. Every
	// Histogram of this package has the same bounds, from 50µs to 10s.
	Bounds []float64
	// Counts[i] is the number of observations in bucket i: greater than
	// Bounds[i-1] and at most Bounds[i]. len(Counts) is len(Bounds)+1; the
	// last bucket holds those above every bound.
	Counts []uint64
	// Count is the number of observations, the sum of Counts.
	Count uint64
	// Sum is the sum of the observations in seconds.
	Sum float64
}

// CommandLatency is the latency of one command of a pool: from the moment
// the proxy has read the request to the moment its reply is ready to be
// written. The replies to requests read together (pipelined) are written
// together, so each request of such a batch counts the time to the batch's
// last reply, which is when its client receives it.
type CommandLatency struct {
	// Command is the command's name in lower case, such as "get", "mget"
	// or "client|setname" (Redis, as resp.CommandInfo names it) or "gets"
	// (memcached).
	Command string
	Histogram
}

// latencyBounds are the bucket bounds of every histogram, in nanoseconds.
var latencyBounds = [...]int64{
	50e3, 100e3, 250e3, 500e3,
	1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6,
	1e9, 2.5e9, 5e9, 10e9,
}

// boundsSeconds is latencyBounds in seconds, shared by every snapshot.
var boundsSeconds = func() []float64 {
	b := make([]float64, len(latencyBounds))
	for i, ns := range latencyBounds {
		b[i] = float64(ns) / 1e9
	}
	return b
}()

// A histogram counts durations in the buckets of latencyBounds. It is safe
// for concurrent use and does not allocate.
type histogram struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
}

// observe records a duration of d nanoseconds.
func (h *histogram) observe(d int64) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(d))
}

// snapshot returns the histogram's counts. Observations made meanwhile may
// be counted in some buckets and not others, or in the buckets and not the
// sum.
func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: boundsSeconds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = float64(h.sum.Load()) / 1e9
	return s
}

// clock is the monotonic clock of latency measurements: nanoseconds since
// the process's first use of it.
var clockEpoch = time.Now()

func nanotime() int64 { return int64(time.Since(clockEpoch)) }

// redisCommands is resp's command table, for naming the per-command
// histograms by index.
var redisCommands = resp.Commands()

// commandLatencies holds a pool's per-command histograms, indexed by
// resp.CommandInfo.Index for Redis and by memcache.Command for memcached,
// each allocated on the command's first use.
type commandLatencies struct {
	hs []atomic.Pointer[histogram]
	mu sync.Mutex // serialises allocation
}

func newCommandLatencies(kind protocol.Kind) *commandLatencies {
	n := 256 // memcache.Command is a uint8
	if kind == protocol.Redis {
		n = len(redisCommands)
	}
	return &commandLatencies{hs: make([]atomic.Pointer[histogram], n)}
}

// observe records d nanoseconds for command id; ids out of range (-1 for
// a request that was not a known command) are not recorded.
func (l *commandLatencies) observe(id int, d int64) {
	if id < 0 || id >= len(l.hs) {
		return
	}
	h := l.hs[id].Load()
	if h == nil {
		l.mu.Lock()
		if h = l.hs[id].Load(); h == nil {
			h = new(histogram)
			l.hs[id].Store(h)
		}
		l.mu.Unlock()
	}
	h.observe(d)
}

// snapshot returns the histograms of the commands seen, sorted by name.
func (l *commandLatencies) snapshot(kind protocol.Kind) []CommandLatency {
	var out []CommandLatency
	for id := range l.hs {
		h := l.hs[id].Load()
		if h == nil {
			continue
		}
		var name string
		if kind == protocol.Redis {
			name = redisCommands[id].Name
		} else {
			name = memcache.Command(id).String()
		}
		out = append(out, CommandLatency{Command: name, Histogram: h.snapshot()})
	}
	slices.SortFunc(out, func(a, b CommandLatency) int {
		switch {
		case a.Command < b.Command:
			return -1
		case a.Command > b.Command:
			return 1
		}
		return 0
	})
	return out
}

// Latencies returns the pool's per-command latency (see CommandLatency)
// for the commands it has answered at least once, sorted by name. Requests
// the proxy rejects without knowing the command (unknown commands,
// malformed requests) are not counted. The histograms survive Reload.
func (s *Server) Latencies() []CommandLatency { return s.lat.snapshot(s.proto) }

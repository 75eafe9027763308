package proxy

import (
	"errors"
	"time"
)

// STUB for the cmd/metrics helper: the real implementation lands on main.

// Validate reports whether New (or Reload) would accept cfg.
func (cfg Config) Validate() error { return errors.New("stub") }

// Reload replaces the server's configuration with cfg. Name and Protocol
// must stay the same; Network, Addr, SocketPerm and ReusePort are kept for
// the next Listen call and do not affect listeners already serving.
// Servers whose name, address and connection settings are unchanged keep
// their connections; clients keep their connections and in-flight
// requests complete. On error nothing changes.
func (s *Server) Reload(cfg Config) error { return errors.New("stub") }

// Config returns the configuration in force.
func (s *Server) Config() Config { return s.cfg }

// SetPools replaces the pools the stats server reports.
func (st *StatsServer) SetPools(pools []*Server) {}

// A Histogram is a snapshot of a latency distribution.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, ascending.
	Bounds []float64
	// Counts[i] is the number of observations in bucket i: greater than
	// Bounds[i-1] and at most Bounds[i]. len(Counts) == len(Bounds)+1; the
	// last bucket holds those above every bound.
	Counts []uint64
	Count  uint64  // observations
	Sum    float64 // seconds
}

// CommandLatency is the latency of one command of a pool: from the moment
// the proxy has read the request to the moment its reply is ready.
type CommandLatency struct {
	Command string // lower case, such as "get" or "client|setname"
	Histogram
}

// Latencies returns the pool's per-command latency, for the commands seen
// at least once, sorted by name.
func (s *Server) Latencies() []CommandLatency { return nil }

// RTT returns server i's round-trip time histogram (ring order as in
// Stats): from a request being queued to the server to its reply.
func (s *Server) RTT(i int) Histogram { return Histogram{} }

var _ = time.Second

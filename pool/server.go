package pool

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ServerStats are one server's counters, named after twemproxy's
// per-server stats plus two of walnut's own. Counters are cumulative; gauges are
// current values.
type ServerStats struct {
	ServerEOF         int64 // connections closed by the server (EOF)
	ServerErr         int64 // connections closed on any other error: connect, I/O, protocol, IsFailure, stray reply
	ServerTimedOut    int64 // connections closed by Timeout
	ServerConnections int64 // gauge: open connections
	ServerEjectedAt   int64 // µs since the Unix epoch of the last ejection; 0 if never

	Requests      int64 // requests queued to the server (Init and probes not counted)
	RequestBytes  int64
	Responses     int64 // replies delivered (swallowed and failure replies not counted)
	ResponseBytes int64
	InQueue       int64 // gauge: requests queued, not yet written
	InQueueBytes  int64
	OutQueue      int64 // gauge: requests written, awaiting their reply
	OutQueueBytes int64

	Ejects     int64 // times the server was ejected (twemproxy counts this per pool)
	InitErrors int64 // Init replies reported by Options.IsError
}

// Stats returns the server's counters. It may be called at any time; each
// field is read atomically, the set of them is not a snapshot.
func (p *Pool) Stats() ServerStats {
	s := p.srv
	st := ServerStats{
		ServerEOF:         s.eof.Load(),
		ServerErr:         s.errs.Load(),
		ServerTimedOut:    s.timedOut.Load(),
		ServerConnections: s.conns.Load(),
		ServerEjectedAt:   s.ejectedAt.Load(),
		Ejects:            s.ejects.Load(),
		InitErrors:        s.initErrors.Load(),
	}
	for _, pp := range s.pipes {
		pp.c.addTo(&st)
	}
	s.loopMu.Lock()
	for _, c := range s.loops {
		c.c.addTo(&st)
	}
	s.retired.addTo(&st)
	s.loopMu.Unlock()
	return st
}

// addTo adds the counters of c to st.
func (c *pipeCounters) addTo(st *ServerStats) {
	// Load the "out" side of each gauge first: it never passes the "in"
	// side, so the difference is never negative.
	dqN, dqB := c.dequeuedN.Load(), c.dequeuedB.Load()
	qN, qB := c.queuedN.Load(), c.queuedB.Load()
	doneN, doneB := c.doneN.Load(), c.doneB.Load()
	sentN, sentB := c.sentN.Load(), c.sentB.Load()
	st.Requests += qN
	st.RequestBytes += qB
	st.InQueue += qN - dqN
	st.InQueueBytes += qB - dqB
	st.OutQueue += sentN - doneN
	st.OutQueueBytes += sentB - doneB
	st.Responses += c.respN.Load()
	st.ResponseBytes += c.respB.Load()
}

// retire adds to c the cumulative counters of from, a LoopConn's whose
// requests are all completed.
func (c *pipeCounters) retire(from *pipeCounters) {
	for _, f := range [...]struct{ to, from *atomic.Int64 }{
		{&c.queuedN, &from.queuedN}, {&c.queuedB, &from.queuedB},
		{&c.dequeuedN, &from.dequeuedN}, {&c.dequeuedB, &from.dequeuedB},
		{&c.sentN, &from.sentN}, {&c.sentB, &from.sentB},
		{&c.doneN, &from.doneN}, {&c.doneB, &from.doneB},
		{&c.respN, &from.respN}, {&c.respB, &from.respB},
	} {
		f.to.Add(f.from.Load())
	}
}

// failClass says how a connection failure is counted.
type failClass uint8

const (
	failNone    failClass = iota // pool closing: not a server failure
	failEOF                      // ServerEOF
	failErr                      // ServerErr
	failTimeout                  // ServerTimedOut
)

// server is one backend: its connections, failure accounting and counters.
type server struct {
	p     *Pool
	cfg   Server
	pipes []*pipe
	rr    atomic.Uint32

	eof, errs, timedOut, conns atomic.Int64
	ejectedAt, ejects          atomic.Int64
	initErrors                 atomic.Int64
	initFailing                atomic.Bool // an Init error has been logged

	ejected  atomic.Bool   // written under mu
	failures atomic.Int32  // consecutive counted failures; written under mu
	epoch    atomic.Uint64 // bumped under mu by each counted failure and reinstatement

	mu    sync.Mutex
	retry *time.Timer // pending probe while ejected

	// The live LoopConns, whose counters Stats adds up, and the counters
	// of those closed.
	loopMu  sync.Mutex
	loops   []*LoopConn // each at its index
	retired pipeCounters

	// The Dedicated connections open (dedicated.go).
	dedMu     sync.Mutex
	dedicated map[*Dedicated]struct{}
}

// failure records the close of a connection to s, or a failed attempt,
// and ejects s when it has failed FailureLimit times in a row. epoch is
// s.epoch as it was when the connection was started (its attempt began).
//
// One event that closes several connections counts once, which fixes
// twemproxy issue #430 (with server_connections above server_failure_limit
// a single restart ejected a healthy server): a close counts only if no
// failure has been counted since the connection was started.
func (s *server) failure(epoch uint64, class failClass, err error) {
	switch class {
	case failNone:
		return
	case failEOF:
		s.eof.Add(1)
	case failErr:
		s.errs.Add(1)
	case failTimeout:
		s.timedOut.Add(1)
	}
	p := s.p
	p.log.Debug("pool: server connection closed", "server", s.cfg.Name, "addr", s.cfg.Addr, "error", err)
	if !p.opts.AutoEject {
		return
	}
	s.mu.Lock()
	if s.ejected.Load() || p.closed.Load() || epoch != s.epoch.Load() {
		s.mu.Unlock()
		return
	}
	s.epoch.Add(1)
	n := s.failures.Add(1)
	if int(n) < p.opts.FailureLimit {
		s.mu.Unlock()
		return
	}
	s.failures.Store(0)
	s.ejected.Store(true)
	s.ejects.Add(1)
	s.ejectedAt.Store(time.Now().UnixMicro())
	s.retry = time.AfterFunc(p.opts.RetryTimeout, s.retryFired)
	p.log.Warn("pool: server ejected", "server", s.cfg.Name, "addr", s.cfg.Addr,
		"failures", n, "error", err, "retry_in", p.opts.RetryTimeout)
	s.notifyUnlock(true)
}

// ok notes a reply from s: it resets the consecutive failure count.
func (s *server) ok() {
	if s.failures.Load() == 0 {
		return
	}
	s.mu.Lock()
	s.failures.Store(0)
	s.mu.Unlock()
}

// notifyUnlock reports a change to OnChange. It is called with s.mu held
// and releases it, after taking notifyMu so that changes are reported in
// the order they were made.
func (s *server) notifyUnlock(ejected bool) {
	s.p.notifyMu.Lock()
	s.mu.Unlock()
	defer s.p.notifyMu.Unlock()
	if f := s.p.opts.OnChange; f != nil {
		f(ejected)
	}
}

// retryFired runs on the timer's goroutine when RetryTimeout has passed.
func (s *server) retryFired() {
	s.p.start(s.probe) // false only when the pool is closing
}

// stopRetry cancels a pending probe; Close calls it.
func (s *server) stopRetry() {
	s.mu.Lock()
	if s.retry != nil {
		s.retry.Stop()
	}
	s.mu.Unlock()
}

// probe checks an ejected server and reinstates it, or schedules the next
// probe.
func (s *server) probe() {
	p := s.p
	err := s.tryProbe()
	s.mu.Lock()
	if p.closed.Load() || !s.ejected.Load() {
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.retry = time.AfterFunc(p.opts.RetryTimeout, s.retryFired)
		s.mu.Unlock()
		p.log.Debug("pool: probe failed; server stays ejected", "server", s.cfg.Name,
			"addr", s.cfg.Addr, "error", err, "retry_in", p.opts.RetryTimeout)
		return
	}
	s.failures.Store(0)
	s.epoch.Add(1) // failures of connections opened before now do not count
	s.ejected.Store(false)
	p.log.Info("pool: server reinstated", "server", s.cfg.Name, "addr", s.cfg.Addr)
	s.notifyUnlock(false)
}

// Probe failures other than connection errors.
var (
	// errProbeFailure is a probe answered with a reply IsFailure rejects.
	errProbeFailure = errors.New("pool: probe reply reports a server failure")
	// errProbeTooLong is an Init or probe reply longer than maxProbeReply.
	errProbeTooLong = errors.New("pool: probe reply too long")
)

// maxProbeReply is the longest reply to an Init request or the probe that
// tryProbe reads (4 MiB: PING, version and the Init requests answer in a few
// bytes): its read buffer grows no further, and a longer reply
// (or a Framer's size hint beyond it) fails the probe.
const maxProbeReply = 4 << 20

// tryProbe opens a fresh connection, sends Init and Probe, and checks the
// replies. Connection failures are counted in ServerEOF, ServerErr and
// ServerTimedOut but not towards ejection.
func (s *server) tryProbe() error {
	p := s.p
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.DialTimeout)
	nc, err := p.dial(ctx, s.cfg.Network, s.cfg.Addr)
	cancel()
	if err != nil {
		if p.ctx.Err() == nil {
			s.errs.Add(1)
		}
		return err
	}
	defer nc.Close()
	stop := context.AfterFunc(p.ctx, func() { _ = nc.Close() })
	defer stop()

	reqs := p.init
	if p.probe != nil {
		reqs = append(reqs[:len(reqs):len(reqs)], p.probe)
	}
	if len(reqs) == 0 {
		return nil
	}
	var out []byte
	for _, r := range reqs {
		out = append(out, r.Data...)
	}
	timeout := p.opts.Timeout
	if timeout == 0 {
		timeout = p.opts.DialTimeout
	}
	if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		s.errs.Add(1)
		return err
	}
	if _, err := nc.Write(out); err != nil {
		s.errs.Add(1)
		return err
	}
	var b replyBuf
	b.room()
	for len(reqs) > 0 {
		for len(reqs) > 0 && b.ready() {
			n, err := b.next(p.opts.Framer, reqs[0])
			if err != nil {
				s.errs.Add(1)
				return ErrInvalid
			}
			if n == 0 {
				break
			}
			if f := p.opts.IsFailure; f != nil && f(b.buf[b.r-n:b.r]) {
				s.errs.Add(1)
				return errProbeFailure
			}
			reqs = reqs[1:]
		}
		if len(reqs) == 0 {
			break
		}
		if b.need > maxProbeReply || b.w-b.r >= maxProbeReply {
			s.errs.Add(1)
			return errProbeTooLong
		}
		b.room()
		if _, err := b.fill(nc); err != nil {
			switch {
			case p.ctx.Err() != nil:
			case errors.Is(err, io.EOF):
				s.eof.Add(1)
			case errors.Is(err, net.ErrClosed):
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.timedOut.Add(1)
			default:
				s.errs.Add(1)
			}
			return err
		}
	}
	return nil
}

// logInit records the reply to Init request i (from 0) on s. The log
// names the request by its position in Init, not by its bytes: an AUTH
// holds the password.
func (s *server) logInit(i int, reply []byte, isErr bool) {
	if !isErr {
		return
	}
	s.initErrors.Add(1)
	if s.initFailing.CompareAndSwap(false, true) {
		s.p.log.Warn("pool: init request failed", "server", s.cfg.Name, "addr", s.cfg.Addr,
			"init", i+1, "reply", strconv.Quote(truncate(reply)))
	}
}

// truncate returns at most the first 100 bytes of b as a string.
func truncate(b []byte) string {
	if len(b) > 100 {
		return string(b[:100]) + "…"
	}
	return string(b)
}

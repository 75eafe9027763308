package proxy

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walnutproxy/walnut/pool"
)

// poolCounters are a pool's counters that are not per server.
type poolCounters struct {
	clientEOF    atomic.Int64
	clientErr    atomic.Int64
	clientConns  atomic.Int64
	clientTotal  atomic.Int64
	forwardError atomic.Int64
	fragments    atomic.Int64
	listeners    atomic.Int64
	serverDials  atomic.Int64
	pinned       atomic.Int64 // pinned server connections held (pinned.go)
	pinRefused   atomic.Int64 // pinned commands refused by MaxPinned
}

// PoolStats are a pool's statistics, named after nutcracker's stats JSON.
type PoolStats struct {
	ClientEOF         int64 // client connections closed by the client
	ClientErr         int64 // client connections closed on an error (protocol, I/O, over client_connections)
	ClientConnections int64 // gauge: open client connections
	ServerEjects      int64 // server ejections
	ForwardError      int64 // error replies the proxy made up because a backend failed
	Fragments         int64 // sub-requests created by splitting multi-key requests and by Redis fan-out (nutcracker: always 0)
	// PinnedConnections (gauge) counts the server connections clients
	// hold for themselves (transactions, blocking commands,
	// subscriptions; see Config.MaxPinned), and PinnedRefused the
	// commands refused because the pool had MaxPinned of them. walnut's
	// own: not in nutcracker's stats JSON, only in /metrics.
	PinnedConnections int64
	PinnedRefused     int64
	Servers           []ServerStats
}

// ServerStats are one backend's statistics.
type ServerStats struct {
	Name string // the server's name as nutcracker names it (stats key)
	pool.ServerStats
	// Live is false while the server is ejected (see Server.Live).
	Live bool
	// RTT is the server's round-trip time: from the moment the proxy has
	// read a client's request to the moment the server's reply to it has
	// arrived. A server kept by Reload keeps its histogram.
	RTT Histogram
}

// Stats returns a snapshot of the pool's statistics, servers in ring order,
// all of one configuration even while Reload changes it.
func (s *Server) Stats() PoolStats {
	g := s.gen.Load()
	st := PoolStats{
		ClientEOF:         s.stats.clientEOF.Load(),
		ClientErr:         s.stats.clientErr.Load(),
		ClientConnections: s.stats.clientConns.Load(),
		ForwardError:      s.stats.forwardError.Load(),
		Fragments:         s.stats.fragments.Load(),
		PinnedConnections: s.stats.pinned.Load(),
		PinnedRefused:     s.stats.pinRefused.Load(),
		Servers:           make([]ServerStats, len(g.backends)),
	}
	for i, b := range g.backends {
		ss := b.stats()
		st.Servers[i] = ServerStats{Name: b.name, ServerStats: ss, Live: b.live.Load(), RTT: b.rtt.snapshot()}
		st.ServerEjects += ss.Ejects
	}
	return st
}

// connections returns the pool's current and total connections of every
// kind (listeners, clients, servers), as nutcracker counts them.
func (s *Server) connections(st *PoolStats) (curr, total int64) {
	l := s.stats.listeners.Load()
	curr = l + st.ClientConnections
	total = l + s.stats.clientTotal.Load() + s.stats.serverDials.Load()
	for i := range st.Servers {
		curr += st.Servers[i].ServerConnections
	}
	return curr, total
}

// A StatsServer serves nutcracker's stats JSON: on each connection it writes
// one JSON document and a newline, then closes, reading nothing. The document
// has nutcracker's keys in nutcracker's order, so tools written for
// nutcracker's stats port work unchanged.
type StatsServer struct {
	// Pools are the pools reported, in order (nutcracker orders them by
	// name, shorter names first). Set it before Serve; use SetPools to
	// change it afterwards.
	Pools []*Server
	// Service is the "service" value. If empty, "walnut" is used.
	Service string
	// Source is the "source" value. If empty, the host name is used.
	Source string
	// Version is the "version" value.
	Version string
	// Start is the start time "uptime" counts from. If zero, the time of
	// the first Serve call is used.
	Start time.Time
	// Interval is how often the document is recomputed, nutcracker's -i
	// (stats-interval): a read within Interval of the last computation
	// returns the same document. If zero, every read is fresh.
	Interval time.Duration
	// Logger receives accept errors. If nil, nothing is logged.
	Logger *slog.Logger

	mu        sync.Mutex
	doc       []byte
	docAt     time.Time
	listeners map[net.Listener]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// Serve accepts connections on l until Close. It returns ErrServerClosed
// after Close.
func (st *StatsServer) Serve(l net.Listener) error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if st.Start.IsZero() {
		st.Start = time.Now()
	}
	if st.listeners == nil {
		st.listeners = make(map[net.Listener]struct{})
	}
	st.listeners[l] = struct{}{}
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.listeners, l)
		st.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			st.mu.Lock()
			closed := st.closed
			st.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors: back off and keep serving, as
				// Server.Serve does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if st.Logger != nil {
					st.Logger.Warn("stats accept failed", "err", err, "retry_in", backoff)
				}
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		st.mu.Lock()
		if st.closed {
			st.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		st.wg.Add(1)
		st.mu.Unlock()
		doc := st.Document(time.Now())
		go func() {
			defer st.wg.Done()
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write(doc)
			c.Close()
		}()
	}
}

// SetPools replaces the pools reported, such as after a configuration
// reload added or removed some. The next document reports them, even
// within Interval of the last one.
func (st *StatsServer) SetPools(pools []*Server) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.Pools = append([]*Server(nil), pools...)
	st.doc = nil
}

// Close closes the listeners and waits for replies being written.
func (st *StatsServer) Close() error {
	st.mu.Lock()
	st.closed = true
	for l := range st.listeners {
		l.Close()
	}
	st.mu.Unlock()
	st.wg.Wait()
	return nil
}

// Document returns the stats JSON, with its trailing newline, as of now (or
// as of the last computation less than Interval before now).
func (st *StatsServer) Document(now time.Time) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.doc != nil && st.Interval > 0 && now.Sub(st.docAt) < st.Interval {
		return st.doc
	}
	start := st.Start
	if start.IsZero() {
		start = now
	}
	st.doc = st.appendJSON(nil, start, now)
	st.docAt = now
	return st.doc
}

func (st *StatsServer) appendJSON(b []byte, start, now time.Time) []byte {
	stats := make([]PoolStats, len(st.Pools))
	var curr, total int64
	for i, p := range st.Pools {
		stats[i] = p.Stats()
		c, t := p.connections(&stats[i])
		curr += c
		total += t
	}
	service := st.Service
	if service == "" {
		service = "walnut"
	}
	source := st.Source
	if source == "" {
		source, _ = os.Hostname()
	}
	w := statsWriter{b: append(b, '{')}
	w.str("service", service)
	w.str("source", source)
	w.str("version", st.Version)
	w.num("uptime", now.Unix()-start.Unix())
	w.num("timestamp", now.Unix())
	w.num("total_connections", total)
	w.num("curr_connections", curr)
	for i, p := range st.Pools {
		ps := &stats[i]
		w.begin(p.Name())
		w.num("client_eof", ps.ClientEOF)
		w.num("client_err", ps.ClientErr)
		w.num("client_connections", ps.ClientConnections)
		w.num("server_ejects", ps.ServerEjects)
		w.num("forward_error", ps.ForwardError)
		w.num("fragments", ps.Fragments)
		for j := range ps.Servers {
			ss := &ps.Servers[j]
			w.begin(ss.Name)
			w.num("server_eof", ss.ServerEOF)
			w.num("server_err", ss.ServerErr)
			w.num("server_timedout", ss.ServerTimedOut)
			w.num("server_connections", ss.ServerConnections)
			w.num("server_ejected_at", ss.ServerEjectedAt)
			w.num("requests", ss.Requests)
			w.num("request_bytes", ss.RequestBytes)
			w.num("responses", ss.Responses)
			w.num("response_bytes", ss.ResponseBytes)
			w.num("in_queue", ss.InQueue)
			w.num("in_queue_bytes", ss.InQueueBytes)
			w.num("out_queue", ss.OutQueue)
			w.num("out_queue_bytes", ss.OutQueueBytes)
			w.end()
		}
		w.end()
	}
	// nutcracker's footer: the last byte (a space or a comma) becomes '}'.
	w.b[len(w.b)-1] = '}'
	return append(w.b, '\n')
}

// statsWriter builds the document byte for byte as nutcracker's
// nc_stats.c does: every item ends with ", ", and closing a nested object
// turns the trailing ", " into "}," (or "}," into "}},").
type statsWriter struct{ b []byte }

func (w *statsWriter) key(k string) {
	w.b = append(w.b, '"')
	w.b = appendJSONText(w.b, k)
	w.b = append(w.b, '"')
}

func (w *statsWriter) str(k, v string) {
	w.key(k)
	w.b = append(w.b, ':', '"')
	w.b = appendJSONText(w.b, v)
	w.b = append(w.b, '"', ',', ' ')
}

func (w *statsWriter) num(k string, v int64) {
	w.key(k)
	w.b = append(w.b, ':')
	w.b = strconv.AppendInt(w.b, v, 10)
	w.b = append(w.b, ',', ' ')
}

func (w *statsWriter) begin(k string) {
	w.key(k)
	w.b = append(w.b, ':', ' ', '{')
}

func (w *statsWriter) end() {
	n := len(w.b)
	if n >= 2 && w.b[n-2] == ',' && w.b[n-1] == ' ' {
		w.b[n-2], w.b[n-1] = '}', ','
		return
	}
	// After a nested object: "}," becomes "}},".
	w.b[n-1] = '}'
	w.b = append(w.b, ',')
}

// appendJSONText appends s escaped for a JSON string. nutcracker inserts
// names verbatim; escaping changes nothing for ordinary names and keeps
// the document valid JSON for names with quotes or backslashes.
func appendJSONText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// DescribeStats is the description nutcracker -D prints after its version
// block: one line per pool and per server field.
const DescribeStats = `pool stats:
  client_eof          "# eof on client connections"
  client_err          "# errors on client connections"
  client_connections  "# active client connections"
  server_ejects       "# times backend server was ejected"
  forward_error       "# times we encountered a forwarding error"
  fragments           "# fragments created from a multi-vector request"

server stats:
  server_eof          "# eof on server connections"
  server_err          "# errors on server connections"
  server_timedout     "# timeouts on server connections"
  server_connections  "# active server connections"
  server_ejected_at   "timestamp when server was ejected in usec since epoch"
  requests            "# requests"
  request_bytes       "total request bytes"
  responses           "# responses"
  response_bytes      "total response bytes"
  in_queue            "# requests in incoming queue"
  in_queue_bytes      "current request bytes in incoming queue"
  out_queue           "# requests in outgoing queue"
  out_queue_bytes     "current request bytes in outgoing queue"
`

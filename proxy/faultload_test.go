package proxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
)

// This file holds the machinery of the fault matrix in faults_test.go: a
// load generator whose every reply is checked against the key of its own
// request, and a reader of a backend's own count of its client
// connections. The fake backend is in fakebackend_test.go.

// Load shape: loadWorkers client connections, each pipelining batches of
// loadBatch SETs, then the GETs of the same keys one by one, then one
// multi-key GET (MGET, or get with several keys) of them all, which the
// proxy splits by server; with loadPause between batches so that the
// backends keep up on a loaded machine. Half the clients use only keys
// that do not live on the victim.
const (
	loadWorkers = 8
	loadBatch   = 6
	loadKeys    = 60 // keys per worker
	loadPause   = 2 * time.Millisecond
)

// Key groups: a key lives on a healthy server or on the victim, as the
// ring placed it before any fault; a multi-key GET is in the victim group
// if any of its keys is.
const (
	groupLive = iota
	groupVictim
	nGroups
)

var groupNames = [nGroups]string{"live", "victim"}

// outcome is the verdict on one reply.
type outcome uint8

const (
	outOK    outcome = iota // the reply this request should get
	outError                // an error reply (counted by its text)
	outMiss                 // a GET found nothing: nil, or END alone
	outStale                // a GET found an older value of its own key
	outWrong                // anything else: another request's reply, or garbage
)

// A tally counts the replies to the batches one worker sent during one
// phase of a scenario.
type tally struct {
	reqs, ok, miss, stale [nGroups]int
	errs                  [nGroups]map[string]int
	wrong                 int
	wrongEx               []string      // the first few wrong replies
	maxLat                time.Duration // longest wait for a reply, from the batch's write
}

func (ta *tally) add(o *tally) {
	for g := range nGroups {
		ta.reqs[g] += o.reqs[g]
		ta.ok[g] += o.ok[g]
		ta.miss[g] += o.miss[g]
		ta.stale[g] += o.stale[g]
		for msg, n := range o.errs[g] {
			if ta.errs[g] == nil {
				ta.errs[g] = make(map[string]int)
			}
			ta.errs[g][msg] += n
		}
	}
	ta.wrong += o.wrong
	ta.wrongEx = append(ta.wrongEx, o.wrongEx...)
	ta.maxLat = max(ta.maxLat, o.maxLat)
}

// nerr returns the number of error replies in group g.
func (ta *tally) nerr(g int) int {
	n := 0
	for _, c := range ta.errs[g] {
		n += c
	}
	return n
}

// errTexts returns the distinct error texts of group g.
func (ta *tally) errTexts(g int) []string {
	var out []string
	for msg := range ta.errs[g] {
		out = append(out, msg)
	}
	sort.Strings(out)
	return out
}

func (ta *tally) String() string {
	var b strings.Builder
	for g := range nGroups {
		fmt.Fprintf(&b, "%s: %d requests, %d ok, %d errors %v, %d misses, %d stale; ",
			groupNames[g], ta.reqs[g], ta.ok[g], ta.nerr(g), ta.errs[g], ta.miss[g], ta.stale[g])
	}
	fmt.Fprintf(&b, "%d wrong; max latency %v", ta.wrong, ta.maxLat.Round(time.Millisecond))
	return b.String()
}

// wireCodec speaks one protocol for the load generator: it encodes
// requests and judges each reply against the request it answers.
type wireCodec struct{ kind protocol.Kind }

func (w wireCodec) appendSet(b []byte, key, val string) []byte {
	if w.kind == protocol.Redis {
		return resp.AppendCommandString(b, "SET", key, val)
	}
	return memcache.AppendStorage(b, memcache.Set, []byte(key), 0, 0, 0, []byte(val), false)
}

func (w wireCodec) appendGet(b []byte, keys ...string) []byte {
	if w.kind == protocol.Redis {
		name := "GET"
		if len(keys) > 1 {
			name = "MGET"
		}
		return resp.AppendCommandString(b, append([]string{name}, keys...)...)
	}
	bk := make([][]byte, len(keys))
	for i, k := range keys {
		bk[i] = []byte(k)
	}
	return memcache.AppendGet(b, memcache.Get, bk...)
}

// errorText returns the text of an error reply, without "-ERR " or
// "SERVER_ERROR ", and whether reply is one.
func (w wireCodec) errorText(reply []byte) (string, bool) {
	s := strings.TrimSuffix(string(reply), "\r\n")
	if w.kind == protocol.Redis {
		if !strings.HasPrefix(s, "-") {
			return "", false
		}
		return strings.TrimPrefix(s[1:], "ERR "), true
	}
	r := memcache.ClassifyResponse(reply)
	if !r.IsError() || strings.Count(string(reply), "\r\n") != 1 {
		return "", false
	}
	return strings.TrimPrefix(s, "SERVER_ERROR "), true
}

func (w wireCodec) judgeSet(reply []byte) (outcome, string) {
	if msg, ok := w.errorText(reply); ok {
		return outError, msg
	}
	if w.kind == protocol.Redis && string(reply) == "+OK\r\n" || w.kind == protocol.Memcache && string(reply) == "STORED\r\n" {
		return outOK, ""
	}
	return outWrong, ""
}

// judgeGet judges the reply to a GET of keys, which the same batch has
// just SET to vals. For each key the reply must hold vals[i], or else
// nothing or an older value of that same key (outMiss, outStale); a value
// of another key, or one out of place, is outWrong.
func (w wireCodec) judgeGet(reply []byte, keys, vals []string) (outcome, string) {
	if msg, ok := w.errorText(reply); ok {
		return outError, msg
	}
	var want []byte
	if w.kind == protocol.Redis {
		if len(keys) > 1 {
			want = resp.AppendArrayHeader(want, len(keys))
		}
		for _, v := range vals {
			want = resp.AppendBulkString(want, v)
		}
	} else {
		for i, v := range vals {
			want = memcache.AppendValue(want, []byte(keys[i]), 0, []byte(v))
		}
		want = memcache.AppendEnd(want)
	}
	if bytes.Equal(reply, want) {
		return outOK, ""
	}
	found, ok := w.values(reply, keys)
	if !ok {
		return outWrong, ""
	}
	res := outOK
	for i, v := range found {
		switch {
		case v == nil:
			res = max(res, outMiss)
		case !bytes.HasPrefix(v, []byte(keys[i]+":")):
			return outWrong, ""
		case string(v) != vals[i]:
			res = max(res, outStale)
		}
	}
	return res, ""
}

// values takes apart a well-formed reply to a GET of keys: the value of
// each key, nil where there is none. For memcached every VALUE block must
// name the next requested key that has one, in order.
func (w wireCodec) values(reply []byte, keys []string) ([][]byte, bool) {
	found := make([][]byte, len(keys))
	if w.kind == protocol.Redis {
		var v resp.Value
		n, err := resp.ParseReply(reply, protocol.Limits{}, &v)
		if err != nil || n != len(reply) {
			return nil, false
		}
		elems := []resp.Value{v}
		if len(keys) > 1 {
			if v.Type != resp.TypeArray || len(v.Elems) != len(keys) {
				return nil, false
			}
			elems = v.Elems
		}
		for i, e := range elems {
			switch {
			case e.Type == resp.TypeBulk && e.Null:
			case e.Type == resp.TypeBulk:
				found[i] = e.Str
			default:
				return nil, false
			}
		}
		return found, true
	}
	b, i := reply, 0
	for memcache.ClassifyResponse(b) == memcache.RespValue {
		var v memcache.Value
		n, err := memcache.ParseValue(b, protocol.Limits{}, &v)
		if err != nil || n == 0 || v.Flags != 0 {
			return nil, false
		}
		for i < len(keys) && keys[i] != string(v.Key) {
			i++
		}
		if i == len(keys) {
			return nil, false // a key not asked for, or out of order
		}
		found[i] = v.Data
		i++
		b = b[n:]
	}
	return found, string(b) == "END\r\n"
}

// replyReader reads one reply at a time from a client connection.
type replyReader struct {
	rd *resp.Reader
	mr *memcache.Reader
}

func (r replyReader) read(cmd memcache.Command) ([]byte, error) {
	if r.rd != nil {
		return r.rd.ReadRawReply()
	}
	return r.mr.ReadResponse(cmd)
}

// A loadWorker is one client connection of the load and what it saw.
type loadWorker struct {
	id          int
	nc          net.Conn
	keys        []string // the keys it uses, in rotation
	victim      map[string]bool
	liveOnly    bool    // never touches the victim's keys
	tallies     []tally // per phase; read after the worker has stopped
	fatal       error   // a disconnect, a hung read or a broken stream: the worker stopped
	fatalAt     time.Time
	closedAt    time.Time    // when the proxy closed the connection cleanly (EOF), once load.closing is set
	closedBatch time.Time    // when the batch it closed in was sent
	closedAfter int          // replies of that batch received before the close
	cur         atomic.Int32 // phase of the batch in progress
	exited      atomic.Bool
}

// A load drives loadWorkers clients through the proxy until stopped,
// checking every reply. Results are kept per phase: a batch counts in the
// phase that was current when it was written.
type load struct {
	codec     wireCodec
	workers   []*loadWorker
	readLimit time.Duration // longest wait for a reply before a worker declares a hang

	phase      atomic.Int32
	phaseNames []string
	phaseStart []time.Time // written only by the test goroutine

	victimOK atomic.Int64 // victim-key GETs answered correctly
	closing  atomic.Bool  // the proxy is shutting down: an EOF is expected
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// startLoad starts the clients. isVictim says whether a key lives on the
// victim; half the clients use every key, the other half only keys that do
// not live on the victim. The load is stopped at cleanup if the test has
// not stopped it.
func startLoad(t *testing.T, kind protocol.Kind, addr string, isVictim func(string) bool, readLimit time.Duration, firstPhase string) *load {
	t.Helper()
	l := &load{
		codec:      wireCodec{kind},
		readLimit:  readLimit,
		phaseNames: []string{firstPhase},
		phaseStart: []time.Time{time.Now()},
		stop:       make(chan struct{}),
	}
	t.Cleanup(l.halt)
	for id := range loadWorkers {
		w := &loadWorker{id: id, victim: map[string]bool{}, liveOnly: id%2 == 1}
		for j := 0; len(w.keys) < loadKeys; j++ {
			// The number first: twemproxy's fnv1a_64 places keys that
			// differ only in their last bytes close together on the ring.
			k := fmt.Sprintf("k%d:w%d", j, id)
			v := isVictim(k)
			if v && w.liveOnly {
				continue
			}
			w.victim[k] = v
			w.keys = append(w.keys, k)
		}
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		w.nc = nc
		l.workers = append(l.workers, w)
	}
	for _, w := range l.workers {
		l.wg.Add(1)
		go l.run(w)
	}
	return l
}

// next begins a new phase and returns its start.
func (l *load) next(name string) time.Time {
	now := time.Now()
	l.phaseNames = append(l.phaseNames, name)
	l.phaseStart = append(l.phaseStart, now)
	l.phase.Store(int32(len(l.phaseNames) - 1))
	return now
}

// settle waits until every client has finished the batches it sent before
// the current phase began, so that a fault applied now cannot reach them.
func (l *load) settle(t *testing.T) {
	t.Helper()
	ph := l.phase.Load()
	deadline := time.Now().Add(l.readLimit)
	for _, w := range l.workers {
		for w.cur.Load() < ph && !w.exited.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("client %d still busy with a batch of phase %q", w.id, l.phaseNames[w.cur.Load()])
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// phaseSum returns the tally of the named phase over the workers that
// match (all if match is nil).
func (l *load) phaseSum(t *testing.T, name string, match func(*loadWorker) bool) tally {
	t.Helper()
	for ph, n := range l.phaseNames {
		if n == name {
			return l.sum(ph, match)
		}
	}
	t.Fatalf("no phase %q", name)
	return tally{}
}

// total returns the tally of every phase.
func (l *load) total() tally {
	var ta tally
	for ph := range l.phaseNames {
		s := l.sum(ph, nil)
		ta.add(&s)
	}
	return ta
}

// halt stops the clients, waits for them, and closes their connections.
func (l *load) halt() {
	l.stopClients()
	l.closeClients()
}

// stopClients stops the clients after their current batch and waits for
// them, leaving their connections open.
func (l *load) stopClients() {
	l.stopOnce.Do(func() {
		close(l.stop)
		l.wg.Wait()
	})
}

// closeClients closes the client connections. Call it after stopClients.
func (l *load) closeClients() {
	for _, w := range l.workers {
		w.nc.Close()
	}
}

func (l *load) run(w *loadWorker) {
	defer l.wg.Done()
	defer w.exited.Store(true)
	rr := replyReader{}
	if l.codec.kind == protocol.Redis {
		rr.rd = resp.NewReader(w.nc, protocol.Limits{})
	} else {
		rr.mr = memcache.NewReader(w.nc, protocol.Limits{})
	}
	pause := time.NewTimer(0)
	defer pause.Stop()
	var buf []byte
	keys := make([]string, loadBatch)
	vals := make([]string, loadBatch)
	next := 0
	for seq := 0; ; seq++ {
		select {
		case <-l.stop:
			return
		case <-pause.C:
		}
		ph := int(l.phase.Load())
		w.cur.Store(int32(ph))
		for len(w.tallies) <= ph {
			w.tallies = append(w.tallies, tally{})
		}
		ta := &w.tallies[ph]
		buf = buf[:0]
		for i := range keys {
			keys[i] = w.keys[next]
			next = (next + 1) % len(w.keys)
			vals[i] = keys[i] + ":" + strconv.Itoa(w.id) + ":" + strconv.Itoa(seq)
			buf = l.codec.appendSet(buf, keys[i], vals[i])
		}
		anyVictim := false
		for i := range keys {
			buf = l.codec.appendGet(buf, keys[i])
			anyVictim = anyVictim || w.victim[keys[i]]
		}
		buf = l.codec.appendGet(buf, keys...)
		sent := time.Now()
		_ = w.nc.SetDeadline(sent.Add(l.readLimit))
		if _, err := w.nc.Write(buf); err != nil {
			w.fatal, w.fatalAt = fmt.Errorf("write: %w", err), time.Now()
			return
		}
		for i := range 2*len(keys) + 1 {
			cmd := memcache.Set
			if i >= len(keys) {
				cmd = memcache.Get
			}
			reply, err := rr.read(cmd)
			if err != nil && l.closing.Load() && errors.Is(err, io.EOF) {
				// Closed by Shutdown, after i replies of this batch.
				w.closedAt, w.closedBatch, w.closedAfter = time.Now(), sent, i
				return
			}
			if err != nil {
				w.fatal, w.fatalAt = fmt.Errorf("reply %d of batch %d (sent %v ago): %w", i, seq, time.Since(sent), err), time.Now()
				return
			}
			ta.maxLat = max(ta.maxLat, time.Since(sent))
			var o outcome
			var msg string
			g := groupLive
			switch {
			case i < len(keys):
				if w.victim[keys[i]] {
					g = groupVictim
				}
				o, msg = l.codec.judgeSet(reply)
			case i < 2*len(keys):
				k := i - len(keys)
				if w.victim[keys[k]] {
					g = groupVictim
				}
				o, msg = l.codec.judgeGet(reply, keys[k:k+1], vals[k:k+1])
				if o == outOK && g == groupVictim {
					l.victimOK.Add(1)
				}
			default:
				if anyVictim {
					g = groupVictim
				}
				o, msg = l.codec.judgeGet(reply, keys, vals)
			}
			ta.reqs[g]++
			switch o {
			case outOK:
				ta.ok[g]++
			case outError:
				if ta.errs[g] == nil {
					ta.errs[g] = make(map[string]int)
				}
				ta.errs[g][msg]++
			case outMiss:
				ta.miss[g]++
			case outStale:
				ta.stale[g]++
			case outWrong:
				ta.wrong++
				if len(ta.wrongEx) < 3 {
					ta.wrongEx = append(ta.wrongEx, fmt.Sprintf("client %d batch %d reply %d (keys %v): %q", w.id, seq, i, keys, reply))
				}
			}
		}
		pause.Reset(loadPause)
	}
}

// sum returns the tally of phase ph over the workers that match.
func (l *load) sum(ph int, match func(*loadWorker) bool) tally {
	var ta tally
	for _, w := range l.workers {
		if ph < len(w.tallies) && (match == nil || match(w)) {
			ta.add(&w.tallies[ph])
		}
	}
	return ta
}

func liveOnly(w *loadWorker) bool { return w.liveOnly }
func mixed(w *loadWorker) bool    { return !w.liveOnly }

// report logs each phase's figures and checks what holds in every phase:
// no client was disconnected or left waiting past readLimit, no reply
// belonged to another request, no reply for a live key was an error, and
// no batch waited longer than maxLat for its replies. It returns the
// total of error replies seen, to compare with the proxy's forward_error.
func (l *load) report(t *testing.T, maxLat time.Duration) int {
	t.Helper()
	errs := 0
	for _, w := range l.workers {
		assert.NoError(t, w.fatal, "client %d was disconnected or kept waiting (at %v)", w.id, w.fatalAt)
	}
	for ph, name := range l.phaseNames {
		all := l.sum(ph, nil)
		lo := l.sum(ph, liveOnly)
		end := time.Now()
		if ph+1 < len(l.phaseStart) {
			end = l.phaseStart[ph+1]
		}
		t.Logf("phase %q (%v): %v; clients avoiding the victim: max latency %v",
			name, end.Sub(l.phaseStart[ph]).Round(time.Millisecond), &all, lo.maxLat.Round(time.Millisecond))
		assert.Zero(t, all.wrong, "phase %q: replies that do not answer their own request: %v", name, all.wrongEx)
		assert.Zero(t, all.nerr(groupLive), "phase %q: error replies for keys on healthy servers: %v", name, all.errs[groupLive])
		assert.LessOrEqual(t, all.maxLat, maxLat, "phase %q: a batch waited too long for its replies", name)
		errs += all.nerr(groupLive) + all.nerr(groupVictim)
	}
	return errs
}

// waitVictimOK waits until one more victim-key GET is answered correctly
// than when it was called, and returns when it saw that.
func (l *load) waitVictimOK(t *testing.T, within time.Duration) time.Time {
	t.Helper()
	start := l.victimOK.Load()
	deadline := time.Now().Add(within)
	for l.victimOK.Load() == start {
		if time.Now().After(deadline) {
			t.Fatalf("no victim key answered correctly within %v", within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Now()
}

// connCounter reads a backend's own count of its client connections
// (redis INFO connected_clients, memcached curr_connections) over a
// connection of its own, which the count includes.
type connCounter struct {
	kind protocol.Kind
	nc   net.Conn
	br   *bufio.Reader
	base int64 // the count when no proxy connection is open
}

// newConnCounter connects to a backend. base is the count without the
// proxy: for redis-server this connection alone; for memcached, which also
// counts its listening socket, pass the count measured on an idle
// memcached started with the same arguments (zero measures it now).
func newConnCounter(t *testing.T, kind protocol.Kind, addr string, base int64) *connCounter {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	c := &connCounter{kind: kind, nc: nc, br: bufio.NewReader(nc), base: base}
	if base == 0 {
		c.base = 1
		if kind == protocol.Memcache {
			c.base = c.settledCount(t)
		}
	}
	return c
}

// count returns the backend's current count.
func (c *connCounter) count() (int64, error) {
	if err := c.nc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return 0, err
	}
	if c.kind == protocol.Redis {
		if _, err := c.nc.Write(resp.AppendCommandString(nil, "INFO", "clients")); err != nil {
			return 0, err
		}
		var v resp.Value
		if err := resp.NewReader(c.br, protocol.Limits{}).ReadReply(&v); err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(v.Str), "\r\n") {
			if n, ok := strings.CutPrefix(line, "connected_clients:"); ok {
				return strconv.ParseInt(n, 10, 64)
			}
		}
		return 0, fmt.Errorf("no connected_clients in INFO clients: %q", v.Str)
	}
	if _, err := c.nc.Write([]byte("stats\r\n")); err != nil {
		return 0, err
	}
	n := int64(-1)
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if line == "END\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r\n"), "STAT curr_connections "); ok {
			if n, err = strconv.ParseInt(v, 10, 64); err != nil {
				return 0, err
			}
		}
	}
	if n < 0 {
		return 0, errors.New("no curr_connections in stats")
	}
	return n, nil
}

// settledCount returns the count once it has stayed the same for a
// while: a memcached closes connections, such as the readiness probe's,
// asynchronously.
func (c *connCounter) settledCount(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, same := int64(-1), 0
	for same < 3 {
		n, err := c.count()
		require.NoError(t, err)
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		require.False(t, time.Now().After(deadline), "memcached's connection count does not settle")
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// requireBackendConns waits until, for every server i in ring order with a
// counter, the backend counts as many connections from the proxy as the
// proxy's stats report (server_connections), and that number is want(i).
// It logs the counts.
func requireBackendConns(t *testing.T, s *proxy.Server, counters map[int]*connCounter, want func(i int) int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Stats()
		var report []string
		good := true
		for i := range st.Servers {
			c := counters[i]
			if c == nil {
				continue
			}
			n, err := c.count()
			require.NoError(t, err, "counting the connections of server %d", i)
			got, stat := n-c.base, st.Servers[i].ServerConnections
			report = append(report, fmt.Sprintf("server %d: backend %d, proxy %d, want %d", i, got, stat, want(i)))
			good = good && got == stat && got == want(i)
		}
		if good {
			t.Logf("connections from the proxy: %s", strings.Join(report, "; "))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections from the proxy: %s", strings.Join(report, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDead waits until the killed server's process has exited (a zombie
// or gone), so that its sockets are closed.
func waitDead(t *testing.T, srv *testserver.Server) {
	t.Helper()
	require.Eventually(t, func() bool {
		st := processState(srv.PID)
		return st == "Z" || st == "X" || st == "" || srv.Exited()
	}, 5*time.Second, time.Millisecond)
}

// processState returns the state letter of process pid from
// /proc/<pid>/stat ("R", "S", "T" for stopped, "Z", …).
func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2 : i+3])
}

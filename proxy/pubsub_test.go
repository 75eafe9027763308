package proxy_test

// Pub/Sub through the proxy, compared with one redis-server: the same
// command streams are sent to a redis-server directly and through walnut
// over one server and over several, and the frames the clients receive
// are compared. With several servers the messages of different channels
// may interleave differently, so steps that read frames of several
// channels compare each channel's (or pattern's) frames in order.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/proxy"
)

// A psStep sends commands on one of the script's connections and reads
// frames from it.
type psStep struct {
	conn int        // which connection: 0 the subscriber, 1 the publisher, …
	cmds [][]string // sent with one write
	read int        // frames to read after the write
	// byChannel compares the frames read grouped by channel (or
	// pattern), each group in order, rather than all in order.
	byChannel bool
	// ignore leaves the frames read out of the comparison (HELLO's
	// reply, which walnut writes itself).
	ignore bool
	// sorted compares an array reply's elements in sorted order (PUBSUB
	// CHANNELS, whose order is a hash table's).
	sorted bool
}

// psRun runs steps on fresh connections to addr and returns what each
// step read, one string per step.
func psRun(t *testing.T, addr string, steps []psStep) []string {
	t.Helper()
	conns := map[int]net.Conn{}
	readers := map[int]*resp.Reader{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var out []string
	for i, st := range steps {
		c := conns[st.conn]
		if c == nil {
			var err error
			c, err = net.DialTimeout("tcp", addr, dtTimeout)
			require.NoError(t, err)
			conns[st.conn] = c
			readers[st.conn] = resp.NewReader(c, dtLimits)
		}
		var b []byte
		for _, cmd := range st.cmds {
			b = resp.AppendCommandString(b, cmd...)
		}
		require.NoError(t, c.SetDeadline(time.Now().Add(dtTimeout)))
		_, err := c.Write(b)
		require.NoError(t, err)
		var frames []string
		for range st.read {
			f, err := readers[st.conn].ReadRawReply()
			require.NoError(t, err, "step %d %v: %q so far", i, st.cmds, frames)
			frames = append(frames, string(f))
		}
		switch {
		case st.ignore:
			out = append(out, "(ignored)")
		case st.sorted:
			out = append(out, psSorted(t, frames))
		case st.byChannel:
			out = append(out, psGroup(frames))
		default:
			out = append(out, strings.Join(frames, ""))
		}
	}
	return out
}

// psSorted returns frames, each array's elements sorted.
func psSorted(t *testing.T, frames []string) string {
	var b strings.Builder
	for _, f := range frames {
		var v resp.Value
		_, err := resp.ParseReply([]byte(f), dtLimits, &v)
		require.NoError(t, err)
		var elems []string
		for _, e := range v.Elems {
			elems = append(elems, string(resp.AppendValue(nil, e)))
		}
		slices.Sort(elems)
		fmt.Fprintf(&b, "%c%d %q\n", v.Type, len(elems), elems)
	}
	return b.String()
}

// psGroup returns frames grouped by the channel or pattern they concern
// (their second element), each group in order, groups sorted.
func psGroup(frames []string) string {
	groups := map[string][]string{}
	var counts []int64
	for _, f := range frames {
		var v resp.Value
		_, err := resp.ParseReply([]byte(f), dtLimits, &v)
		key := f
		if err == nil && len(v.Elems) >= 2 {
			key = string(v.Elems[0].Str) + " " + string(v.Elems[1].Str)
			if string(v.Elems[0].Str) == "message" || string(v.Elems[0].Str) == "pmessage" {
				key = "msg " + string(v.Elems[1].Str)
			}
		}
		if err == nil && len(v.Elems) == 3 && v.Elems[2].Type == resp.TypeInt {
			// A confirmation: its count depends on the order of the
			// group, which is checked on its own.
			counts = append(counts, v.Elems[2].Int)
			f = f[:strings.LastIndex(f[:len(f)-2], ":")]
		}
		groups[key] = append(groups[key], f)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "counts %v\n", counts)
	for _, k := range keys {
		fmt.Fprintf(&b, "[%s] %s\n", k, strings.Join(groups[k], ""))
	}
	return b.String()
}

// psDiff runs steps against one redis-server directly and through walnut
// over one server and over three, and requires the same frames.
func psDiff(t *testing.T, steps []psStep) {
	t.Helper()
	direct := testserver.StartRedis(t, testserver.RedisOptions{})
	want := psRun(t, direct.Addr, steps)
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n)+"servers", func(t *testing.T) {
			bs := startBackends(t, protocol.Redis, n)
			_, addr := startProxy(t, protocol.Redis, bs, nil)
			got := psRun(t, addr, steps)
			for i := range steps {
				require.Equal(t, want[i], got[i], "step %d: %v", i, steps[i].cmds)
			}
			psWaitSubscribers(t, bs)
		})
	}
}

// psWaitSubscribers waits until no backend has a client whose last
// command was a subscribe or unsubscribe: the proxy has closed the
// dedicated connections of the clients that left.
func psWaitSubscribers(t *testing.T, bs []backend) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		var lines []string
		for _, b := range bs {
			c := testserver.DialRedis(t, b.Addr)
			list, err := c.Do("CLIENT", "LIST")
			require.NoError(t, err)
			c.Close()
			for _, l := range strings.Split(list, "\n") {
				for _, v := range []string{"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"} {
					if strings.Contains(l, " cmd="+v+" ") {
						n++
						lines = append(lines, l)
					}
				}
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dedicated connections left open on the backends: %q", lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cmds(c ...[]string) [][]string { return c }

func one(args ...string) [][]string { return [][]string{args} }

func TestPubsubDifferentialChannels(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: one("SUBSCRIBE", "a", "b", "c"), read: 3},
		{conn: 1, cmds: one("PUBLISH", "a", "m1"), read: 1},
		{conn: 0, read: 1},
		{conn: 1, cmds: one("PUBLISH", "b", "m2"), read: 1},
		{conn: 0, read: 1},
		{conn: 1, cmds: one("PUBLISH", "nobody", "x"), read: 1},
		{conn: 0, cmds: one("PING"), read: 1},
		{conn: 0, cmds: one("PING", "hi"), read: 1},
		{conn: 0, cmds: one("PING", "a", "b"), read: 1},
		{conn: 0, cmds: one("GET", "k"), read: 1},
		{conn: 0, cmds: one("CLIENT", "LIST"), read: 1},
		{conn: 0, cmds: one("NOSUCHCOMMAND", "x"), read: 1},
		{conn: 0, cmds: one("SUBSCRIBE"), read: 1},
		{conn: 0, cmds: one("SUBSCRIBE", "a"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE", "b"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE", "zz", "b"), read: 2},
		{conn: 1, cmds: one("PUBLISH", "b", "x"), read: 1},
		{conn: 0, cmds: one("PUNSUBSCRIBE"), read: 1},
		{conn: 0, cmds: one("SUBSCRIBE", "d", "e", "f", "g"), read: 4},
		{conn: 1, cmds: cmds(
			[]string{"PUBLISH", "a", "1"}, []string{"PUBLISH", "d", "2"}, []string{"PUBLISH", "e", "3"},
			[]string{"PUBLISH", "a", "4"}, []string{"PUBLISH", "g", "5"}, []string{"PUBLISH", "d", "6"}), read: 6},
		{conn: 0, read: 6, byChannel: true},
		{conn: 0, cmds: one("UNSUBSCRIBE"), read: 6, byChannel: true},
		// Out of subscribed mode: ordinary commands again.
		{conn: 0, cmds: one("GET", "k"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE", "x", "y"), read: 2},
		{conn: 0, cmds: one("PING"), read: 1},
		{conn: 1, cmds: one("PUBLISH", "a", "x"), read: 1},
	}
	psDiff(t, steps)
}

func TestPubsubDifferentialPipelined(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: cmds(
			[]string{"SET", "k", "v"},
			[]string{"SUBSCRIBE", "a", "b"},
			[]string{"PING"},
			[]string{"SUBSCRIBE", "c"},
			[]string{"GET", "k"},
			[]string{"UNSUBSCRIBE", "a", "b"},
			[]string{"UNSUBSCRIBE", "c"},
			[]string{"GET", "k"},
			[]string{"PING"},
		), read: 11},
		{conn: 0, cmds: cmds(
			[]string{"PSUBSCRIBE", "x*", "y*"},
			[]string{"SUBSCRIBE", "xa"},
			[]string{"PUNSUBSCRIBE", "x*"},
			[]string{"PUNSUBSCRIBE", "y*"},
			[]string{"PING"},
			[]string{"UNSUBSCRIBE", "xa"},
			[]string{"PING"},
		), read: 7},
	}
	psDiff(t, steps)
}

func TestPubsubDifferentialPatterns(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: one("PSUBSCRIBE", "news.*", "x?"), read: 2},
		{conn: 0, cmds: one("SUBSCRIBE", "news.a"), read: 1},
		{conn: 2, cmds: one("PSUBSCRIBE", "*"), read: 1},
		// Both the channel and the pattern match: two frames, the
		// channel's first, as one redis-server sends them.
		{conn: 1, cmds: one("PUBLISH", "news.a", "hi"), read: 1},
		{conn: 0, read: 2},
		{conn: 2, read: 1},
	}
	for i := range 12 {
		ch := "news." + strconv.Itoa(i)
		steps = append(steps,
			psStep{conn: 1, cmds: one("PUBLISH", ch, "m"+strconv.Itoa(i)), read: 1},
			psStep{conn: 0, read: 1},
			psStep{conn: 2, read: 1},
			psStep{conn: 1, cmds: one("PUBLISH", "x"+strconv.Itoa(i%10), "n"), read: 1},
			psStep{conn: 0, read: 1},
			psStep{conn: 2, read: 1},
		)
	}
	steps = append(steps,
		psStep{conn: 0, cmds: one("PUNSUBSCRIBE", "news.*", "nope"), read: 2},
		psStep{conn: 1, cmds: one("PUBLISH", "news.b", "x"), read: 1},
		psStep{conn: 2, read: 1},
		psStep{conn: 0, cmds: one("PING"), read: 1},
		psStep{conn: 0, cmds: one("PUNSUBSCRIBE"), read: 1},
		psStep{conn: 0, cmds: one("PUNSUBSCRIBE"), read: 1},
		psStep{conn: 0, cmds: one("UNSUBSCRIBE"), read: 1},
		psStep{conn: 0, cmds: one("GET", "x"), read: 1},
		psStep{conn: 2, cmds: one("PUNSUBSCRIBE", "*"), read: 1},
		psStep{conn: 2, cmds: one("PING"), read: 1},
	)
	psDiff(t, steps)
}

func TestPubsubDifferentialShard(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: one("SSUBSCRIBE", "s1", "{t}s2", "{t}s3"), read: 3},
		{conn: 0, cmds: one("SUBSCRIBE", "c1"), read: 1},
		{conn: 1, cmds: one("SPUBLISH", "s1", "x"), read: 1},
		{conn: 0, read: 1},
		{conn: 1, cmds: one("SPUBLISH", "{t}s3", "y"), read: 1},
		{conn: 0, read: 1},
		{conn: 0, cmds: one("SUNSUBSCRIBE", "s1"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE"), read: 1},
		{conn: 0, cmds: one("SUNSUBSCRIBE"), read: 2, byChannel: true},
		{conn: 0, cmds: one("GET", "k"), read: 1},
		{conn: 0, cmds: one("SUNSUBSCRIBE"), read: 1},
	}
	psDiff(t, steps)
}

func TestPubsubDifferentialReset(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: one("SUBSCRIBE", "a", "b"), read: 2},
		{conn: 0, cmds: one("PSUBSCRIBE", "p*"), read: 1},
		{conn: 0, cmds: one("RESET"), read: 1},
		{conn: 1, cmds: one("PUBLISH", "a", "x"), read: 1},
		{conn: 1, cmds: one("PUBLISH", "pa", "x"), read: 1},
		{conn: 0, cmds: one("GET", "k"), read: 1},
		{conn: 0, cmds: one("PING"), read: 1},
		{conn: 0, cmds: cmds([]string{"SUBSCRIBE", "a"}, []string{"RESET"}, []string{"PING"}), read: 3},
		{conn: 0, cmds: cmds([]string{"SUBSCRIBE", "a"}, []string{"QUIT"}), read: 2},
	}
	psDiff(t, steps)
}

// TestPubsubRESP3 compares RESP3 clients: confirmations and messages are
// push frames.
func TestPubsubDifferentialRESP3(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: one("HELLO", "3"), read: 1, ignore: true},
		{conn: 0, cmds: one("SUBSCRIBE", "a", "b"), read: 2},
		{conn: 0, cmds: one("PSUBSCRIBE", "a*"), read: 1},
		{conn: 1, cmds: one("PUBLISH", "a", "m"), read: 1},
		{conn: 0, read: 2},
		// RESP3: other commands on the subscribed connection too.
		{conn: 0, cmds: one("SET", "k", "v"), read: 1},
		{conn: 0, cmds: cmds([]string{"GET", "k"}, []string{"SUBSCRIBE", "c"}, []string{"ECHO", "e"},
			[]string{"HGETALL", "nokey"}, []string{"UNSUBSCRIBE", "c"}, []string{"DEL", "k"}, []string{"GET", "k"}), read: 7},
		{conn: 1, cmds: one("PUBLISH", "a", "m2"), read: 1},
		{conn: 0, read: 2},
		{conn: 0, cmds: one("INCR", "k"), read: 1},
		{conn: 0, cmds: one("NOSUCHCOMMAND"), read: 1},
		{conn: 0, cmds: one("PING"), read: 1},
		{conn: 0, cmds: one("PING", "x"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE", "a", "b", "c"), read: 3},
		{conn: 0, cmds: one("PUNSUBSCRIBE"), read: 1},
		{conn: 0, cmds: one("UNSUBSCRIBE"), read: 1},
		{conn: 0, cmds: one("GET", "k"), read: 1},
		{conn: 0, cmds: one("SSUBSCRIBE", "s"), read: 1},
		{conn: 1, cmds: one("SPUBLISH", "s", "m"), read: 1},
		{conn: 0, read: 1},
		{conn: 0, cmds: one("RESET"), read: 1},
		{conn: 0, cmds: one("PING"), read: 1},
	}
	psDiff(t, steps)
}

// TestPubsubServerDies kills the server of a subscription: its subscriber
// gets an error and is closed, other clients go on.
func TestPubsubServerDies(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	_ = s
	// Channels on each server, found through the proxy's ring: a
	// subscriber of each shows where PUBLISH counts it.
	chOn := psChannelsByServer(t, bs, addr)

	victim := psDial(t, addr)
	psSend(t, victim, "SUBSCRIBE", chOn[0])
	psExpect(t, victim, "*3\r\n$9\r\nsubscribe\r\n$"+strconv.Itoa(len(chOn[0]))+"\r\n"+chOn[0]+"\r\n:1\r\n")
	other := psDial(t, addr)
	psSend(t, other, "SUBSCRIBE", chOn[1])
	psExpect(t, other, "*3\r\n$9\r\nsubscribe\r\n$"+strconv.Itoa(len(chOn[1]))+"\r\n"+chOn[1]+"\r\n:1\r\n")

	bs[0].Stop()

	victim.nc.SetReadDeadline(time.Now().Add(dtTimeout))
	f, err := victim.rd.ReadRawReply()
	require.NoError(t, err)
	require.Contains(t, string(f), "-ERR walnut: the connection to server")
	_, err = victim.rd.ReadRawReply()
	require.ErrorIs(t, err, io.EOF)

	pub := psDial(t, addr)
	psSend(t, pub, "PUBLISH", chOn[1], "still")
	psExpect(t, pub, ":1\r\n")
	psExpect(t, other, "*3\r\n$7\r\nmessage\r\n$"+strconv.Itoa(len(chOn[1]))+"\r\n"+chOn[1]+"\r\n$5\r\nstill\r\n")
	psSend(t, other, "PING")
	psExpect(t, other, "*2\r\n$4\r\npong\r\n$0\r\n\r\n")
	victim.nc.Close()
	other.nc.Close()
	pub.nc.Close()
}

type psClient struct {
	nc net.Conn
	rd *resp.Reader
}

func psDial(t *testing.T, addr string) *psClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, dtTimeout)
	require.NoError(t, err)
	return &psClient{nc: nc, rd: resp.NewReader(nc, dtLimits)}
}

func psSend(t *testing.T, c *psClient, args ...string) {
	t.Helper()
	require.NoError(t, c.nc.SetWriteDeadline(time.Now().Add(dtTimeout)))
	_, err := c.nc.Write(resp.AppendCommandString(nil, args...))
	require.NoError(t, err)
}

func psExpect(t *testing.T, c *psClient, want string) {
	t.Helper()
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
	f, err := c.rd.ReadRawReply()
	require.NoError(t, err)
	require.Equal(t, want, string(f))
}

// psChannelsByServer returns a channel name that lives on each backend,
// found by subscribing directly on each backend and publishing through
// the proxy.
func psChannelsByServer(t *testing.T, bs []backend, addr string) []string {
	t.Helper()
	out := make([]string, len(bs))
	pub := psDial(t, addr)
	defer pub.nc.Close()
	for i, b := range bs {
		sub := psDial(t, b.Addr)
		for j := 0; out[i] == ""; j++ {
			require.Less(t, j, 1000)
			// The varying part first: with fnv1a_64 (the default hash)
			// names that differ only in their last bytes hash close
			// together, and may all fall on one server's arc of the
			// ring.
			ch := strconv.Itoa(j) + ":ch"
			psSend(t, sub, "SUBSCRIBE", ch)
			_, err := sub.rd.ReadRawReply()
			require.NoError(t, err)
			psSend(t, pub, "PUBLISH", ch, "probe")
			require.NoError(t, pub.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
			f, err := pub.rd.ReadRawReply()
			require.NoError(t, err)
			if bytes.Equal(f, []byte(":1\r\n")) {
				out[i] = ch
				_, err := sub.rd.ReadRawReply() // the probe
				require.NoError(t, err)
			}
		}
		sub.nc.Close()
	}
	return out
}

func TestPubsubDifferentialIntrospection(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	steps := []psStep{
		{conn: 0, cmds: one("SUBSCRIBE", "a", "b", "c", "{t}d"), read: 4},
		{conn: 2, cmds: one("SUBSCRIBE", "a"), read: 1},
		{conn: 2, cmds: one("PSUBSCRIBE", "p*", "q*"), read: 2},
		{conn: 3, cmds: one("SSUBSCRIBE", "s1", "s2"), read: 2},
		{conn: 4, cmds: one("PSUBSCRIBE", "p*"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "CHANNELS"), read: 1, sorted: true},
		{conn: 1, cmds: one("PUBSUB", "CHANNELS", "*d"), read: 1, sorted: true},
		{conn: 1, cmds: one("PUBSUB", "CHANNELS", "nothing"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "NUMSUB", "a", "b", "zz", "{t}d"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "NUMSUB"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "NUMPAT"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "SHARDCHANNELS"), read: 1, sorted: true},
		{conn: 1, cmds: one("PUBSUB", "SHARDNUMSUB", "s1", "x", "s2"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "HELP"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "NOPE"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "CHANNELS", "a", "b"), read: 1},
		{conn: 1, cmds: one("PUBSUB", "NUMPAT", "x"), read: 1},
		{conn: 1, cmds: one("PUBSUB"), read: 1},
		{conn: 1, cmds: one("PUBLISH", "a"), read: 1},
		{conn: 1, cmds: one("SPUBLISH", "s1"), read: 1},
		{conn: 5, cmds: one("HELLO", "3"), read: 1, ignore: true},
		{conn: 5, cmds: one("PUBSUB", "NUMSUB", "a", "b"), read: 1},
		{conn: 5, cmds: one("PUBSUB", "NUMPAT"), read: 1},
		{conn: 5, cmds: one("PUBSUB", "CHANNELS"), read: 1, sorted: true},
		{conn: 5, cmds: one("PUBLISH", "a", "x"), read: 1},
		{conn: 0, read: 1},
		{conn: 2, read: 1},
	}
	psDiff(t, steps)
}

// TestPubsubPinnedLimit: each server a client subscribes on holds one of
// the pool's pinned connections; past the limit the command is refused at
// once, and the connections are given back when the client leaves.
func TestPubsubPinnedLimit(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 3)
	s, addr := startProxy(t, protocol.Redis, bs, func(cfg *proxy.Config) { cfg.MaxPinned = 2 })
	chOn := psChannelsByServer(t, bs, addr)

	c := psDial(t, addr)
	// A pattern needs every server: 3 connections, over the limit.
	psSend(t, c, "PSUBSCRIBE", "p*")
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
	f, err := c.rd.ReadRawReply()
	require.NoError(t, err)
	require.Contains(t, string(f), "-ERR max pinned connections reached (2, max_pinned_connections)")
	// Not subscribed: ordinary commands work.
	psSend(t, c, "SET", "k", "v")
	psExpect(t, c, "+OK\r\n")
	require.Zero(t, s.Stats().PinnedConnections)

	psSend(t, c, "SUBSCRIBE", chOn[0], chOn[1])
	psExpect(t, c, psFrame("subscribe", chOn[0], 1))
	psExpect(t, c, psFrame("subscribe", chOn[1], 2))
	require.EqualValues(t, 2, s.Stats().PinnedConnections)
	other := psDial(t, addr)
	psSend(t, other, "SUBSCRIBE", chOn[2])
	require.NoError(t, other.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
	f, err = other.rd.ReadRawReply()
	require.NoError(t, err)
	require.Contains(t, string(f), "-ERR max pinned connections reached")
	psSend(t, other, "PING")
	psExpect(t, other, "+PONG\r\n")

	psSend(t, c, "UNSUBSCRIBE")
	for range 2 {
		_, err := c.rd.ReadRawReply()
		require.NoError(t, err)
	}
	// Given back before the last confirmation is written.
	require.Zero(t, s.Stats().PinnedConnections)
	psSend(t, other, "SUBSCRIBE", chOn[2])
	psExpect(t, other, psFrame("subscribe", chOn[2], 1))
	require.EqualValues(t, 1, s.Stats().PinnedConnections)

	// A subscriber that closes its connection gives its connections back.
	other.nc.Close()
	require.Eventually(t, func() bool { return s.Stats().PinnedConnections == 0 }, 5*time.Second, 10*time.Millisecond)
	psWaitSubscribers(t, bs)
	c.nc.Close()
}

// TestPubsubShutdown: a subscribed client does not hold up Shutdown, and
// its dedicated connections are closed.
func TestPubsubShutdown(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 2)
	s, addr := startProxy(t, protocol.Redis, bs, nil)
	c := psDial(t, addr)
	defer c.nc.Close()
	psSend(t, c, "PSUBSCRIBE", "*")
	psExpect(t, c, psFrame("psubscribe", "*", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, s.Shutdown(ctx))
	require.Less(t, time.Since(start), 2*time.Second)
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
	_, err := io.ReadAll(c.nc)
	require.NoError(t, err)
	psWaitSubscribers(t, bs)
}

// TestPubsubHelloRefused: HELLO on a subscribed RESP3 connection is
// refused (it would switch the client's protocol under its
// subscriptions); the subscription goes on.
func TestPubsubHelloRefused(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 2)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	c := psDial(t, addr)
	defer c.nc.Close()
	psSend(t, c, "HELLO", "3")
	_, err := c.rd.ReadRawReply()
	require.NoError(t, err)
	psSend(t, c, "SUBSCRIBE", "a")
	psExpect(t, c, ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
	for _, cmd := range [][]string{{"HELLO", "2"}, {"MULTI"}, {"BLPOP", "x", "0"}} {
		psSend(t, c, cmd...)
		require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
		f, err := c.rd.ReadRawReply()
		require.NoError(t, err)
		require.Contains(t, string(f), "-ERR Can't execute '"+strings.ToLower(cmd[0])+"' on a subscribed connection through walnut")
	}
	pub := psDial(t, addr)
	defer pub.nc.Close()
	psSend(t, pub, "PUBLISH", "a", "m")
	psExpect(t, pub, ":1\r\n")
	psExpect(t, c, ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n")
}

// psFrame returns a RESP2 confirmation frame.
func psFrame(kind, name string, count int) string {
	return string(resp.AppendInt(resp.AppendBulkString(resp.AppendBulkString(resp.AppendArrayHeader(nil, 3), kind), name), int64(count)))
}

// TestPubsubConfirmationOrder: while messages are published all the time,
// a pattern subscriber (subscribed on every server) never gets a message
// before the confirmation of its PSUBSCRIBE, nor after the confirmation
// of its PUNSUBSCRIBE, as with one redis-server.
func TestPubsubConfirmationOrder(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 3)
	_, addr := startProxy(t, protocol.Redis, bs, nil)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		pub, err := net.DialTimeout("tcp", addr, dtTimeout)
		if err != nil {
			done <- err
			return
		}
		defer pub.Close()
		rd := resp.NewReader(pub, dtLimits)
		var batch []byte
		for i := range 20 {
			batch = resp.AppendCommandString(batch, "PUBLISH", "p"+strconv.Itoa(i), "m")
		}
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			_ = pub.SetDeadline(time.Now().Add(dtTimeout))
			if _, err := pub.Write(batch); err != nil {
				done <- err
				return
			}
			for range 20 {
				if _, err := rd.ReadRawReply(); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	c := psDial(t, addr)
	defer c.nc.Close()
	messages := 0
	for round := range 40 {
		psSend(t, c, "PSUBSCRIBE", "p*")
		psExpect(t, c, psFrame("psubscribe", "p*", 1))
		psSend(t, c, "PUNSUBSCRIBE", "p*")
		for {
			require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
			f, err := c.rd.ReadRawReply()
			require.NoError(t, err, "round %d", round)
			if string(f) == psFrame("punsubscribe", "p*", 0) {
				break
			}
			require.True(t, strings.HasPrefix(string(f), "*4\r\n$8\r\npmessage\r\n"), "round %d: %q", round, f)
			messages++
		}
	}
	close(stop)
	require.NoError(t, <-done)
	t.Logf("%d messages between the confirmations", messages)
}

// TestPubsubClientTimeout: client_timeout does not close a subscriber
// waiting for messages (redis-server does not time out Pub/Sub clients),
// and applies again once it leaves subscribed mode.
func TestPubsubClientTimeout(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 2)
	_, addr := startProxy(t, protocol.Redis, bs, func(cfg *proxy.Config) { cfg.ClientTimeout = 150 * time.Millisecond })
	c := psDial(t, addr)
	defer c.nc.Close()
	psSend(t, c, "SUBSCRIBE", "a")
	psExpect(t, c, psFrame("subscribe", "a", 1))
	time.Sleep(500 * time.Millisecond)
	pub := psDial(t, addr)
	defer pub.nc.Close()
	psSend(t, pub, "PUBLISH", "a", "late")
	psExpect(t, pub, ":1\r\n")
	psExpect(t, c, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\nlate\r\n")
	psSend(t, c, "UNSUBSCRIBE")
	psExpect(t, c, psFrame("unsubscribe", "a", 0))
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
	_, err := c.rd.ReadRawReply()
	require.ErrorIs(t, err, io.EOF, "closed by client_timeout once out of subscribed mode")
}

// TestPubsubReloadDropsServer: a Reload that drops the server of a
// subscription closes its subscriber with an error; a subscriber on a
// server that stays goes on.
func TestPubsubReloadDropsServer(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	bs := startBackends(t, protocol.Redis, 2)
	var cfg proxy.Config
	s, addr := startProxy(t, protocol.Redis, bs, func(c *proxy.Config) { cfg = *c })
	chOn := psChannelsByServer(t, bs, addr)
	gone := psDial(t, addr)
	defer gone.nc.Close()
	psSend(t, gone, "SUBSCRIBE", chOn[1])
	psExpect(t, gone, psFrame("subscribe", chOn[1], 1))
	stays := psDial(t, addr)
	defer stays.nc.Close()
	psSend(t, stays, "SUBSCRIBE", chOn[0])
	psExpect(t, stays, psFrame("subscribe", chOn[0], 1))

	cfg.Servers = cfg.Servers[:1]
	require.NoError(t, s.Reload(cfg))

	require.NoError(t, gone.nc.SetReadDeadline(time.Now().Add(dtTimeout)))
	f, err := gone.rd.ReadRawReply()
	require.NoError(t, err)
	require.Contains(t, string(f), "-ERR walnut: the connection to server")
	_, err = gone.rd.ReadRawReply()
	require.ErrorIs(t, err, io.EOF)

	pub := psDial(t, addr)
	defer pub.nc.Close()
	psSend(t, pub, "PUBLISH", chOn[0], "m")
	psExpect(t, pub, ":1\r\n")
	psExpect(t, stays, "*3\r\n$7\r\nmessage\r\n$"+strconv.Itoa(len(chOn[0]))+"\r\n"+chOn[0]+"\r\n$1\r\nm\r\n")
}

// TestPubsubDifferentialFramingError: a subscribed client's malformed
// request is answered with redis-server's protocol error, after the
// replies before it, and the connection is closed.
func TestPubsubDifferentialFramingError(t *testing.T) {
	t.Cleanup(func() { verifyNoLeaks(t) })
	run := func(addr string) string {
		c, err := net.DialTimeout("tcp", addr, dtTimeout)
		require.NoError(t, err)
		defer c.Close()
		req := resp.AppendCommandString(nil, "SUBSCRIBE", "a", "b")
		req = resp.AppendCommandString(req, "PING")
		req = append(req, "*1\r\n$x\r\n"...)
		_, err = c.Write(req)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(dtTimeout)))
		b, err := io.ReadAll(c)
		require.NoError(t, err)
		return string(b)
	}
	direct := testserver.StartRedis(t, testserver.RedisOptions{})
	want := run(direct.Addr)
	require.Contains(t, want, "-ERR Protocol error")
	for _, n := range []int{1, 3} {
		bs := startBackends(t, protocol.Redis, n)
		_, addr := startProxy(t, protocol.Redis, bs, nil)
		require.Equal(t, want, run(addr), "%d servers", n)
		psWaitSubscribers(t, bs)
	}
}

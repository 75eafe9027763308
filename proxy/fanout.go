package proxy

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/walnutproxy/walnut/protocol/resp"
	"github.com/walnutproxy/walnut/shard"
)

// This file is the Redis fan-out: commands that concern every key or every
// server (classFanout in policy.go) are sent to several servers and their
// replies merged into the one reply a single redis-server holding every key
// would give. The merge rules:
//
//   - FLUSHALL and FLUSHDB [ASYNC|SYNC]: every server; +OK when every
//     server answers +OK.
//   - DBSIZE: the servers of the ring; the counts added.
//   - KEYS pattern: the servers of the ring; the union of their keys (a
//     key found on two servers, such as a stale copy left by a reload
//     that moved it, is listed once).
//   - SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: one server at a
//     time, in ring order (see the cursor encoding at scanShift); the
//     options go to the server as they are, COUNT applying to one server.
//     A full iteration returns every key present throughout on a live
//     server exactly once, if the ring does not change meanwhile.
//   - RANDOMKEY: the servers of the ring are asked for a random key and
//     for their DBSIZE; one of the keys found is chosen with a probability
//     proportional to its server's key count, so that every key is about
//     as likely as on one server. A nil reply when every server is empty.
//   - INFO: a bulk reply of walnut's making, with the sections asked for
//     (none, "default", "all" and "everything" ask for all three): "server"
//     is the Server section of the first server of the ring, as it is (it
//     says which redis version serves the data); "keyspace" adds up, per
//     database, the keys and expires of every server of the ring, and
//     averages avg_ttl weighted by expires; "walnut" describes the pool.
//     Other sections are left out, as redis-server leaves out a section it
//     does not know: they describe one server. INFO <server-name>
//     [section ...] (the name as in the stats, when it is not a section
//     name) forwards INFO [section ...] to that server and returns its
//     reply as it is.
//   - SCRIPT LOAD: every server; the SHA1 digest, which every server must
//     give alike. SCRIPT FLUSH [ASYNC|SYNC]: every server; +OK when all say
//     +OK. SCRIPT EXISTS sha ...: the servers of the ring; 1 for a script
//     that every one of them has. SCRIPT HELP and unknown subcommands: one
//     server (that of the key "placeholder"). SCRIPT KILL and SCRIPT DEBUG
//     are refused.
//   - FUNCTION LOAD: every server; the library name, which every server
//     must give alike. FUNCTION FLUSH, DELETE and RESTORE: every server;
//     +OK when all say +OK. FUNCTION LIST, DUMP, HELP and unknown
//     subcommands: one server (that of "placeholder"); libraries loaded
//     through the proxy are alike on every server. FUNCTION KILL and STATS
//     are refused.
//
// Which servers: a command that changes the servers (FLUSHALL, FLUSHDB,
// SCRIPT LOAD and FLUSH, FUNCTION LOAD, FLUSH, DELETE and RESTORE) goes to
// every configured server, ejected or not. An ejected server fails its part
// at once, so the client gets an error naming the server rather than a
// silent partial flush; the others have run the command. A command that
// reads goes to the servers of the ring: with auto_eject_hosts, an ejected
// server is skipped, as its keys are out of the proxy's reach until it
// returns (the ring sends them elsewhere), and the walnut section of INFO
// names it. When every server is ejected the full ring stays (as for
// single-key commands), so reads go to every server and fail.
//
// Failures: a part that fails (connection refused, timed out, ejected, …)
// fails the request with "-ERR <reason> (server <name>)", and for a
// command sent to every server the words "the command was sent to every
// server". Otherwise an error reply from any server is the reply, as it is
// (the first in ring order): every server gets the same command, so a
// syntax or arity error is the same everywhere. Each part counts as a
// fragment in the stats.

// A fanOp says how a classFanout command reaches the servers.
type fanOp uint8

const (
	fanNone      fanOp = iota
	fanEvery           // FLUSHALL, FLUSHDB: every server, +OK when all say +OK
	fanDBSize          // DBSIZE: servers of the ring, counts added
	fanKeys            // KEYS: servers of the ring, keys united
	fanScan            // SCAN: the cursor's server
	fanRandomKey       // RANDOMKEY: servers of the ring, one key chosen
	fanInfo            // INFO: sections merged or made by walnut
	fanScript          // SCRIPT: by subcommand
	fanFunction        // FUNCTION: by subcommand
	fanPubsub          // PUBSUB: by subcommand (pubsub.go)
)

// A fanMerge says how the replies of a fan-out slot (slotFan) merge.
type fanMerge uint8

const (
	mergeNone   fanMerge = iota
	mergeOK              // every server: +OK when all say +OK
	mergeSame            // every server: the reply all give alike
	mergeSum             // integers added
	mergeUnion           // arrays of keys united
	mergeAnd             // arrays of 0/1 integers, 1 where all say 1
	mergeScan            // one SCAN reply, cursor encoded; key0: server, nkeys: next server or -1
	mergeRandom          // RANDOMKEY replies, then as many DBSIZE replies
	mergeInfo            // INFO parts; key0: infoWant bits, nkeys: 1 if the first call is the Server section
	mergeMax             // integers: the largest (PUBSUB NUMPAT, pubsub.go)
	mergeNumSub          // PUBSUB NUMSUB and SHARDNUMSUB: counts added channel by channel (pubsub.go)
)

// everyServer reports whether the merge's command went to every server
// (a write), not only those of the ring.
func (m fanMerge) everyServer() bool { return m == mergeOK || m == mergeSame }

// Commands the proxy sends on its own.
var (
	cmdDBSize       = resp.AppendCommandString(nil, "DBSIZE")
	cmdRandomKey    = resp.AppendCommandString(nil, "RANDOMKEY")
	cmdInfoServer   = resp.AppendCommandString(nil, "INFO", "server")
	cmdInfoKeyspace = resp.AppendCommandString(nil, "INFO", "keyspace")
)

// callEach queues one call per server of the batch's generation, each
// sending data (the same bytes for all, not copied: they must last until
// the batch ends), and returns the index of the first call and the number
// of calls. With a ring (the batch's, c.ring()), servers out of it
// (ejected) are left out; with nil, every server gets a call. It is the
// one way a fan-out reaches every server; calls are made in ring order.
// tag is the request's pool.Request.Tag (memcached's command, for the
// reply framer; 0 for Redis).
func (c *session) callEach(r *shard.Ring, data []byte, tag uint8) (first, n int32) {
	first = int32(c.ncalls)
	for i := range c.g.backends {
		if r != nil && !r.Live(i) {
			continue
		}
		cl, _ := c.newCall(i)
		cl.req.Data = data
		cl.req.Tag = tag
	}
	n = int32(c.ncalls) - first
	if n > 1 {
		c.s.stats.fragments.Add(int64(n))
	}
	for _, cl := range c.calls[first:c.ncalls] {
		c.send(cl)
	}
	return first, n
}

// fanOut sends cmd to every server (or the ring's, with ringOnly) and adds
// the slot that merges the replies with m.
func (c *session) fanOut(cmd *resp.Command, ringOnly bool, m fanMerge) {
	data := cmd.Raw
	if cmd.Inline {
		data = resp.AppendCommand(nil, cmd.Args...)
	}
	var r *shard.Ring
	if ringOnly {
		r = c.ring()
	}
	first, n := c.callEach(r, data, 0)
	c.slots = append(c.slots, slot{kind: slotFan, fan: m, call: first, ncall: n})
}

// sendTo sends the request the call's buffer holds, its reply passed
// through.
func (c *session) sendTo(cl *call, idx int32) {
	cl.req.Data = cl.buf
	c.slots = append(c.slots, slot{kind: slotSingle, call: idx, ncall: 1})
	c.send(cl)
}

// redisFanout dispatches a classFanout command.
func (c *session) redisFanout(cmd *resp.Command, ci *resp.CommandInfo, op fanOp) {
	switch op {
	case fanEvery:
		c.fanOut(cmd, false, mergeOK)
	case fanDBSize:
		c.fanOut(cmd, true, mergeSum)
	case fanKeys:
		c.fanOut(cmd, true, mergeUnion)
	case fanScan:
		c.scan(cmd.Args)
	case fanRandomKey:
		r := c.ring() // the same servers for both
		first, n := c.callEach(r, cmdRandomKey, 0)
		_, n2 := c.callEach(r, cmdDBSize, 0)
		c.slots = append(c.slots, slot{kind: slotFan, fan: mergeRandom, call: first, ncall: n + n2})
	case fanInfo:
		c.info(cmd.Args)
	case fanScript, fanFunction:
		c.scriptOrFunction(cmd, ci, op)
	case fanPubsub:
		c.pubsubIntrospect(cmd)
	default:
		c.addError("ERR '" + ci.Name + "' is not handled by walnut")
	}
}

// A subcommand of SCRIPT or FUNCTION (which resp's table describes as a
// whole) and where it goes.
type scriptSub struct {
	name  string // lower case
	full  string // "script|load": the name redis_refuse_commands uses
	merge fanMerge
	// ringOnly: to the servers of the ring rather than every server.
	ringOnly bool
	// refusal: the subcommand is refused with this reason; merge and
	// ringOnly are unused.
	refusal string
}

// scriptSubs and functionSubs list the subcommands that fan out or are
// refused; any other (HELP, LIST, DUMP, unknown ones) goes to one server.
var (
	scriptSubs = []scriptSub{
		{name: "load", merge: mergeSame},
		{name: "flush", merge: mergeOK},
		{name: "exists", merge: mergeAnd, ringOnly: true},
		{name: "kill", refusal: refuseScriptKill},
		{name: "debug", refusal: refuseScriptDebug},
		{name: "help"},
	}
	functionSubs = []scriptSub{
		{name: "load", merge: mergeSame},
		{name: "flush", merge: mergeOK},
		{name: "delete", merge: mergeOK},
		{name: "restore", merge: mergeOK},
		{name: "kill", refusal: refuseScriptKill},
		{name: "stats", refusal: refuseServerAdmin},
		{name: "list"},
		{name: "dump"},
		{name: "help"},
	}
)

func init() {
	for _, set := range []struct {
		cmd  string
		subs []scriptSub
	}{{"script", scriptSubs}, {"function", functionSubs}} {
		for i := range set.subs {
			s := &set.subs[i]
			s.full = set.cmd + "|" + s.name
			if s.refusal != "" {
				s.refusal = "ERR " + strings.ToUpper(set.cmd+" "+s.name) + " is not supported through a sharding proxy: " + s.refusal
			}
		}
	}
}

// lookupScriptSub returns the subcommand sub of SCRIPT (or FUNCTION, with
// function set) from the table, or nil.
func lookupScriptSub(function bool, sub []byte) *scriptSub {
	subs := scriptSubs
	if function {
		subs = functionSubs
	}
	for i := range subs {
		if equalFold(sub, subs[i].name) {
			return &subs[i]
		}
	}
	return nil
}

func (c *session) scriptOrFunction(cmd *resp.Command, ci *resp.CommandInfo, op fanOp) {
	sub := lookupScriptSub(op == fanFunction, cmd.Args[1])
	if sub != nil && c.g.refuse != nil {
		if msg, ok := c.g.refuse[sub.full]; ok {
			c.addError(msg)
			return
		}
	}
	switch {
	case sub != nil && sub.refusal != "":
		c.addError(sub.refusal)
	case sub == nil || sub.merge == mergeNone:
		// HELP, LIST, DUMP, or a subcommand redis-server will explain.
		c.forward(cmd, c.ring().Pick(placeholderKey))
	default:
		c.fanOut(cmd, sub.ringOnly, sub.merge)
	}
}

// SCAN cursors. walnut's cursor holds the index of a server (in ring order,
// as in the stats) in its bits 48 to 62 and that server's own cursor in
// bits 0 to 47: cursor = server<<48 | serverCursor, written in decimal as
// redis-server writes cursors. Cursor 0 is server 0's first call. When a
// server's iteration ends (its cursor 0), the next cursor names the next
// server of the ring, with its cursor 0; after the last server it is 0,
// which ends the iteration. A redis-server's cursor indexes its hash table
// buckets, far below 2^48, and the encoded cursor stays below 2^63 for
// clients that read cursors as signed 64-bit numbers. A cursor that
// redis-server would refuse (not a number below 2^64), or that names a
// server the pool does not have, gets redis-server's "-ERR invalid
// cursor"; so does a negative one, which redis-server takes as a number
// near 2^64. A cursor that names a server out of the ring (ejected)
// continues with the next server of the ring.
const (
	scanShift      = 48
	scanMaxServers = 1 << 15
	scanServerMask = 1<<scanShift - 1
)

const replyInvalidCursor = "ERR invalid cursor"

// parseCursor parses a SCAN cursor as redis-server does (strtoul in base
// 10, the whole argument, no leading space): an optional sign, then
// decimal digits, below 2^64; a negative number wraps around, and ""
// is 0.
func parseCursor(b []byte) (uint64, bool) {
	neg := false
	digits := b
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		digits = b[1:]
		if len(digits) == 0 {
			return 0, false // strtoul reads no number: "+" is left over
		}
	}
	var n uint64
	for _, x := range digits {
		if x < '0' || x > '9' {
			return 0, false
		}
		d := uint64(x - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

// decodeCursor splits a walnut SCAN cursor into a server index, which must
// be below nservers, and that server's cursor.
func decodeCursor(b []byte, nservers int) (srv int, cur uint64, ok bool) {
	n, ok := parseCursor(b)
	if !ok || n>>scanShift >= uint64(min(nservers, scanMaxServers)) {
		return 0, 0, false
	}
	return int(n >> scanShift), n & scanServerMask, true
}

// encodeCursor is decodeCursor's inverse.
func encodeCursor(srv int, cur uint64) uint64 { return uint64(srv)<<scanShift | cur }

// nextInRing returns the first server from i on that the ring routes to,
// or -1.
func (c *session) nextInRing(i int) int {
	r := c.ring()
	for ; i < len(c.g.backends); i++ {
		if r.Live(i) {
			return i
		}
	}
	return -1
}

// scanDone is the reply to a cursor whose servers are all out of the ring.
var scanDone = []byte("*2\r\n$1\r\n0\r\n*0\r\n")

func (c *session) scan(args [][]byte) {
	srv, cur, ok := decodeCursor(args[1], len(c.g.backends))
	if !ok {
		c.addError(replyInvalidCursor)
		return
	}
	if next := c.nextInRing(srv); next != srv {
		if next < 0 {
			c.addLocal(scanDone)
			return
		}
		srv, cur = next, 0
	}
	cl, idx := c.newCall(srv)
	cl.buf = resp.AppendArrayHeader(cl.buf, len(args))
	cl.buf = resp.AppendBulkString(cl.buf, "SCAN")
	cl.buf = resp.AppendBulk(cl.buf, strconv.AppendUint(nil, cur, 10))
	for _, a := range args[2:] {
		cl.buf = resp.AppendBulk(cl.buf, a)
	}
	cl.req.Data = cl.buf
	c.slots = append(c.slots, slot{kind: slotFan, fan: mergeScan, call: idx, ncall: 1,
		key0: int32(srv), nkeys: int32(c.nextInRing(srv + 1))})
	c.send(cl)
}

// The sections of INFO walnut answers (bits of slot.key0).
const (
	infoServer = 1 << iota
	infoKeyspace
	infoWalnut
	infoAll = infoServer | infoKeyspace | infoWalnut
)

// infoSections are redis-server's INFO section names (and walnut's), which
// an INFO argument names before it names a server.
var infoSections = []string{
	"server", "clients", "memory", "persistence", "stats", "replication", "cpu",
	"modules", "errorstats", "cluster", "keyspace", "commandstats", "latencystats",
	"default", "all", "everything", "walnut",
}

func (c *session) info(args [][]byte) {
	if len(args) >= 2 && !slices.ContainsFunc(infoSections, func(s string) bool { return equalFold(args[1], s) }) {
		for i, b := range c.g.backends {
			if b.name == string(args[1]) {
				cl, idx := c.newCall(i)
				cl.buf = resp.AppendArrayHeader(cl.buf, len(args)-1)
				cl.buf = resp.AppendBulkString(cl.buf, "INFO")
				for _, a := range args[2:] {
					cl.buf = resp.AppendBulk(cl.buf, a)
				}
				c.sendTo(cl, idx)
				return
			}
		}
	}
	want := 0
	if len(args) == 1 {
		want = infoAll
	}
	for _, a := range args[1:] {
		switch {
		case equalFold(a, "default"), equalFold(a, "all"), equalFold(a, "everything"):
			want |= infoAll
		case equalFold(a, "server"):
			want |= infoServer
		case equalFold(a, "keyspace"):
			want |= infoKeyspace
		case equalFold(a, "walnut"):
			want |= infoWalnut
		}
	}
	first := int32(c.ncalls)
	var fromServer int32
	if want&infoServer != 0 {
		cl, _ := c.newCall(c.nextInRing(0))
		cl.req.Data = cmdInfoServer
		c.send(cl)
		fromServer = 1
	}
	n := fromServer
	if want&infoKeyspace != 0 {
		_, nk := c.callEach(c.ring(), cmdInfoKeyspace, 0)
		n += nk
	}
	c.slots = append(c.slots, slot{kind: slotFan, fan: mergeInfo, call: first, ncall: n,
		key0: int32(want), nkeys: fromServer})
}

// appendFanReply appends the merged reply of a slotFan slot.
func (c *session) appendFanReply(out []byte, sl *slot) []byte {
	calls := c.calls[sl.call : sl.call+sl.ncall]
	for _, cl := range calls {
		if cl.err != nil {
			c.s.stats.forwardError.Add(1)
			msg := "ERR " + wireText(cl.err) + " (server " + c.g.backends[cl.server].name
			if sl.fan.everyServer() {
				msg += "; the command was sent to every server"
			}
			return resp.AppendError(out, msg+")")
		}
	}
	for _, cl := range calls {
		if len(cl.reply) > 0 && cl.reply[0] == resp.TypeError {
			return append(out, cl.reply...)
		}
	}
	var ok bool
	mark := len(out)
	switch sl.fan {
	case mergeOK:
		ok = true
		for _, cl := range calls {
			ok = ok && len(cl.reply) > 0 && cl.reply[0] == resp.TypeSimple
		}
		out = append(out, "+OK\r\n"...)
	case mergeSame:
		ok = true
		for _, cl := range calls[1:] {
			ok = ok && string(cl.reply) == string(calls[0].reply)
		}
		out = append(out, calls[0].reply...)
	case mergeSum:
		var sum int64
		ok = true
		for _, cl := range calls {
			n, hdr := parseHeader(cl.reply, resp.TypeInt)
			ok = ok && hdr == len(cl.reply)
			sum += n
		}
		out = resp.AppendInt(out, sum)
	case mergeUnion:
		out, ok = c.appendUnion(out, calls)
	case mergeAnd:
		out, ok = appendAnd(out, calls)
	case mergeScan:
		out, ok = appendScan(out, calls[0].reply, int(sl.key0), int(sl.nkeys))
	case mergeRandom:
		out, ok = appendRandom(out, calls, c.appendNull)
	case mergeInfo:
		out, ok = c.appendInfo(out, calls, int(sl.key0), sl.nkeys == 1)
	case mergeMax:
		out, ok = appendMax(out, calls)
	case mergeNumSub:
		out, ok = appendNumSub(out, calls)
	}
	if !ok {
		return c.invalidReply(out[:mark])
	}
	return out
}

// parseBulk parses the bulk string at the start of b: its contents (nil
// for a nil bulk) and the length of the whole reply, or n 0 if b does not
// start with a complete bulk string. RESP3's forms from a RESP3 backend
// connection are taken too: the null "_" as a nil bulk, and a verbatim
// string as its text without the format prefix ("txt:").
func parseBulk(b []byte) (s []byte, n int) {
	if len(b) >= 3 && b[0] == '_' && b[1] == '\r' && b[2] == '\n' {
		return nil, 3
	}
	typ := byte(resp.TypeBulk)
	if len(b) > 0 && b[0] == '=' {
		typ = '='
	}
	l, hdr := parseHeader(b, typ)
	switch {
	case hdr <= 0 || l < -1:
		return nil, 0
	case l == -1:
		return nil, hdr
	case int64(len(b)-hdr) < l+2 || b[hdr+int(l)] != '\r' || b[hdr+int(l)+1] != '\n':
		return nil, 0
	}
	s = b[hdr : hdr+int(l)]
	if typ == '=' {
		if len(s) < 4 || s[3] != ':' {
			return nil, 0
		}
		s = s[4:]
	}
	return s, hdr + int(l) + 2
}

// appendText appends s as the client's protocol has a text reply: a
// verbatim string in RESP3 (as redis-server answers INFO), a bulk string
// in RESP2.
func (c *session) appendText(out, s []byte) []byte {
	if !c.resp3 {
		return resp.AppendBulk(out, s)
	}
	out = append(out, '=')
	out = strconv.AppendInt(out, int64(len(s)+4), 10)
	out = append(out, "\r\ntxt:"...)
	out = append(out, s...)
	return append(out, '\r', '\n')
}

// bulks parses an array of bulk strings (its header at the start of b,
// its elements after it) and calls f with each; it reports whether the
// array was complete and well formed.
func bulks(b []byte, f func(s []byte)) bool {
	n, hdr := parseHeader(b, resp.TypeArray)
	if hdr <= 0 || n < 0 {
		return false
	}
	b = b[hdr:]
	for range n {
		s, m := parseBulk(b)
		if m == 0 || s == nil {
			return false
		}
		f(s)
		b = b[m:]
	}
	return len(b) == 0
}

// appendUnion appends the union of the arrays of keys of calls.
func (c *session) appendUnion(out []byte, calls []*call) ([]byte, bool) {
	var keys [][]byte
	var seen map[string]struct{}
	if len(calls) > 1 {
		seen = make(map[string]struct{})
	}
	for _, cl := range calls {
		ok := bulks(cl.reply, func(k []byte) {
			if seen != nil {
				if _, dup := seen[string(k)]; dup {
					return
				}
				seen[string(k)] = struct{}{}
			}
			keys = append(keys, k)
		})
		if !ok {
			return out, false
		}
	}
	out = resp.AppendArrayHeader(out, len(keys))
	for _, k := range keys {
		out = resp.AppendBulk(out, k)
	}
	return out, true
}

// appendAnd appends the array whose element i is 1 when element i of
// every call's array of 0/1 integers is 1 (SCRIPT EXISTS).
func appendAnd(out []byte, calls []*call) ([]byte, bool) {
	n0, hdr0 := parseHeader(calls[0].reply, resp.TypeArray)
	if hdr0 <= 0 || n0 < 0 {
		return out, false
	}
	for _, cl := range calls {
		n, hdr := parseHeader(cl.reply, resp.TypeArray)
		if hdr <= 0 || n != n0 {
			return out, false
		}
		cl.cur = hdr
	}
	out = resp.AppendArrayHeader(out, int(n0))
	for range n0 {
		all := int64(1)
		for _, cl := range calls {
			v, hdr := parseHeader(cl.reply[cl.cur:], resp.TypeInt)
			if hdr <= 0 || v < 0 || v > 1 {
				return out, false
			}
			cl.cur += hdr
			all &= v
		}
		out = resp.AppendInt(out, all)
	}
	for _, cl := range calls {
		if cl.cur != len(cl.reply) {
			return out, false
		}
	}
	return out, true
}

// appendScan appends a SCAN reply of server srv with its cursor encoded;
// next is the server after srv in the ring, or -1.
func appendScan(out, reply []byte, srv, next int) ([]byte, bool) {
	n, hdr := parseHeader(reply, resp.TypeArray)
	if hdr <= 0 || n != 2 {
		return out, false
	}
	s, m := parseBulk(reply[hdr:])
	if m == 0 || s == nil {
		return out, false
	}
	cur, ok := parseCursor(s)
	if !ok || cur > scanServerMask {
		return out, false // a cursor walnut cannot encode
	}
	rest := reply[hdr+m:]
	if _, h := parseHeader(rest, resp.TypeArray); h <= 0 {
		return out, false
	}
	switch {
	case cur != 0:
		cur = encodeCursor(srv, cur)
	case next >= 0:
		cur = encodeCursor(next, 0)
	}
	out = resp.AppendArrayHeader(out, 2)
	out = resp.AppendBulk(out, strconv.AppendUint(nil, cur, 10))
	return append(out, rest...), true
}

// appendRandom appends one of the keys of the RANDOMKEY replies (the first
// half of calls), chosen with the weight of its server's DBSIZE (the
// second half).
func appendRandom(out []byte, calls []*call, appendNull func([]byte) []byte) ([]byte, bool) {
	half := len(calls) / 2
	var total int64
	weights := make([]int64, half)
	keys := make([][]byte, half)
	found := 0
	if len(calls) != 2*half {
		return out, false
	}
	for i := range half {
		if calls[i].server != calls[half+i].server {
			return out, false
		}
		k, m := parseBulk(calls[i].reply)
		size, hdr := parseHeader(calls[half+i].reply, resp.TypeInt)
		if m != len(calls[i].reply) || m == 0 || hdr != len(calls[half+i].reply) || hdr == 0 {
			return out, false
		}
		if k == nil {
			continue
		}
		keys[i] = k
		weights[i] = max(size, 1) // a key was found: at least one
		total += weights[i]
		found++
	}
	if found == 0 {
		return appendNull(out), true
	}
	x := rand.Int64N(total)
	for i, w := range weights {
		if x < w {
			return resp.AppendBulk(out, keys[i]), true
		}
		x -= w
	}
	return out, false
}

// appendInfo appends walnut's INFO reply: the Server section of the first
// call when fromServer, the Keyspace section of the other calls added up,
// and the Walnut section, as want asks.
func (c *session) appendInfo(out []byte, calls []*call, want int, fromServer bool) ([]byte, bool) {
	var body []byte
	from := "" // the server the Server section comes from
	if fromServer {
		from = c.g.backends[calls[0].server].name
		s, m := parseBulk(calls[0].reply)
		if m != len(calls[0].reply) || s == nil {
			return out, false
		}
		body = append(body, s...)
		calls = calls[1:]
	}
	if want&infoKeyspace != 0 {
		if len(body) > 0 {
			body = append(body, "\r\n"...)
		}
		var ok bool
		if body, ok = appendKeyspace(body, calls); !ok {
			return out, false
		}
	}
	if want&infoWalnut != 0 {
		if len(body) > 0 {
			body = append(body, "\r\n"...)
		}
		body = c.appendWalnutInfo(body, from)
	}
	return c.appendText(out, body), true
}

// appendWalnutInfo appends the Walnut section of INFO; from names the
// server the Server section came from, if any.
func (c *session) appendWalnutInfo(b []byte, from string) []byte {
	r := c.ring()
	var ejected []string
	for i, be := range c.g.backends {
		if !r.Live(i) {
			ejected = append(ejected, be.name)
		}
	}
	b = append(b, "# Walnut\r\n"...)
	b = append(b, "walnut_pool:"...)
	b = append(b, c.g.cfg.Name...)
	b = append(b, "\r\nwalnut_servers:"...)
	b = strconv.AppendInt(b, int64(len(c.g.backends)), 10)
	b = append(b, "\r\nwalnut_servers_in_ring:"...)
	b = strconv.AppendInt(b, int64(len(c.g.backends)-len(ejected)), 10)
	b = append(b, "\r\nwalnut_servers_ejected:"...)
	b = append(b, strings.Join(ejected, ",")...)
	if from != "" {
		b = append(b, "\r\nwalnut_server_section_from:"...)
		b = append(b, from...)
	}
	return append(b, "\r\n"...)
}

// A keyspaceDB is one database's line of the Keyspace section, added up
// over the servers: its fields in the order first seen.
type keyspaceDB struct {
	db     int
	names  []string
	values []int64
	ttlSum float64 // avg_ttl × expires, summed
}

// appendKeyspace appends the Keyspace section of the INFO keyspace
// replies of calls, added up per database: avg_ttl is the average of the
// servers' avg_ttl weighted by their expires, every other field the sum.
func appendKeyspace(b []byte, calls []*call) ([]byte, bool) {
	var dbs []*keyspaceDB
	for _, cl := range calls {
		s, m := parseBulk(cl.reply)
		if m != len(cl.reply) || s == nil {
			return b, false
		}
		for line := range strings.SplitSeq(string(s), "\r\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			if !addKeyspaceLine(&dbs, line) {
				return b, false
			}
		}
	}
	slices.SortFunc(dbs, func(x, y *keyspaceDB) int { return x.db - y.db })
	b = append(b, "# Keyspace\r\n"...)
	for _, d := range dbs {
		b = append(b, "db"...)
		b = strconv.AppendInt(b, int64(d.db), 10)
		b = append(b, ':')
		expires := int64(0)
		for i, name := range d.names {
			if name == "expires" {
				expires = d.values[i]
			}
		}
		for i, name := range d.names {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, name...)
			b = append(b, '=')
			v := d.values[i]
			if name == "avg_ttl" {
				v = 0
				if expires > 0 {
					v = int64(d.ttlSum / float64(expires))
				}
			}
			b = strconv.AppendInt(b, v, 10)
		}
		b = append(b, "\r\n"...)
	}
	return b, true
}

// addKeyspaceLine adds a line "db<n>:k=v,k=v,..." to dbs.
func addKeyspaceLine(dbs *[]*keyspaceDB, line string) bool {
	name, fields, ok := strings.Cut(line, ":")
	if !ok || !strings.HasPrefix(name, "db") {
		return false
	}
	n, err := strconv.Atoi(name[2:])
	if err != nil || n < 0 {
		return false
	}
	var d *keyspaceDB
	for _, x := range *dbs {
		if x.db == n {
			d = x
		}
	}
	if d == nil {
		d = &keyspaceDB{db: n}
		*dbs = append(*dbs, d)
	}
	var expires, ttl int64
	for f := range strings.SplitSeq(fields, ",") {
		k, vs, ok := strings.Cut(f, "=")
		v, err := strconv.ParseInt(vs, 10, 64)
		if !ok || k == "" || err != nil {
			return false
		}
		switch k {
		case "expires":
			expires = v
		case "avg_ttl":
			ttl = v
		}
		i := slices.Index(d.names, k)
		if i < 0 {
			d.names = append(d.names, k)
			d.values = append(d.values, 0)
			i = len(d.names) - 1
		}
		d.values[i] += v
	}
	d.ttlSum += float64(ttl) * float64(expires)
	return true
}

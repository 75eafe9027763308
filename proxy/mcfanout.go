package proxy

import (
	"bytes"
	"math/bits"
	"strconv"

	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/shard"
)

// This file is the memcached fan-out: flush_all, verbosity and stats,
// which concern every server, are sent to several servers and their
// replies merged, as the Redis fan-out (fanout.go) does for FLUSHALL, INFO
// and the like:
//
//   - flush_all [delay] [noreply], verbosity <level> [noreply] and stats
//     reset change the servers: they go to every configured server,
//     ejected or not, and the reply is OK (RESET) when every server says
//     so;
//   - stats reads: it goes to the servers of the ring (with
//     auto_eject_hosts an ejected server is skipped; when every server is
//     ejected the full ring stays), and the reply is their STAT lines
//     merged, in the first server's order (a stat only later servers have
//     comes after, in order of first appearance). A stat is summed when
//     every server's value is a decimal number (digits with an optional
//     fraction, such as rusage_user's 0.019099) and it is not in
//     statsFromFirst, which lists the values that describe one server
//     (pid, uptime, time, version, libevent, pointer_size, threads,
//     reserved_fds, hash_power_level and the 0/1 state flags): those, and
//     any value that is not a number, are the first server's;
//   - stats with another argument (slabs, items, settings, …) describes
//     one server's internals and is refused with a CLIENT_ERROR;
//   - noreply requests are sent to every server and not answered.
//
// Failures: a part that fails (connection refused, timed out, ejected, …)
// fails the request with "SERVER_ERROR <reason> (server <name>)", with
// "; the command was sent to every server" for a command that changes
// the servers. Otherwise an error line from any server (ERROR,
// CLIENT_ERROR, SERVER_ERROR; the first in ring order) is the reply, as
// it is: flush_all on a memcached started with -F answers "CLIENT_ERROR
// flush_all not allowed", and the other servers have been flushed. Each
// part counts as a fragment in the stats.

// memcacheVersion is the version walnut answers memcached's version
// command with, itself: the memcached release whose text protocol it
// speaks. Clients parse the reply as major.minor.micro (libmemcached
// rejects a major version of 0 or one that is not a number), so it is a
// memcached version, not walnut's own.
const memcacheVersion = "1.6.18"

// statsFromFirst are the general stats that describe one server rather
// than count something: the merged reply carries the first server's.
var statsFromFirst = map[string]bool{
	"pid": true, "uptime": true, "time": true, "version": true, "libevent": true,
	"pointer_size": true, "threads": true, "reserved_fds": true, "hash_power_level": true,
	"accepting_conns": true, "hash_is_expanding": true, "slab_reassign_running": true,
	"lru_crawler_running": true,
}

// memcacheFanOut sends req, a flush_all, verbosity or stats, to the
// servers its command concerns (see the rules above).
func (c *session) memcacheFanOut(req *memcache.Request) {
	if req.Command == memcache.Stats {
		if arg := statsArg(req.Raw); arg != "" && arg != "reset" {
			c.addLocal(memcache.AppendClientError(nil, "stats "+arg+" is not supported through a sharding proxy: it describes one server; ask the servers directly"))
			return
		}
	}
	if req.Noreply {
		for srv := range c.g.backends {
			if cl := c.detachedCall(srv); cl != nil {
				cl.buf = append(cl.buf, req.Raw...)
				cl.req.Data = cl.buf
				cl.req.Tag = uint8(req.Command)
				cl.req.NoReply = true
				c.do(cl)
				continue
			}
			cl, _ := c.newCall(srv)
			cl.req.Data = req.Raw
			cl.req.Tag = uint8(req.Command)
			cl.req.NoReply = true
			c.send(cl)
		}
		c.slots = append(c.slots, slot{kind: slotNone})
		return
	}
	var r *shard.Ring
	if !mcChangesServers(req) {
		r = c.ring()
	}
	first, n := c.callEach(r, req.Raw, uint8(req.Command)) // Raw not copied: the batch ends before the next read
	c.slots = append(c.slots, slot{kind: slotMcAll, call: first, ncall: n})
}

// mcChangesServers reports whether req, a fanned-out request, changes the
// servers (flush_all, verbosity, stats reset) rather than reads them.
func mcChangesServers(req *memcache.Request) bool {
	return req.Command != memcache.Stats || statsArg(req.Raw) == "reset"
}

// statsArg returns the first argument of a stats request line, "" if none
// (tokens are separated by spaces, as memcached separates them).
func statsArg(raw []byte) string {
	line := bytes.TrimRight(raw, "\r\n")
	_, rest, _ := bytes.Cut(bytes.TrimLeft(line, " "), []byte(" "))
	arg, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
	return string(arg)
}

// appendMemcacheAll appends the merged reply of a slotMcAll slot, the slot
// of req (see the rules above).
func (c *session) appendMemcacheAll(out []byte, sl *slot, req *memcache.Request) []byte {
	calls := c.calls[sl.call : sl.call+sl.ncall]
	for _, cl := range calls {
		if cl.err != nil {
			c.s.stats.forwardError.Add(1)
			msg := wireText(cl.err) + " (server " + c.g.backends[cl.server].name
			if mcChangesServers(req) {
				msg += "; the command was sent to every server"
			}
			return memcache.AppendServerError(out, msg+")")
		}
	}
	for _, cl := range calls {
		if memcache.ClassifyResponse(cl.reply).IsError() {
			return append(out, cl.reply...)
		}
	}
	if req.Command != memcache.Stats || memcache.ClassifyResponse(calls[0].reply) == memcache.RespReset {
		// OK (or RESET) from every server, as the framer checked: the
		// replies to one command cannot differ otherwise.
		for _, cl := range calls[1:] {
			if !bytes.Equal(cl.reply, calls[0].reply) {
				c.s.stats.forwardError.Add(1)
				return memcache.AppendServerError(out, "Invalid argument")
			}
		}
		return append(out, calls[0].reply...)
	}
	var m statsMerge
	for _, cl := range calls {
		if !m.add(cl.reply) {
			c.s.stats.forwardError.Add(1)
			return memcache.AppendServerError(out, "Invalid argument")
		}
	}
	return m.append(out)
}

// A statsMerge merges the replies of several servers to stats.
type statsMerge struct {
	stats []mergedStat
	index map[string]int // name → index in stats
}

// A mergedStat is one stat of the merged reply.
type mergedStat struct {
	name  []byte
	first []byte // the first server's value
	sum   decimalSum
}

// add merges one server's reply: STAT lines ended by END. It reports
// false if the reply is not that.
func (m *statsMerge) add(reply []byte) bool {
	if m.index == nil {
		m.index = make(map[string]int)
	}
	for len(reply) > 0 {
		i := bytes.Index(reply, []byte("\r\n"))
		if i < 0 {
			return false
		}
		line := reply[:i]
		reply = reply[i+2:]
		if bytes.IndexByte(line, '\n') >= 0 {
			return false
		}
		if string(line) == "END" {
			return len(reply) == 0
		}
		rest, ok := bytes.CutPrefix(line, []byte("STAT "))
		if !ok {
			return false
		}
		name, value, _ := bytes.Cut(rest, []byte(" "))
		if len(name) == 0 {
			return false
		}
		j, seen := m.index[string(name)]
		if !seen {
			j = len(m.stats)
			m.index[string(name)] = j
			m.stats = append(m.stats, mergedStat{name: name, first: value, sum: decimalSum{ok: !statsFromFirst[string(name)]}})
		}
		m.stats[j].sum.add(value)
	}
	return false
}

// append appends the merged reply.
func (m *statsMerge) append(out []byte) []byte {
	for i := range m.stats {
		st := &m.stats[i]
		out = append(out, "STAT "...)
		out = append(out, st.name...)
		out = append(out, ' ')
		if st.sum.ok {
			out = st.sum.append(out)
		} else {
			out = append(out, st.first...)
		}
		out = append(out, '\r', '\n')
	}
	return memcache.AppendEnd(out)
}

// maxFracDigits is the most fraction digits a summed stat may have.
const maxFracDigits = 9

// A decimalSum adds decimal numbers with an optional fraction, exactly:
// "0.019099" + "1.5" = "1.519099". ok is cleared by a value that is not
// such a number, or a sum that does not fit.
type decimalSum struct {
	ok         bool
	whole      uint64
	frac       uint64 // in units of 10^-maxFracDigits
	fracDigits int    // the most fraction digits of a value, for printing
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// add adds the number v.
func (d *decimalSum) add(v []byte) {
	if !d.ok {
		return
	}
	ip, fp, dot := bytes.Cut(v, []byte("."))
	whole, err := strconv.ParseUint(string(ip), 10, 64) // digits only
	if err != nil || dot && (len(fp) == 0 || len(fp) > maxFracDigits) {
		d.ok = false
		return
	}
	var frac uint64
	for _, ch := range fp {
		if ch < '0' || ch > '9' {
			d.ok = false
			return
		}
		frac = frac*10 + uint64(ch-'0')
	}
	d.fracDigits = max(d.fracDigits, len(fp))
	frac *= pow10[maxFracDigits-len(fp)]
	d.frac += frac
	if d.frac >= pow10[maxFracDigits] {
		d.frac -= pow10[maxFracDigits]
		whole++
		if whole == 0 { // wrapped
			d.ok = false
			return
		}
	}
	var carry uint64
	d.whole, carry = bits.Add64(d.whole, whole, 0)
	if carry != 0 {
		d.ok = false
	}
}

// append appends the sum, with as many fraction digits as the value that
// had the most.
func (d *decimalSum) append(out []byte) []byte {
	out = strconv.AppendUint(out, d.whole, 10)
	if d.fracDigits == 0 {
		return out
	}
	out = append(out, '.')
	f := d.frac / pow10[maxFracDigits-d.fracDigits]
	s := strconv.AppendUint(nil, f, 10)
	for range d.fracDigits - len(s) {
		out = append(out, '0')
	}
	return append(out, s...)
}

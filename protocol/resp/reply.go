package resp

import (
	"bytes"
	"math"

	"github.com/walnutproxy/walnut/protocol"
)

// Reply type bytes: the first byte of every RESP2 and RESP3 reply, and the
// values of Value.Type.
const (
	TypeSimple    byte = '+' // +<text>\r\n
	TypeError     byte = '-' // -<text>\r\n
	TypeInt       byte = ':' // :<int64>\r\n
	TypeBulk      byte = '$' // $<len>\r\n<bytes>\r\n; $-1\r\n is a nil bulk
	TypeArray     byte = '*' // *<n>\r\n<n replies>; *-1\r\n is a nil array
	TypeNull      byte = '_' // RESP3: _\r\n
	TypeDouble    byte = ',' // RESP3: ,<float>\r\n
	TypeBool      byte = '#' // RESP3: #t\r\n or #f\r\n
	TypeBlobError byte = '!' // RESP3: !<len>\r\n<bytes>\r\n
	TypeVerbatim  byte = '=' // RESP3: =<len>\r\n<fmt>:<bytes>\r\n
	TypeBigInt    byte = '(' // RESP3: (<digits>\r\n
	TypeMap       byte = '%' // RESP3: %<n>\r\n<2n replies>
	TypeSet       byte = '~' // RESP3: ~<n>\r\n<n replies>
	TypePush      byte = '>' // RESP3: ><n>\r\n<n replies>
	TypeAttribute byte = '|' // RESP3: |<n>\r\n<2n replies>, then the reply they annotate
)

// RESP3 streamed frames: "$?\r\n" starts a string sent as ";<len>\r\n<bytes>\r\n"
// chunks ending with ";0\r\n"; "*?\r\n", "%?\r\n" and "~?\r\n" start an
// aggregate that ends with ".\r\n" (for a map, after an even number of
// elements: keys and values).
const (
	typeChunk byte = ';'
	typeEnd   byte = '.'
)

// A Value is one materialised reply, for in-process callers and tests. The
// proxy itself frames replies with FrameReply and forwards their bytes.
//
// A server's error reply is data (Type '-' or '!'), not a Go error.
// Streamed RESP3 strings and aggregates are materialised like their
// counted forms ('$', '*', '%', '~').
type Value struct {
	// Type is the reply's type byte, one of the Type constants.
	Type byte
	// Null reports a nil: "$-1" (Type '$'), "*-1" (Type '*') or the RESP3
	// null "_" (Type '_').
	Null bool
	// Int is the value of an integer (':'), and 1 or 0 for a boolean ('#').
	Int int64
	// Str is the text of a simple string, error, double or big number
	// ('+', '-', ',', '('), or the data of a bulk string, blob error or
	// verbatim string ('$', '!', '='; a verbatim string keeps its
	// "fmt:" prefix). It aliases the parsed input, except for a streamed
	// string, whose chunks are joined in a new buffer.
	Str []byte
	// Elems are the elements of an array, set or push ('*', '~', '>'), or
	// the keys and values of a map ('%') in turn: k1, v1, k2, v2, ….
	Elems []Value
	// Attrs are the keys and values, in turn, of a RESP3 attribute ('|')
	// that preceded this reply; nil if there was none.
	Attrs []Value
}

// IsError reports whether v is an error reply ('-' or '!').
func (v Value) IsError() bool {
	return v.Type == TypeError || v.Type == TypeBlobError
}

// IsNil reports whether v is a nil bulk, a nil array or a RESP3 null.
func (v Value) IsNil() bool {
	return v.Null
}

// FrameReply returns the length of the first complete reply in b, without
// materialising it, or 0 if b holds only part of one. It understands every
// RESP2 and RESP3 type, including nested aggregates (walked iteratively,
// up to lim.MaxDepth levels), attributes and streamed frames, so that a
// proxy never loses its place in a reply stream. Malformed input gives a
// *protocol.Error; exceeding a limit also sets TooLarge. Aggregate counts
// are not bounded by lim.MaxArgs: framing allocates nothing for them.
//
// FrameReply does not allocate for replies nested up to 15 deep.
func FrameReply(b []byte, lim protocol.Limits) (n int, err error) {
	n, err = FrameReplyHint(b, lim)
	return max(n, 0), err
}

// FrameReplyHint is FrameReply with a size hint for an incomplete reply,
// as the pool's Framer contract allows: n > 0 is the length of the
// complete reply, as FrameReply returns it; n == 0 means incomplete, with
// no estimate; n < 0 means incomplete, and the reply is at least -n bytes
// long, with -n > len(b). A caller can then read until it holds -n bytes
// before framing again, growing its buffer once, instead of framing again
// from the start after every read.
//
// A hint is known once the header of a string that b holds only part of
// is complete ("$1000000\r\n", or a blob error, verbatim string or
// streamed chunk, at any depth): it then reaches the end of that string.
// It is a lower bound: -n is never larger than the complete reply turns
// out to be. It is at most len(b) plus lim.MaxBulk and a few bytes: a
// caller that sizes a buffer from it allocates up to lim.MaxBulk on the
// word of a server's header line.
func FrameReplyHint(b []byte, lim protocol.Limits) (n int, err error) {
	lim = lim.WithDefaults()
	if end, _ := scalarEnd(b, 0, &lim); end > 0 {
		return end, nil // most replies: no state needed
	}
	var st frameState
	st.start(false)
	n, err = st.frame(b, &lim)
	if n == 0 && err == nil && st.need > len(b) {
		return -st.need, nil
	}
	return n, err
}

// ParseReply parses the first complete reply in b into v and returns its
// length: the same length FrameReply returns, and 0 if b holds only part of
// a reply. On success v is overwritten; strings alias b, and all the
// elements of an aggregate reply share one new allocation. A Reader's
// ReadReply reuses that memory from one reply to the next instead.
//
// The reply is framed in full before anything is allocated, so memory use
// is bounded by len(b), whatever counts the reply claims.
func ParseReply(b []byte, lim protocol.Limits, v *Value) (n int, err error) {
	lim = lim.WithDefaults()
	var st frameState
	st.start(true)
	n, err = st.frame(b, &lim)
	if n == 0 || err != nil {
		return n, err
	}
	var mem valueMem
	if err := v.build(b[:n], &lim, &st, &mem); err != nil {
		return 0, err
	}
	return n, nil
}

// A token is one reply header, with its data for strings.
type token struct {
	typ      byte
	streamed bool   // "$?", "*?", "%?", "~?"
	null     bool   // "$-1", "*-1", "_"
	n        int64  // integer value, bulk length or element count
	str      []byte // line text or bulk data
	end      int    // offset after the token; 0 if incomplete
	need     int    // if incomplete and known: input length needed
}

// nextToken reads the reply header at b[p:], and for string types the data
// after it, into t; t.end is 0 if b is incomplete, and t is meaningless
// after an error. (Filling the caller's token costs much less than
// returning one.)
func nextToken(b []byte, p int, lim *protocol.Limits, t *token) error {
	*t = token{}
	if p >= len(b) {
		return nil
	}
	t.typ = b[p]
	switch t.typ {
	case TypeBulk, TypeBlobError, TypeVerbatim, typeChunk:
		n, i, err := numberLine(b, p, lim, t.typ == TypeBulk)
		if i == 0 || err != nil {
			return err
		}
		switch {
		case n == streamedCount:
			t.streamed = true
			t.end = i
			return nil
		case n == -1 && t.typ == TypeBulk:
			t.null = true
			t.end = i
			return nil
		case n == 0 && t.typ == typeChunk:
			// ";0\r\n" ends a streamed string and has no data.
			t.end = i
			return nil
		case n < 0:
			return newError(msgInvalidBulk, false)
		case n > int64(lim.MaxBulk):
			return newError(msgInvalidBulk, true)
		}
		size := int(n)
		if size > len(b)-i-2 {
			// i ≤ len(b) and size ≤ lim.MaxBulk ≤ protocol.CeilingMaxBulk
			// (2^31-1, the cap WithDefaults applies), so the sum cannot
			// overflow a 64-bit int; with 32-bit ints it is checked.
			if size <= math.MaxInt-2-i {
				t.need = i + size + 2
			}
			return nil
		}
		if b[i+size] != '\r' || b[i+size+1] != '\n' {
			return newError(msgMissingCRLF, false)
		}
		t.n = n
		t.str = b[i : i+size : i+size]
		t.end = i + size + 2
		return nil
	case TypeArray, TypeMap, TypeSet, TypePush, TypeAttribute:
		n, i, err := numberLine(b, p, lim, t.typ == TypeArray || t.typ == TypeMap || t.typ == TypeSet)
		if i == 0 || err != nil {
			return err
		}
		switch {
		case n == streamedCount:
			t.streamed = true
		case n == -1 && t.typ == TypeArray:
			t.null = true
		case n < 0:
			return newError(msgInvalidMultibulk, false)
		case n > math.MaxInt32/2:
			// Keeps 2n (map pairs) within an int on every platform; no
			// real reply comes close, at three bytes an element or more.
			return newError(msgInvalidMultibulk, true)
		}
		t.n = n
		t.end = i
		return nil
	case TypeInt:
		n, i, err := numberLine(b, p, lim, false)
		if i == 0 || err != nil {
			return err
		}
		t.n = n
		t.end = i
		return nil
	case TypeSimple, TypeError, TypeDouble, TypeBigInt, TypeBool, TypeNull, typeEnd:
		i, err := replyLine(b, p, lim.MaxLine)
		if i == 0 || err != nil {
			return err
		}
		t.str = b[p+1 : i-2 : i-2]
		t.end = i
		switch t.typ {
		case TypeBool:
			switch {
			case len(t.str) == 1 && t.str[0] == 't':
				t.n = 1
			case len(t.str) == 1 && t.str[0] == 'f':
			default:
				return newError(msgInvalidBool, false)
			}
			t.str = nil
		case TypeNull, typeEnd:
			if len(t.str) != 0 {
				return newError(msgInvalidNull, false)
			}
			t.str = nil
			t.null = t.typ == TypeNull
		}
		return nil
	}
	return byteError(msgUnexpectedType, t.typ)
}

// streamedCount is what numberLine returns for "?", a streamed frame.
const streamedCount = math.MinInt64

// numberLine parses the line at b[p:] after its type byte as an int64 (or
// "?" if streamed is allowed) and returns it with the offset after the
// line, 0 if the line is incomplete.
func numberLine(b []byte, p int, lim *protocol.Limits, streamed bool) (int64, int, error) {
	// Fast path: up to 18 digits, optionally negative, then CRLF.
	i := p + 1
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	digits := i
	var v int64
	for end := min(len(b), digits+18); i < end; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	if i > digits && i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' && i+2-p <= lim.MaxLine {
		if neg {
			v = -v
		}
		return v, i + 2, nil
	}
	end, err := replyLine(b, p, lim.MaxLine)
	if end == 0 || err != nil {
		return 0, 0, err
	}
	text := b[p+1 : end-2]
	if streamed && len(text) == 1 && text[0] == '?' {
		return streamedCount, end, nil
	}
	v, ok := parseReplyInt(text)
	if !ok {
		switch b[p] {
		case TypeInt:
			return 0, 0, newError(msgInvalidInt, false)
		case TypeBulk, TypeBlobError, TypeVerbatim, typeChunk:
			return 0, 0, newError(msgInvalidBulk, false)
		}
		return 0, 0, newError(msgInvalidMultibulk, false)
	}
	return v, end, nil
}

// parseReplyInt parses an optional '-' and 1 to 19 decimal digits within
// int64. Leading zeros are allowed, and "-0" is 0.
//
// It is deliberately more lenient than string2ll, which parses client
// requests exactly as redis-server does so that walnut rejects what
// redis-server rejects, word for word. Replies come from a server, and a
// proxy frames them only to find where each ends: a number with leading
// zeros is unambiguous, and rejecting it would close a server connection
// over formatting that other RESP servers may produce and that twemproxy's
// reply parser (which accumulates digits) accepts too.
func parseReplyInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	switch {
	case neg && v <= 1<<63:
		return -int64(v), true // 1<<63 wraps to math.MinInt64, as wanted
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	}
	return 0, false
}

// replyLine finds the CRLF ending the reply line that starts at b[p] and
// returns the offset after it, or 0 if the line is incomplete. The line,
// CRLF included, must fit in max bytes; a LF without a CR before it is an
// error, so a corrupt stream is caught at once rather than read on into
// the next reply.
func replyLine(b []byte, p, max int) (int, error) {
	w := b[p:]
	if len(w) > max {
		w = w[:max]
	}
	i := bytes.IndexByte(w, '\n')
	if i < 0 {
		if len(b)-p >= max {
			return 0, newError(msgBigLine, true)
		}
		return 0, nil
	}
	if i < 2 || w[i-1] != '\r' {
		return 0, newError(msgMissingCRLF, false)
	}
	return p + i + 1, nil
}

// frameLevel is one open aggregate while framing.
type frameLevel struct {
	left  int   // elements still expected; -1 for a streamed aggregate
	idx   int32 // streamed aggregate: its index in frameState.counts
	attr  bool  // the key/value pairs of an attribute
	pairs bool  // streamed aggregate: a map, whose elements come in pairs
	odd   bool  // streamed aggregate: an odd number of elements so far
}

// inlineLevels is how many levels a frameState holds without allocating.
const inlineLevels = 16

// frameState frames one reply. It can resume where an incomplete attempt
// stopped, because it holds offsets, never slices, into the input; the
// Reader uses that to frame a long reply in time linear in its length.
// Its first levels live in the struct itself rather than behind a slice,
// so a frameState on the stack allocates nothing.
type frameState struct {
	pos    int                      // offset of the next token
	depth  int                      // open levels; the first is the reply itself
	levels [inlineLevels]frameLevel // levels[:depth], then more
	more   []frameLevel             // levels beyond inlineLevels, reused
	need   int                      // after an incomplete attempt: input length needed, 0 if unknown

	afterAttr  bool // an attribute just ended; the reply it annotates is next
	chunked    bool // inside a streamed string
	chunkBytes int  // bytes so far in the streamed string

	// For ParseReply: what the build pass needs to size its memory.
	record    bool
	nodes     int   // values, the reply itself and attribute entries included
	counts    []int // element counts of streamed aggregates, in order
	chunkData int   // bytes in all streamed strings
}

// start prepares st to frame a new reply, keeping its memory.
func (st *frameState) start(record bool) {
	more, counts := st.more, st.counts[:0]
	*st = frameState{more: more, counts: counts, record: record}
	st.push(frameLevel{left: 1})
}

// top returns the innermost open level.
func (st *frameState) top() *frameLevel {
	if i := st.depth - 1; i < inlineLevels {
		return &st.levels[i]
	}
	return &st.more[st.depth-1-inlineLevels]
}

// push opens a level.
func (st *frameState) push(l frameLevel) {
	switch i := st.depth - inlineLevels; {
	case i < 0:
		st.levels[st.depth] = l
	case i < len(st.more):
		st.more[i] = l
	default:
		st.more = append(st.more, l)
	}
	st.depth++
}

// frame continues framing the reply at the start of b and returns its
// length once it is complete, or 0.
func (st *frameState) frame(b []byte, lim *protocol.Limits) (int, error) {
	st.need = 0
	var t token
	for st.depth > 0 {
		if !st.chunked && !st.afterAttr {
			if end, _ := scalarEnd(b, st.pos, lim); end > 0 {
				st.pos = end
				if top := st.top(); top.left > 1 {
					top.left--
					if st.record {
						st.nodes++
					}
					continue
				}
				st.value()
				st.popDone()
				continue
			}
		}
		err := nextToken(b, st.pos, lim, &t)
		if err != nil {
			return 0, err
		}
		if t.end == 0 {
			st.need = t.need
			return 0, nil
		}
		if st.chunked {
			if t.typ != typeChunk || t.streamed {
				return 0, byteError(msgUnexpectedType, t.typ)
			}
			st.pos = t.end
			if t.n == 0 {
				st.chunked = false
				st.value()
				st.popDone()
				continue
			}
			if int(t.n) > lim.MaxBulk-st.chunkBytes {
				return 0, newError(msgInvalidBulk, true)
			}
			st.chunkBytes += int(t.n)
			st.chunkData += int(t.n)
			continue
		}
		top := st.top()
		switch {
		case t.typ == typeChunk:
			return 0, byteError(msgUnexpectedType, t.typ)
		case t.typ == typeEnd:
			// "." ends a streamed aggregate, but not between an
			// attribute and the reply it annotates, nor between a map
			// key and its value.
			if top.left >= 0 || st.afterAttr || top.pairs && top.odd {
				return 0, byteError(msgUnexpectedType, t.typ)
			}
			st.pos = t.end
			st.depth--
			st.popDone()
			continue
		case t.typ == TypeAttribute:
			if st.afterAttr || t.streamed {
				return 0, byteError(msgUnexpectedType, t.typ)
			}
			if st.depth > lim.MaxDepth {
				return 0, newError(msgTooDeep, true)
			}
			st.pos = t.end
			if t.n == 0 {
				st.afterAttr = true
			} else {
				st.push(frameLevel{left: 2 * int(t.n), attr: true})
			}
			continue
		}
		st.afterAttr = false
		if t.typ == TypeBulk && t.streamed {
			st.pos = t.end
			st.chunked = true
			st.chunkBytes = 0
			continue
		}
		aggregate := !t.null && (t.typ == TypeArray || t.typ == TypeMap || t.typ == TypeSet || t.typ == TypePush)
		if aggregate && st.depth > lim.MaxDepth {
			return 0, newError(msgTooDeep, true)
		}
		st.pos = t.end
		st.value()
		if aggregate {
			switch {
			case t.streamed:
				if len(st.counts) >= math.MaxInt32 {
					return 0, newError(msgInvalidMultibulk, true)
				}
				st.push(frameLevel{left: -1, idx: int32(len(st.counts)), pairs: t.typ == TypeMap})
				if st.record {
					st.counts = append(st.counts, 0)
				}
			case t.n > 0:
				n := int(t.n)
				if t.typ == TypeMap {
					n *= 2
				}
				st.push(frameLevel{left: n})
			}
		}
		st.popDone()
	}
	return st.pos, nil
}

// scalarEnd is the fast path of framing and building: if b[p:] starts
// with a complete, well-formed bulk string, integer, simple string or
// error of the common shapes (a length or integer of 1 to 9 digits, no
// sign), it returns the offset after it, and the bulk length or integer.
// Otherwise it returns 0, and nextToken decides, so the fast path never
// changes an outcome.
func scalarEnd(b []byte, p int, lim *protocol.Limits) (end, n int) {
	if p+3 >= len(b) {
		return 0, 0
	}
	switch b[p] {
	case TypeBulk, TypeInt:
		// Digits and CRLF; then for a bulk its data and CRLF.
		i := p + 1
		for end := min(len(b), i+9); i < end; i++ {
			c := b[i]
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		if i == p+1 || i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' || i+2-p > lim.MaxLine {
			return 0, 0
		}
		i += 2
		if b[p] == TypeInt {
			return i, n
		}
		if n > lim.MaxBulk || n > len(b)-i-2 || b[i+n] != '\r' || b[i+n+1] != '\n' {
			return 0, 0
		}
		return i + n + 2, n
	case TypeSimple, TypeError:
		w := b[p:min(len(b), p+lim.MaxLine)]
		if i := bytes.IndexByte(w, '\n'); i >= 2 && w[i-1] == '\r' {
			return p + i + 1, 0
		}
	}
	return 0, 0
}

// value counts one complete value (or aggregate header) against the
// innermost open aggregate. The caller then pushes the value's own level,
// if it is an aggregate, and calls popDone: a level whose count reached
// zero stays open until its last element is complete, so st.depth
// is always the nesting depth plus one.
func (st *frameState) value() {
	top := st.top()
	if top.left > 0 {
		top.left--
	} else {
		top.odd = !top.odd
		if st.record {
			st.counts[top.idx]++
		}
	}
	if st.record {
		st.nodes++
	}
}

// popDone closes every innermost level that has all its elements.
func (st *frameState) popDone() {
	for st.depth > 0 {
		top := st.top()
		if top.left != 0 {
			return
		}
		st.depth--
		if top.attr {
			st.afterAttr = true
		}
	}
}

// maxKeptValues bounds the element memory a Reader keeps once a much
// smaller reply is read (style rule 16).
const maxKeptValues = 1024

// valueMem is memory for the elements of materialised replies.
type valueMem struct {
	vals []Value
	strs []byte
}

// values returns n Values, reusing m's memory unless it is too small or
// far too large. The Values are not zeroed; build overwrites each one.
func (m *valueMem) values(n int) []Value {
	if cap(m.vals) < n || (cap(m.vals) > maxKeptValues && n < cap(m.vals)/4) {
		m.vals = make([]Value, n)
	}
	return m.vals[:n]
}

// bytes returns an empty slice with room for n bytes, reusing m's memory
// as values does.
func (m *valueMem) bytes(n int) []byte {
	if cap(m.strs) < n || (cap(m.strs) > maxKeptValues*64 && n < cap(m.strs)/4) {
		m.strs = make([]byte, 0, n)
	}
	return m.strs[:0]
}

// release forgets the replies built in m, so that they do not keep old
// input buffers alive.
func (m *valueMem) release() {
	clear(m.vals[:cap(m.vals)])
}

// buildLevel is one open aggregate while building.
type buildLevel struct {
	elems    []Value
	i        int
	streamed bool
	attr     bool
}

// build materialises the reply b, which st has framed completely, into v,
// placing every element in memory from mem sized from st.nodes, so nothing
// moves once placed.
func (v *Value) build(b []byte, lim *protocol.Limits, st *frameState, mem *valueMem) error {
	var arena []Value
	if st.nodes > 1 {
		arena = mem.values(st.nodes - 1) // the reply itself is *v
	}
	var strs []byte
	if st.chunkData > 0 {
		strs = mem.bytes(st.chunkData)
	}
	*v = Value{}

	var stackMem [16]buildLevel
	stack := stackMem[:0]
	var attrs []Value // an attribute waiting for the reply it annotates
	next, counts, p := 0, st.counts, 0
	done := false
	var t token
	for {
		var slot *Value
		if len(stack) == 0 {
			if done {
				return nil
			}
			slot = v
		} else {
			top := &stack[len(stack)-1]
			if top.i == len(top.elems) {
				if top.streamed {
					var t token
					err := nextToken(b, p, lim, &t)
					if err != nil || t.end == 0 || t.typ != typeEnd {
						return newError(msgInconsistent, false)
					}
					p = t.end
				}
				if top.attr {
					attrs = top.elems
				}
				stack = stack[:len(stack)-1]
				continue
			}
			slot = &top.elems[top.i]
			if attrs == nil {
				if end, n := scalarEnd(b, p, lim); end > 0 {
					switch typ := b[p]; typ {
					case TypeBulk:
						*slot = Value{Type: typ, Str: b[end-2-n : end-2 : end-2]}
					case TypeInt:
						*slot = Value{Type: typ, Int: int64(n)}
					default:
						*slot = Value{Type: typ, Str: b[p+1 : end-2 : end-2]}
					}
					p = end
					top.i++
					continue
				}
			}
		}
		if err := nextToken(b, p, lim, &t); err != nil || t.end == 0 {
			return newError(msgInconsistent, false)
		}
		p = t.end
		if t.typ == TypeAttribute {
			k := 2 * int(t.n)
			if k > len(arena)-next {
				return newError(msgInconsistent, false)
			}
			el := arena[next : next+k : next+k]
			next += k
			if k == 0 {
				attrs = nil // "|0": no attributes
			} else {
				stack = append(stack, buildLevel{elems: el, attr: true})
			}
			continue
		}
		*slot = Value{Type: t.typ, Null: t.null, Int: t.n, Str: t.str, Attrs: attrs}
		attrs = nil
		if len(stack) > 0 {
			stack[len(stack)-1].i++
		} else {
			done = true
		}
		switch t.typ {
		case TypeInt, TypeBool:
		case TypeBulk:
			slot.Int = 0
			if t.streamed {
				s := len(strs)
				for {
					var c token
					err := nextToken(b, p, lim, &c)
					if err != nil || c.end == 0 || c.typ != typeChunk || c.streamed || len(c.str) > cap(strs)-len(strs) {
						return newError(msgInconsistent, false)
					}
					p = c.end
					if c.n == 0 {
						break
					}
					strs = append(strs, c.str...)
				}
				slot.Str = strs[s:len(strs):len(strs)]
			}
		case TypeArray, TypeMap, TypeSet, TypePush:
			slot.Int = 0
			if t.null {
				continue
			}
			k := int(t.n)
			switch {
			case t.streamed:
				if len(counts) == 0 {
					return newError(msgInconsistent, false)
				}
				k, counts = counts[0], counts[1:]
			case t.typ == TypeMap:
				k *= 2
			}
			if k > len(arena)-next {
				return newError(msgInconsistent, false)
			}
			el := arena[next : next+k : next+k]
			next += k
			slot.Elems = el
			if k > 0 || t.streamed {
				stack = append(stack, buildLevel{elems: el, streamed: t.streamed})
			}
		default:
			slot.Int = 0
		}
	}
}

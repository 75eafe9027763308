package resp

import (
	"bytes"
	"math"

	"github.com/walnutproxy/walnut/protocol"
)

// A Command is one client request.
//
// Args and Raw alias the parsed input (the Reader's buffer for
// ReadCommand), so they are valid only until the next read; Args[i] has no
// spare capacity, so appending to it never writes into the input. The one
// exception is an inline argument that needed unquoting ("a\x41" or
// 'it\'s'): it lives in memory the Command owns and reuses on the next
// parse.
// Parsing into a Command reuses the capacity of Args.
type Command struct {
	// Args are the arguments, the command name first.
	Args [][]byte
	// Raw is the command exactly as received, terminators included, so a
	// proxy can forward it verbatim.
	Raw []byte
	// Inline reports an inline command (space-separated words ending in a
	// newline) rather than a RESP array of bulk strings.
	Inline bool

	quoted []byte // backing for unquoted inline arguments
}

// maxKeptArgs bounds the Args capacity a Command keeps once a command with
// fewer arguments is parsed into it (style rule 16).
const maxKeptArgs = 1024

// minBulkElement is the fewest bytes one element of a RESP request can
// take: "$0\r\n\r\n".
const minBulkElement = 6

// ParseCommand parses the first command in b into cmd, as redis-server 7
// would parse it, and returns the number of bytes it took.
//
// n == 0 with a nil error means b holds only part of a command: call again
// with more input. n > 0 with len(cmd.Args) == 0 means b began with input
// redis-server ignores (an empty inline line, "*0\r\n" or a negative
// array count): skip n bytes and carry on. A malformed command gives a
// *protocol.Error whose Reply is redis-server's own message, such as
// "ERR Protocol error: invalid bulk length"; one that breaks lim also has
// TooLarge set. Limits are checked before anything is allocated.
//
// ParseCommand reads b and never modifies it. It allocates only to grow
// cmd.Args or for quoted inline arguments.
func ParseCommand(b []byte, lim protocol.Limits, cmd *Command) (n int, err error) {
	var st cmdState
	lim = lim.WithDefaults()
	return st.parse(b, &lim, cmd)
}

// cmdState lets the Reader resume parsing a long RESP command where the
// previous attempt stopped instead of rescanning it for every read. It is
// valid only while the parsed prefix of the input stays where it was.
type cmdState struct {
	pos  int // offset of the next element header; 0 before the array header
	left int // elements still to read
	need int // after an incomplete parse: input length needed, 0 if unknown
}

// parse parses one command from b, resuming from st. lim has its defaults
// applied.
func (st *cmdState) parse(b []byte, lim *protocol.Limits, cmd *Command) (int, error) {
	st.need = 0
	if st.pos == 0 {
		if len(b) == 0 {
			return 0, nil
		}
		if b[0] != '*' {
			return parseInline(b, lim, cmd)
		}
		count, next, err := arrayHeader(b, lim)
		if next <= 0 {
			return 0, err
		}
		cmd.Inline = false
		if cap(cmd.Args) > maxKeptArgs && count <= maxKeptArgs {
			cmd.Args = nil
		}
		cmd.Args = cmd.Args[:0]
		if count <= 0 {
			// redis-server resets the client and reads on.
			cmd.Raw = b[:next]
			return next, nil
		}
		// Grow Args once for the elements that can already be in b, never
		// for the count alone: "*999999999\r\n" allocates nothing.
		if want := min(count, (len(b)-next)/minBulkElement); cap(cmd.Args) < want {
			cmd.Args = make([][]byte, 0, want)
		}
		st.pos, st.left = next, count
	}
	for st.left > 0 {
		p := st.pos
		size, start := fastBulkHeader(b, p, lim)
		if start == 0 {
			var err error
			if size, start, err = bulkHeader(b, p, lim); start == 0 {
				return 0, err
			}
		}
		if size > len(b)-start-2 {
			// start ≤ len(b) and size ≤ lim.MaxBulk ≤
			// protocol.CeilingMaxBulk (2^31-1, the cap WithDefaults
			// applies), so the sum cannot overflow a 64-bit int; with
			// 32-bit ints it is checked, and the need left unknown.
			if size <= math.MaxInt-2-start {
				st.need = start + size + 2
			}
			return 0, nil
		}
		end := start + size + 2
		// redis-server skips the two bytes after the data without
		// checking that they are CRLF; so do we.
		cmd.Args = append(cmd.Args, b[start:start+size:start+size])
		st.pos = end
		st.left--
	}
	n := st.pos
	cmd.Raw = b[:n]
	*st = cmdState{}
	return n, nil
}

// arrayHeader parses the "*<count>\r" line at the start of b. next is the
// offset after the line, 0 if the line is incomplete, -1 with err set if it
// is malformed.
func arrayHeader(b []byte, lim *protocol.Limits) (count, next int, err error) {
	if v, next, ok := fastLen(b, 0); ok && next <= lim.MaxLine {
		if v > lim.MaxArgs {
			return 0, -1, newError(msgInvalidMultibulk, true)
		}
		return v, next, nil
	}
	i := requestLine(b, 0, lim.MaxLine)
	switch i {
	case lineIncomplete:
		return 0, 0, nil
	case lineTooBig:
		return 0, -1, newError(msgBigMultibulk, true)
	}
	v, ok := string2ll(b[1:i])
	if !ok {
		return 0, -1, newError(msgInvalidMultibulk, false)
	}
	if v > math.MaxInt32 || v > int64(lim.MaxArgs) {
		return 0, -1, newError(msgInvalidMultibulk, true)
	}
	return int(v), i + 2, nil
}

// fastBulkHeader parses the common "$<1 to 9 digits>\r" header at b[p:]
// and returns the length and the offset of the data, or start == 0 when
// the slow path must decide (incomplete, malformed, unusual or too large).
func fastBulkHeader(b []byte, p int, lim *protocol.Limits) (size, start int) {
	if p >= len(b) || b[p] != '$' {
		return 0, 0
	}
	v, next, ok := fastLen(b, p)
	if !ok || v > lim.MaxBulk || next-p > lim.MaxLine {
		return 0, 0
	}
	return v, next
}

// fastLen parses b[p+1:] as 1 to 9 decimal digits, without a leading zero
// unless the number is 0, followed by '\r' and one more byte. It returns
// the number and the offset after the line, or ok == false to leave the
// decision to the slow path.
func fastLen(b []byte, p int) (v, next int, ok bool) {
	i := p + 1
	if i+2 >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	if c == '0' {
		if b[i+1] != '\r' {
			return 0, 0, false
		}
		return 0, i + 3, true
	}
	if c < '1' || c > '9' {
		return 0, 0, false
	}
	v = int(c - '0')
	i++
	for end := min(len(b), p+10); i < end; i++ {
		c = b[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int(c-'0')
	}
	if i+1 >= len(b) || b[i] != '\r' {
		return 0, 0, false
	}
	return v, i + 2, true
}

// bulkHeader is the general parse of the "$<len>\r" element header at
// b[p:], in redis-server's order of checks. start is 0 when the header is
// incomplete or err is set.
func bulkHeader(b []byte, p int, lim *protocol.Limits) (size, start int, err error) {
	i := requestLine(b, p, lim.MaxLine)
	switch i {
	case lineIncomplete:
		return 0, 0, nil
	case lineTooBig:
		return 0, 0, newError(msgBigBulk, true)
	}
	if b[p] != '$' {
		return 0, 0, byteError(msgExpectedDollar, b[p])
	}
	v, ok := string2ll(b[p+1 : i])
	if !ok || v < 0 {
		return 0, 0, newError(msgInvalidBulk, false)
	}
	if v > int64(lim.MaxBulk) {
		return 0, 0, newError(msgInvalidBulk, true)
	}
	return int(v), i + 2, nil
}

// Results of requestLine other than an index.
const (
	lineIncomplete = -1
	lineTooBig     = -2
)

// requestLine finds the end of the request header line starting at b[p]
// as redis-server does: at the first '\r', which must be followed by one
// more byte (its value is not checked). redis-server searches with strchr,
// which stops at a NUL byte, so a NUL before the '\r' hides the line end
// until the line is too big. The line, with both terminator bytes, must
// fit in max bytes. It returns the index of the '\r', lineIncomplete or
// lineTooBig.
func requestLine(b []byte, p, max int) int {
	w := b[p:]
	if len(w) > max {
		w = w[:max]
	}
	if i := bytes.IndexByte(w, '\r'); i >= 0 && i+1 < len(w) && bytes.IndexByte(w[:i], 0) < 0 {
		return p + i
	}
	if len(b)-p >= max {
		return lineTooBig
	}
	return lineIncomplete
}

// string2ll parses b as redis-server's string2ll does: an optional '-',
// then decimal digits with no leading zero (except "0" itself), fewer than
// 21 bytes in all, within int64. "-0", "+1", "01", " 1" and "" fail.
func string2ll(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true // 1<<63 wraps to math.MinInt64, as wanted
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// parseInline parses an inline command: a line ending in '\n' (an optional
// '\r' before it is dropped), split into arguments as redis-server's
// sdssplitargs splits it.
func parseInline(b []byte, lim *protocol.Limits, cmd *Command) (int, error) {
	w := b
	if len(w) > lim.MaxLine {
		w = w[:lim.MaxLine]
	}
	// As for RESP headers, redis-server's strchr cannot see past a NUL.
	i := bytes.IndexByte(w, '\n')
	if i < 0 || bytes.IndexByte(w[:i], 0) >= 0 {
		if len(b) >= lim.MaxLine {
			return 0, newError(msgBigInline, true)
		}
		return 0, nil
	}
	line := b[:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	cmd.Inline = true
	cmd.Args = cmd.Args[:0]
	if err := splitArgs(line, lim, cmd); err != nil {
		return 0, err
	}
	cmd.Raw = b[: i+1 : i+1]
	return i + 1, nil
}

// isSpace reports whether c is a space in the C locale, as isspace(3).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// endsWord reports whether c ends an unquoted word in sdssplitargs. '\v'
// and '\f' are skipped between words but do not end one.
func endsWord(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t'
}

// splitArgs appends the arguments of an inline line to cmd.Args, following
// redis-server's sdssplitargs: words are separated by spaces; "double
// quotes" understand \n \r \t \b \a, \xHH and \<any byte>; 'single quotes'
// understand only \'; a closing quote must be followed by a space or the
// end of the line; quotes may start mid-word (a"b c" is one argument).
// Plain words alias line; unquoted ones are built in cmd.quoted, which is
// sized up front so building one never moves another.
func splitArgs(line []byte, lim *protocol.Limits, cmd *Command) error {
	quoted := cmd.quoted[:0]
	p := 0
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if p == len(line) {
			cmd.quoted = quoted
			return nil
		}
		if len(cmd.Args) >= lim.MaxArgs {
			return newError(msgBigInline, true)
		}
		start := p
		for p < len(line) && !endsWord(line[p]) && line[p] != '"' && line[p] != '\'' {
			p++
		}
		if p == len(line) || endsWord(line[p]) {
			if p-start > lim.MaxBulk {
				return newError(msgBigInline, true)
			}
			cmd.Args = append(cmd.Args, line[start:p:p])
			continue
		}
		// A quote: unquote into cmd.quoted.
		if quoted == nil || cap(quoted) < len(line) {
			quoted = make([]byte, 0, len(line))
		}
		qs := len(quoted)
		quoted = append(quoted, line[start:p]...)
		var err error
		if quoted, p, err = unquote(line, p, quoted); err != nil {
			return err
		}
		if len(quoted)-qs > lim.MaxBulk {
			return newError(msgBigInline, true)
		}
		cmd.Args = append(cmd.Args, quoted[qs:len(quoted):len(quoted)])
	}
}

// unquote reads the quoted part of a word starting at the quote line[p],
// appending its bytes to dst. It returns the offset after the closing
// quote.
func unquote(line []byte, p int, dst []byte) ([]byte, int, error) {
	q := line[p]
	p++
	for {
		if p == len(line) {
			return dst, p, newError(msgUnbalancedQuotes, false)
		}
		c := line[p]
		switch {
		case c == q:
			// The closing quote must end the word.
			if p+1 < len(line) && !isSpace(line[p+1]) {
				return dst, p, newError(msgUnbalancedQuotes, false)
			}
			return dst, p + 1, nil
		case c != '\\' || p+1 == len(line):
			dst = append(dst, c)
			p++
		case q == '\'':
			if line[p+1] == '\'' {
				dst = append(dst, '\'')
				p += 2
			} else {
				dst = append(dst, c)
				p++
			}
		case line[p+1] == 'x' && p+3 < len(line) && isHex(line[p+2]) && isHex(line[p+3]):
			dst = append(dst, unhex(line[p+2])<<4|unhex(line[p+3]))
			p += 4
		default:
			switch e := line[p+1]; e {
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'b':
				dst = append(dst, '\b')
			case 'a':
				dst = append(dst, '\a')
			default:
				dst = append(dst, e)
			}
			p += 2
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

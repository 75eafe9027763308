package memcache

import (
	"bytes"
	"math"

	"github.com/walnutproxy/walnut/protocol"
)

// Response classifies a memcached response line.
type Response uint8

// The kinds of response line ClassifyResponse tells apart.
const (
	RespInvalid     Response = iota // not a memcached response line
	RespValue                       // VALUE <key> <flags> <bytes> [<cas>], followed by a data block
	RespEnd                         // END
	RespStored                      // STORED
	RespNotStored                   // NOT_STORED
	RespExists                      // EXISTS
	RespNotFound                    // NOT_FOUND
	RespDeleted                     // DELETED
	RespTouched                     // TOUCHED
	RespNumber                      // the decimal result of incr or decr
	RespVersion                     // VERSION <version>
	RespOK                          // OK (flush_all, verbosity, stats detail)
	RespReset                       // RESET (stats reset)
	RespStat                        // STAT <name> <value>
	RespMeta                        // a meta command reply: VA, HD, EN, NF, NS, EX, MN, ME
	RespError                       // ERROR
	RespClientError                 // CLIENT_ERROR <message>
	RespServerError                 // SERVER_ERROR <message>
	numResponses
)

// responseNames holds the wire word of each Response. It is read-only.
var responseNames = [numResponses]string{
	RespInvalid:     "invalid",
	RespValue:       "VALUE",
	RespEnd:         "END",
	RespStored:      "STORED",
	RespNotStored:   "NOT_STORED",
	RespExists:      "EXISTS",
	RespNotFound:    "NOT_FOUND",
	RespDeleted:     "DELETED",
	RespTouched:     "TOUCHED",
	RespNumber:      "number",
	RespVersion:     "VERSION",
	RespOK:          "OK",
	RespReset:       "RESET",
	RespStat:        "STAT",
	RespMeta:        "meta",
	RespError:       "ERROR",
	RespClientError: "CLIENT_ERROR",
	RespServerError: "SERVER_ERROR",
}

// String returns the response's first word as memcached sends it
// ("STORED", "VALUE"), or "number", "meta" or "invalid".
func (r Response) String() string {
	if r < numResponses {
		return responseNames[r]
	}
	return "invalid"
}

// IsError reports whether r is ERROR, CLIENT_ERROR or SERVER_ERROR. Such a
// reply can answer any request and is data to forward, not a broken
// connection.
func (r Response) IsError() bool {
	return r == RespError || r == RespClientError || r == RespServerError
}

// ClassifyResponse classifies the response line at the start of b. The
// line may be given with or without its CRLF, and anything after the
// line is ignored. It does not check the rest of the line: use
// FrameResponse or ParseValue for that.
func ClassifyResponse(b []byte) Response {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return classifyLine(b)
}

// classifyLine classifies a response line given without its CRLF.
func classifyLine(b []byte) Response {
	word, rest := b, false
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		word, rest = b[:i], true
	}
	switch string(word) {
	case "VALUE":
		return pick(rest, RespValue)
	case "END":
		return pick(!rest, RespEnd)
	case "STORED":
		return pick(!rest, RespStored)
	case "NOT_STORED":
		return pick(!rest, RespNotStored)
	case "EXISTS":
		return pick(!rest, RespExists)
	case "NOT_FOUND":
		return pick(!rest, RespNotFound)
	case "DELETED":
		return pick(!rest, RespDeleted)
	case "TOUCHED":
		return pick(!rest, RespTouched)
	case "VERSION":
		return pick(rest, RespVersion)
	case "OK":
		return pick(!rest, RespOK)
	case "RESET":
		return pick(!rest, RespReset)
	case "STAT":
		return pick(rest, RespStat)
	case "VA", "HD", "EN", "NF", "NS", "EX", "MN", "ME":
		return RespMeta
	case "ERROR":
		return RespError
	case "CLIENT_ERROR":
		return RespClientError
	case "SERVER_ERROR":
		return RespServerError
	}
	if _, ok := parseUint(word, math.MaxUint64); ok && !rest {
		return RespNumber
	}
	return RespInvalid
}

// pick returns r if ok, else RespInvalid.
func pick(ok bool, r Response) Response {
	if ok {
		return r
	}
	return RespInvalid
}

// A Value is one VALUE block of a get, gets, gat or gats response. Its
// slices alias the parsed input.
type Value struct {
	Key    []byte
	Flags  uint32
	Bytes  int    // length of Data
	Cas    uint64 // cas unique, if HasCas
	HasCas bool   // the VALUE line carried a cas unique (gets, gats)
	Data   []byte // the data block without its CRLF
	Raw    []byte // the whole block: VALUE line, data and CRLF
}

// ParseValue parses the VALUE block at the start of b into v and returns
// its length; n == 0 with a nil error means b holds only part of it. The
// slices in v alias b.
//
// It is meant for taking a framed get response apart (for example to
// merge the fragments of a multi-key get): loop while ClassifyResponse
// reports RespValue, and stop at RespEnd. A line that is not a valid
// VALUE line, or a data block not followed by CRLF, is an error: a
// *protocol.Error with Reply "SERVER_ERROR Invalid argument" (what
// twemproxy answers for invalid server output). A data block longer than
// lim.MaxBulk, or a line longer than lim.MaxLine, is reported with
// TooLarge set before anything is read past the line. Such errors mean the
// server connection is out of sync and must be closed.
func ParseValue(b []byte, lim protocol.Limits, v *Value) (n int, err error) {
	n, _, err = parseValue(b, lim.WithDefaults(), v)
	return n, err
}

// parseValue is ParseValue with lim defaulted, also returning the total
// length of an incomplete block once its line is complete.
func parseValue(b []byte, lim protocol.Limits, v *Value) (n, need int, err error) {
	line, n, err := responseLine(b, lim)
	if n == 0 {
		*v = Value{}
		return 0, 0, err
	}
	return parseValueAt(b, line, n, lim, v)
}

// parseValueAt parses a VALUE block whose line (n bytes with CRLF) is
// line.
func parseValueAt(b, line []byte, n int, lim protocol.Limits, v *Value) (int, int, error) {
	*v = Value{}
	h, err := parseValueLine(line, n, lim)
	if err != nil {
		return 0, 0, err
	}
	total := n + h.size + 2
	if len(b) < total {
		return 0, total, nil
	}
	if b[total-2] != '\r' || b[total-1] != '\n' {
		return 0, 0, errInvalid()
	}
	*v = Value{
		Key:    h.key,
		Flags:  h.flags,
		Bytes:  h.size,
		Cas:    h.cas,
		HasCas: h.hasCas,
		Data:   b[n : n+h.size : n+h.size],
		Raw:    b[:total:total],
	}
	return total, 0, nil
}

// valueHeader is a parsed VALUE line.
type valueHeader struct {
	key    []byte
	flags  uint32
	size   int
	cas    uint64
	hasCas bool
}

// parseValueLine parses "VALUE <key> <flags> <bytes> [<cas>]", a line of n
// bytes with its CRLF. It stores nothing, so that FrameResponse does not
// make its input escape.
func parseValueLine(line []byte, n int, lim protocol.Limits) (h valueHeader, err error) {
	if !bytes.HasPrefix(line, []byte("VALUE ")) {
		return h, errInvalid()
	}
	args := splitArgs(line, len("VALUE "))
	if args.n != 3 && args.n != 4 {
		return h, errInvalid()
	}
	h.key = clip(args.tok[0])
	if len(h.key) > MaxKeyLen {
		return h, errInvalid()
	}
	flags, ok := parseUint(args.tok[1], math.MaxUint32)
	if !ok {
		return h, errInvalid()
	}
	h.flags = uint32(flags)
	size, ok := parseUint(args.tok[2], maxDataLen)
	if !ok {
		return h, errInvalid()
	}
	h.size = int(size)
	if args.n == 4 {
		if h.cas, ok = parseUint(args.tok[3], math.MaxUint64); !ok {
			return h, errInvalid()
		}
		h.hasCas = true
	}
	if h.size > lim.MaxBulk || h.size > math.MaxInt-2-n {
		return h, newError(replyObjectTooLarge, true)
	}
	return h, nil
}

// responseLine returns the CRLF-terminated line at the start of b without
// its CRLF, and its length with the CRLF (0 if b holds no complete line).
// Server output must end lines with CRLF.
func responseLine(b []byte, lim protocol.Limits) (line []byte, n int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) >= lim.MaxLine {
			return nil, 0, newError(replyInvalid, true)
		}
		return nil, 0, nil
	}
	if i+1 > lim.MaxLine {
		return nil, 0, newError(replyInvalid, true)
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, errInvalid()
	}
	return b[: i-1 : i-1], i + 1, nil
}

// FrameResponse returns the length of the complete response to a request
// of command cmd at the start of b, or 0 if b holds only part of it. It
// checks the response's structure without materialising it:
//
//   - get, gets, gat, gats: VALUE blocks (at most lim.MaxArgs, with or
//     without cas) ended by END;
//   - set, add, replace, append, prepend, cas: STORED, NOT_STORED, EXISTS
//     or NOT_FOUND;
//   - delete: DELETED or NOT_FOUND; touch: TOUCHED or NOT_FOUND;
//   - incr, decr: a decimal number or NOT_FOUND;
//   - version: VERSION <version>; verbosity, flush_all: OK;
//   - stats: STAT (or other) lines ended by END, or a single OK or RESET;
//   - mg, ms, md, ma, mn, me: one meta reply line, a status code and
//     flags, with the codes memcached 1.6 answers each command with: mg
//     VA, HD or EN; ms HD, NS, EX or NF; md HD, NF or EX; ma VA, HD, NF,
//     NS or EX; me ME or EN; mn MN. VA is followed by its data block.
//     A quiet meta request (Request.Quiet) may get no reply at all: see
//     Request.Quiet;
//   - quit: nothing; any byte is an error;
//   - Unknown: nothing but an error line.
//
// An ERROR, CLIENT_ERROR or SERVER_ERROR line is a complete response to
// any command; after VALUE blocks it ends the get response too. Such a
// reply is data to forward, and the connection stays usable.
//
// Anything else is invalid server output and is reported as a
// *protocol.Error with Reply "SERVER_ERROR Invalid argument", twemproxy's
// answer to the client in that case; a line over lim.MaxLine or a value
// over lim.MaxBulk sets TooLarge (the Reply is then "SERVER_ERROR object
// too large for cache" for a value). After an error the server connection
// is out of sync and must be closed; what to tell the client is the
// caller's decision. n is never greater than len(b).
func FrameResponse(b []byte, cmd Command, lim protocol.Limits) (n int, err error) {
	n, _, err = frameResponse(b, cmd, lim.WithDefaults())
	return n, err
}

// FrameResponseHint is FrameResponse with a size hint for an incomplete
// response, as the pool's Framer contract allows: n > 0 is the length of
// the complete response, as FrameResponse returns it; n == 0 means
// incomplete, with no estimate; n < 0 means incomplete, and the response
// is at least -n bytes long, with -n > len(b). A caller can then read
// until it holds -n bytes before trying again, growing its buffer once,
// instead of framing again after every read.
//
// A hint is known once a VALUE line (or a meta VA line) is complete: it
// then covers that value's data block, plus the shortest possible END
// line of a retrieval response. It is a lower bound: -n is never larger
// than the complete response turns out to be. It is at most len(b) plus
// lim.MaxBulk and a few bytes: a caller that sizes a buffer from it
// allocates up to lim.MaxBulk on the word of a server's header line.
func FrameResponseHint(b []byte, cmd Command, lim protocol.Limits) (n int, err error) {
	n, need, err := frameResponse(b, cmd, lim.WithDefaults())
	if n == 0 && err == nil && need > len(b) {
		return -need, nil
	}
	return n, err
}

// frameResponse is FrameResponse with lim defaulted, also returning the
// length an incomplete response will at least have when it is known.
func frameResponse(b []byte, cmd Command, lim protocol.Limits) (n, need int, err error) {
	if cmd == Quit {
		if len(b) > 0 {
			return 0, 0, errInvalid()
		}
		return 0, 0, nil
	}
	line, n, err := responseLine(b, lim)
	if n == 0 {
		return 0, 0, err
	}
	r := classifyLine(line)
	if r.IsError() {
		return n, 0, nil
	}
	ok := false
	switch cmd {
	case Get, Gets, Gat, Gats:
		return frameValues(b, lim)
	case Set, Add, Replace, Append, Prepend, Cas:
		ok = r == RespStored || r == RespNotStored || r == RespExists || r == RespNotFound
	case Delete:
		ok = r == RespDeleted || r == RespNotFound
	case Touch:
		ok = r == RespTouched || r == RespNotFound
	case Incr, Decr:
		ok = r == RespNumber || r == RespNotFound
	case Version:
		ok = r == RespVersion
	case Verbosity, FlushAll:
		ok = r == RespOK
	case Stats:
		if r == RespOK || r == RespReset {
			return n, 0, nil
		}
		return frameLines(b, lim)
	case MetaGet, MetaSet, MetaDelete, MetaArithmetic, MetaNoop, MetaDebug:
		if r == RespMeta {
			return frameMeta(b, line, n, cmd, lim)
		}
	}
	if !ok {
		return 0, 0, errInvalid()
	}
	return n, 0, nil
}

// frameValues frames a retrieval response: VALUE blocks ended by END or
// by an error line.
func frameValues(b []byte, lim protocol.Limits) (int, int, error) {
	pos := 0
	for count := 0; ; count++ {
		line, n, err := responseLine(b[pos:], lim)
		if n == 0 {
			return 0, 0, err
		}
		if !bytes.HasPrefix(line, []byte("VALUE ")) {
			if r := classifyLine(line); r == RespEnd || r.IsError() {
				return pos + n, 0, nil
			}
			return 0, 0, errInvalid()
		}
		if count >= lim.MaxArgs {
			return 0, 0, newError(replyInvalid, true)
		}
		h, err := parseValueLine(line, n, lim)
		if err != nil {
			return 0, 0, err
		}
		end := pos + n + h.size + 2
		if len(b) < end {
			// At least an "END\r\n" follows the block.
			return 0, end + len("END\r\n"), nil
		}
		if b[end-2] != '\r' || b[end-1] != '\n' {
			return 0, 0, errInvalid()
		}
		pos = end
	}
}

// frameLines frames a stats response: lines ended by END.
func frameLines(b []byte, lim protocol.Limits) (int, int, error) {
	pos := 0
	for count := 0; ; count++ {
		line, n, err := responseLine(b[pos:], lim)
		if n == 0 {
			return 0, 0, err
		}
		pos += n
		if string(line) == "END" {
			return pos, 0, nil
		}
		if count >= lim.MaxArgs {
			return 0, 0, newError(replyInvalid, true)
		}
		if len(line) == 0 || classifyLine(line).IsError() {
			return 0, 0, errInvalid()
		}
	}
}

// frameMeta frames a meta reply to cmd whose first line (n bytes) is
// line, classified RespMeta: VA <size> <flags>* is followed by a data
// block.
func frameMeta(b, line []byte, n int, cmd Command, lim protocol.Limits) (int, int, error) {
	word, p := nextToken(line, 0)
	if !metaReplyFits(cmd, word) {
		return 0, 0, errInvalid()
	}
	if string(word) != "VA" {
		return n, 0, nil
	}
	tok, _ := nextToken(line, p)
	size, ok := parseUint(tok, maxDataLen)
	if !ok {
		return 0, 0, errInvalid()
	}
	if int(size) > lim.MaxBulk || int(size) > math.MaxInt-2-n {
		return 0, 0, newError(replyObjectTooLarge, true)
	}
	total := n + int(size) + 2
	if len(b) < total {
		return 0, total, nil
	}
	if b[total-2] != '\r' || b[total-1] != '\n' {
		return 0, 0, errInvalid()
	}
	return total, 0, nil
}

// metaReplyFits reports whether the meta status code word answers the
// meta command cmd, as memcached 1.6.18's proto_text.c answers it: mg
// with VA (hit, v flag), HD (hit) or EN (miss); ms with HD (stored), NS
// (not stored), EX (cas mismatch) or NF (cas on a missing item); md with
// HD, NF or EX; ma with VA, HD, NF, NS (autovivify failed) or EX; me with
// ME or EN; mn with MN.
func metaReplyFits(cmd Command, word []byte) bool {
	switch string(word) {
	case "VA":
		return cmd == MetaGet || cmd == MetaArithmetic
	case "HD":
		return cmd == MetaGet || cmd == MetaSet || cmd == MetaDelete || cmd == MetaArithmetic
	case "EN":
		return cmd == MetaGet || cmd == MetaDebug
	case "NF", "EX":
		return cmd == MetaSet || cmd == MetaDelete || cmd == MetaArithmetic
	case "NS":
		return cmd == MetaSet || cmd == MetaArithmetic
	case "ME":
		return cmd == MetaDebug
	case "MN":
		return cmd == MetaNoop
	}
	return false
}

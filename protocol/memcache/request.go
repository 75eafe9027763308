package memcache

import (
	"bytes"
	"math"
	"slices"

	"github.com/walnutproxy/walnut/protocol"
)

// MaxKeyLen is the longest key memcached accepts, in bytes
// (KEY_MAX_LENGTH).
const MaxKeyLen = 250

// maxDataLen is the largest data block memcached can be asked for: it
// reads <bytes> into an int32 and refuses values above INT_MAX-2.
const maxDataLen = math.MaxInt32 - 2

// maxMetaTokens is the number of tokens (command included) from which
// memcached answers ms with "options flags too long" (MFLAG_MAX_OPT_LENGTH
// counts the terminal token too).
const maxMetaTokens = 20

// A Request is one client request, as parsed by ParseRequest or read by a
// Reader. Its slices alias the parsed input and are valid only as long as
// that input is: for a Reader, until its next call.
type Request struct {
	// Command is the request's command; Unknown for a line memcached
	// would answer with ERROR.
	Command Command
	// Keys holds every key of get, gets, gat and gats (none for gat and
	// gats without keys, which memcached answers with END), and the one
	// key of every other command that takes one. Version, quit,
	// verbosity, flush_all, stats and mn have none. Keys satisfy ValidKey:
	// 1 to MaxKeyLen bytes, with no space, CR, LF or NUL.
	Keys [][]byte
	// Flags is the client flags of a storage command.
	Flags uint32
	// Exptime is the expiration time of a storage command, touch, gat
	// and gats, and the delay of flush_all. It may be negative (expire
	// immediately), as memcached allows.
	Exptime int64
	// Bytes is the length of the data block of a storage command or ms.
	Bytes int
	// Cas is the cas unique of a cas command.
	Cas uint64
	// Delta is the value of incr and decr, and the level of verbosity.
	Delta uint64
	// Noreply is set when the request ends with the noreply token, so
	// memcached sends no reply to it, not even an error reply (only
	// storage commands, cas, incr, decr, touch, delete, verbosity and
	// flush_all take noreply; the meta commands have Quiet instead).
	Noreply bool
	// Quiet is set when mg, ms, md or ma carries the q flag: a flag
	// token starting with 'q' (memcached reads a flag by its first byte;
	// the flags follow the key, and for ms the datalen). In quiet mode
	// memcached 1.6.18 suppresses only the nominal reply, so whether a
	// quiet request is answered depends on its outcome:
	//
	//   - mg: EN (a miss) is suppressed; a hit (VA or HD) is sent;
	//   - ms: HD (stored) is suppressed; NS, EX and NF are sent;
	//   - md: HD (deleted, or marked stale with I) is suppressed; NF
	//     and EX are sent;
	//   - ma: the HD or VA of an existing item's update is suppressed;
	//     NF, NS, EX, and the HD or VA of an item created by the N flag,
	//     are sent.
	//
	// Errors (ERROR, CLIENT_ERROR, SERVER_ERROR) are always sent:
	// memcached's out_errstring clears the quiet mode for them, and a
	// duplicate or unknown flag is such an error. me and mn have no q
	// flag. A proxy that pairs replies with requests in order therefore
	// must not forward a quiet meta request, or must follow a batch of
	// them with mn and take every reply before MN as belonging to that
	// batch. walnut's proxy refuses all meta commands, as twemproxy
	// does.
	Quiet bool
	// Data is the data block of a storage command or ms, without its
	// CRLF.
	Data []byte
	// Raw is the exact bytes consumed: the request line with its line
	// ending and, for a storage command or ms, the data block with its
	// CRLF. The arguments of stats and the flags of the meta commands are
	// available only here.
	Raw []byte
	// Discard is set only together with the "object too large" error: it
	// is the number of bytes that follow Raw (the data block and its
	// CRLF) that memcached reads and throws away before it reads the
	// next command. A Reader discards them itself.
	Discard int
}

// ParseRequest parses the request at the start of b into req, reusing the
// capacity of req.Keys, and returns the number of bytes it consumed. The
// slices in req alias b.
//
// The results mean:
//
//   - n == 0, err == nil: b holds no complete request yet; read more and
//     call again. The contents of req are unspecified.
//   - n > 0, err == nil: req holds one request of n bytes (req.Raw).
//   - n > 0, err != nil: the input was rejected but consumed exactly as
//     memcached consumes it, so the stream is still in sync: send the
//     error's Reply (unless req.Noreply is set: memcached stays silent
//     then; req.Noreply is never set for a meta command, because
//     memcached sends every error of a meta command even when the
//     request is Quiet), skip req.Discard further bytes, and go on with
//     b[n:].
//     req.Raw is b[:n] and req.Command is the command, if recognised.
//   - n == 0, err != nil: the stream cannot be resynchronised (a line
//     over its limit, or an HTTP request line): send the Reply if
//     wanted and close the connection, as memcached does.
//
// In short, after an error the stream is in sync exactly when n > 0
// (req.Raw is not empty). Every error is a
// *protocol.Error of Kind protocol.Memcache whose Reply is memcached
// 1.6's answer to the same input:
//
//   - "ERROR" for an unknown command, an empty line or a wrong number of
//     arguments (n > 0); also for a line whose last token starts with
//     "HTTP/" (n == 0), on which memcached closes without replying;
//   - "CLIENT_ERROR bad command line format" for a bad key or number, and
//     memcached's other CLIENT_ERROR wordings where it has one (invalid
//     exptime argument, invalid numeric delta argument, the delete usage
//     line, options flags too long) (n > 0). As in memcached, the data
//     block of a rejected storage line is not skipped: it is parsed as
//     the next request;
//   - "CLIENT_ERROR bad data chunk" when the data block does not end in
//     CRLF after <bytes> bytes; n covers the line and <bytes>+2 bytes, as
//     memcached reads them. Clients rarely recover from this, so a proxy
//     may prefer to close (twemproxy does);
//   - "SERVER_ERROR object too large for cache", with TooLarge set, for a
//     data block longer than lim.MaxBulk; n covers the line only and
//     req.Discard is <bytes>+2;
//   - "CLIENT_ERROR too many keys", TooLarge, for more than lim.MaxArgs
//     keys (n > 0);
//   - "CLIENT_ERROR line too long", TooLarge, when no line end is found
//     within lim.MaxLine bytes (n == 0), or, for a line that starts with
//     get, gets, gat or gats and a space (after at most 100 spaces),
//     within the larger of lim.MaxLine and lim.MaxRequest bytes: a
//     multi-get of thousands of keys is one long line, which memcached
//     reads whatever its length of get and gets. memcached closes the
//     connection, without a reply, once more than 2 KiB of a line of any
//     other command (gat and gats included) are buffered without its end.
//
// Limits are checked before anything is allocated; req.Keys grows only to
// hold keys that are already in b.
func ParseRequest(b []byte, lim protocol.Limits, req *Request) (n int, err error) {
	n, _, err = parseRequest(b, lim.WithDefaults(), req)
	return n, err
}

// parseRequest is ParseRequest with lim already defaulted. For an
// incomplete storage request whose line is complete it also returns need,
// the length the whole request will have.
func parseRequest(b []byte, lim protocol.Limits, req *Request) (n, need int, err error) {
	*req = Request{Keys: req.Keys[:0]}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if lineTooLong(b, len(b)+1, lim) {
			return 0, 0, newError(replyLineTooLong, true)
		}
		return 0, 0, nil
	}
	n = i + 1
	if lineTooLong(b, n, lim) {
		return 0, 0, newError(replyLineTooLong, true)
	}
	line := b[:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	tok, p := nextToken(line, 0)
	cmd := lookupCommand(tok)
	req.Command = cmd

	switch cmd {
	case Get, Gets:
		err = parseKeys(line, p, lim, req)
		if err == nil && len(req.Keys) == 0 {
			err = newError(replyError, false)
		}
	case Gat, Gats:
		tok, p = nextToken(line, p)
		if len(tok) == 0 {
			err = newError(replyError, false)
			break
		}
		var ok bool
		if req.Exptime, ok = parseInt(tok); !ok {
			err = newError(replyBadExptime, false)
			break
		}
		err = parseKeys(line, p, lim, req)
	case Unknown:
		if isHTTP(line) {
			// memcached closes on "GET / HTTP/1.1" and the like.
			return 0, 0, newError(replyError, false)
		}
		err = newError(replyError, false)
	case Version, Quit, Stats, MetaNoop:
		// memcached ignores any arguments of version, quit and mn; those
		// of stats are left in Raw.
	default:
		args := splitArgs(line, p)
		switch cmd {
		case MetaGet, MetaDelete, MetaArithmetic:
			req.Quiet = hasQuietFlag(line, p, 1) // flags follow <key>
		case MetaSet:
			req.Quiet = hasQuietFlag(line, p, 2) // flags follow <key> <datalen>
		}
		if cmd == MetaSet || cmd.IsStorage() {
			return parseStorage(b, n, lim, &args, req)
		}
		err = parseArgs(&args, req)
	}
	req.Raw = b[:n:n]
	return n, 0, err
}

// maxLeadingSpaces is the most spaces before a command token that
// lineTooLong looks past to recognise a retrieval command (memcached looks
// past 100).
const maxLeadingSpaces = 100

// retrievalWords are the starts of the lines that lineTooLong bounds by
// MaxRequest.
var retrievalWords = [...]string{"get ", "gets ", "gat ", "gats "}

// lineTooLong reports whether a line of n bytes (CRLF included), starting
// at the start of b, is over its limit: lim.MaxLine, or, for a line that
// starts with get, gets, gat or gats and a space after at most
// maxLeadingSpaces spaces (lines memcached does not bound), the larger of
// lim.MaxLine and lim.MaxRequest. For an incomplete line, b is what has
// arrived and n is len(b)+1; while b is too short to tell the command
// (at most maxLeadingSpaces+5 bytes), the line is not too long yet, so that
// the answer does not depend on how the line arrives.
func lineTooLong(b []byte, n int, lim protocol.Limits) bool {
	if n <= lim.MaxLine {
		return false
	}
	if n > lim.MaxRequest {
		return true
	}
	p := 0
	for p < len(b) && b[p] == ' ' {
		if p == maxLeadingSpaces {
			return true
		}
		p++
	}
	rest := b[p:]
	for _, w := range retrievalWords {
		if bytes.HasPrefix(rest, []byte(w)) || len(rest) < len(w) && w[:len(rest)] == string(rest) {
			return false // a retrieval line, or possibly one
		}
	}
	return true
}

// maxArgs is the most arguments any fixed-form command takes (cas with
// noreply); argList keeps that many and counts the rest.
const maxArgs = 6

// argList holds the arguments that follow a command token.
type argList struct {
	tok [maxArgs][]byte
	n   int // number of arguments, including any beyond maxArgs
}

// splitArgs collects the space-separated tokens of line from p on. It
// returns the list by value, so that line does not escape.
func splitArgs(line []byte, p int) (a argList) {
	for {
		var tok []byte
		tok, p = nextToken(line, p)
		if len(tok) == 0 {
			return a
		}
		if a.n < maxArgs {
			a.tok[a.n] = tok
		}
		a.n++
	}
}

// noreply reports whether the last argument is "noreply"; memcached's
// set_noreply_maybe looks at that token whatever the command's form.
func (a *argList) noreply() bool {
	return a.n > 0 && a.n <= maxArgs && string(a.tok[a.n-1]) == "noreply"
}

// parseArgs parses the arguments of the commands without a data block and
// with a fixed form: incr, decr, touch, delete, verbosity, flush_all and
// the meta commands other than ms and mn.
func parseArgs(a *argList, req *Request) error {
	var ok bool
	switch req.Command {
	case Incr, Decr, Touch:
		if a.n != 2 && a.n != 3 {
			return newError(replyError, false)
		}
		req.Noreply = a.noreply()
		if !ValidKey(a.tok[0]) {
			return newError(replyBadFormat, false)
		}
		req.Keys = append(req.Keys, clip(a.tok[0]))
		if req.Command == Touch {
			if req.Exptime, ok = parseInt(a.tok[1]); !ok {
				return newError(replyBadExptime, false)
			}
		} else if req.Delta, ok = parseUint(a.tok[1], math.MaxUint64); !ok {
			return newError(replyBadDelta, false)
		}
	case Delete:
		if a.n < 1 || a.n > 3 {
			return newError(replyError, false)
		}
		if a.n > 1 {
			// delete <key> 0, delete <key> noreply, delete <key> 0 noreply.
			holdZero := string(a.tok[1]) == "0"
			req.Noreply = a.noreply()
			if !(a.n == 2 && (holdZero || req.Noreply) || a.n == 3 && holdZero && req.Noreply) {
				return newError(replyBadDelete, false)
			}
		}
		if !ValidKey(a.tok[0]) {
			return newError(replyBadFormat, false)
		}
		req.Keys = append(req.Keys, clip(a.tok[0]))
	case Verbosity:
		if a.n != 1 && a.n != 2 {
			return newError(replyError, false)
		}
		req.Noreply = a.noreply()
		if req.Delta, ok = parseUint(a.tok[0], math.MaxUint32); !ok {
			return newError(replyBadFormat, false)
		}
	case FlushAll:
		if a.n > 2 {
			return newError(replyError, false)
		}
		req.Noreply = a.noreply()
		if a.n == 2 || a.n == 1 && !req.Noreply {
			if req.Exptime, ok = parseInt(a.tok[0]); !ok {
				return newError(replyBadExptime, false)
			}
		}
	case MetaDebug:
		if a.n < 1 || !ValidKey(a.tok[0]) {
			return newError(replyBadFormat, false)
		}
		req.Keys = append(req.Keys, clip(a.tok[0]))
	default: // MetaGet, MetaDelete, MetaArithmetic
		if a.n < 1 {
			return newError(replyError, false)
		}
		if !ValidKey(a.tok[0]) {
			return newError(replyBadFormat, false)
		}
		req.Keys = append(req.Keys, clip(a.tok[0]))
	}
	return nil
}

// parseStorage parses a storage command or ms whose line (n bytes,
// arguments a) is complete, and its data block.
func parseStorage(b []byte, n int, lim protocol.Limits, a *argList, req *Request) (int, int, error) {
	req.Raw = b[:n:n]
	fail := func(reply string) (int, int, error) { return n, 0, newError(reply, false) }
	var (
		bytesTok []byte
		ok       bool
	)
	if req.Command == MetaSet {
		// ms <key> <datalen> <flags>*, checked in memcached's order.
		if a.n < 1 {
			return fail(replyError)
		}
		if !ValidKey(a.tok[0]) || a.n == 1 {
			return fail(replyBadFormat)
		}
		if a.n+1 >= maxMetaTokens {
			return fail(replyFlagsTooLong)
		}
		bytesTok = a.tok[1]
	} else {
		want := 4
		if req.Command == Cas {
			want = 5
		}
		if a.n != want && a.n != want+1 {
			return fail(replyError)
		}
		req.Noreply = a.noreply()
		if !ValidKey(a.tok[0]) {
			return fail(replyBadFormat)
		}
		var flags uint64
		if flags, ok = parseUint(a.tok[1], math.MaxUint32); !ok {
			return fail(replyBadFormat)
		}
		req.Flags = uint32(flags)
		if req.Exptime, ok = parseInt(a.tok[2]); !ok {
			return fail(replyBadFormat)
		}
		bytesTok = a.tok[3]
		if req.Command == Cas {
			if req.Cas, ok = parseUint(a.tok[4], math.MaxUint64); !ok {
				return fail(replyBadFormat)
			}
		}
	}
	req.Keys = append(req.Keys, clip(a.tok[0]))
	size, ok := parseInt(bytesTok)
	if !ok || size < 0 || size > maxDataLen {
		return fail(replyBadFormat)
	}
	req.Bytes = int(size)
	if req.Bytes > lim.MaxBulk || req.Bytes > math.MaxInt-2-n {
		req.Discard = req.Bytes + 2
		return n, 0, newError(replyObjectTooLarge, true)
	}
	total := n + req.Bytes + 2
	if len(b) < total {
		return 0, total, nil
	}
	req.Raw = b[:total:total]
	if b[total-2] != '\r' || b[total-1] != '\n' {
		return total, 0, newError(replyBadChunk, false)
	}
	req.Data = b[n : n+req.Bytes : n+req.Bytes]
	return total, 0, nil
}

// hasQuietFlag reports whether a token of line from p on, after the first
// skip tokens, starts with 'q': the q flag of a meta command, as
// memcached's _meta_flag_preparse recognises flags by their first byte.
func hasQuietFlag(line []byte, p, skip int) bool {
	for i := 0; ; i++ {
		var tok []byte
		tok, p = nextToken(line, p)
		if len(tok) == 0 {
			return false
		}
		if i >= skip && tok[0] == 'q' {
			return true
		}
	}
}

// presizeKeys is the length of keys from which parseKeys counts them
// first and grows req.Keys once: appending to a slice of many keys one at
// a time would leave several times its size in discarded arrays.
const presizeKeys = 4 << 10

// parseKeys appends the keys in line from p on to req.Keys.
func parseKeys(line []byte, p int, lim protocol.Limits, req *Request) error {
	if len(line)-p >= presizeKeys {
		n := 0
		for q := p; ; n++ {
			var tok []byte
			if tok, q = nextToken(line, q); len(tok) == 0 {
				break
			}
		}
		req.Keys = slices.Grow(req.Keys, max(0, min(n, lim.MaxArgs)-len(req.Keys)))
	}
	for {
		var key []byte
		key, p = nextToken(line, p)
		if len(key) == 0 {
			return nil
		}
		if !ValidKey(key) {
			return newError(replyBadFormat, false)
		}
		if len(req.Keys) >= lim.MaxArgs {
			return newError(replyTooManyKeys, true)
		}
		req.Keys = append(req.Keys, clip(key))
	}
}

// ValidKey reports whether key is a key memcached takes: 1 to MaxKeyLen
// bytes, none of them a space, CR, LF or NUL. Every other byte is allowed,
// control bytes such as 0x01, tab or 0x7F and bytes 0x80-0xFF included:
// memcached stores such keys and twemproxy forwards them.
func ValidKey(key []byte) bool {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return false
	}
	for _, c := range key {
		switch c {
		case ' ', '\r', '\n', 0:
			return false
		}
	}
	return true
}

// nextToken returns the token of line that starts at or after p, skipping
// spaces (memcached separates tokens with spaces only), and the position
// after it. At the end of line it returns an empty token.
func nextToken(line []byte, p int) ([]byte, int) {
	for p < len(line) && line[p] == ' ' {
		p++
	}
	start := p
	for p < len(line) && line[p] != ' ' {
		p++
	}
	return line[start:p], p
}

// isHTTP reports whether the last token of line starts with "HTTP/", which
// makes memcached close the connection.
func isHTTP(line []byte) bool {
	line = bytes.TrimRight(line, " ")
	last := line[bytes.LastIndexByte(line, ' ')+1:]
	return bytes.HasPrefix(last, []byte("HTTP/"))
}

// clip limits b's capacity to its length, so that appending to an aliased
// slice cannot overwrite the input.
func clip(b []byte) []byte { return b[:len(b):len(b)] }

// parseUint parses a decimal number of at most max, digits only.
func parseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt parses a decimal int64 with an optional leading '-'.
func parseInt(b []byte) (int64, bool) {
	if len(b) > 0 && b[0] == '-' {
		v, ok := parseUint(b[1:], -math.MinInt64)
		return int64(-v), ok
	}
	v, ok := parseUint(b, math.MaxInt64)
	return int64(v), ok
}

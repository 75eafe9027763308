package resp

import "github.com/walnutproxy/walnut/protocol"

// Request errors, worded exactly as redis-server 7 words them
// (networking.c, processInlineBuffer and processMultibulkBuffer). The client
// receives "-" + the text + CRLF.
const (
	msgInvalidMultibulk = "ERR Protocol error: invalid multibulk length"
	msgInvalidBulk      = "ERR Protocol error: invalid bulk length"
	msgUnbalancedQuotes = "ERR Protocol error: unbalanced quotes in request"
	msgBigInline        = "ERR Protocol error: too big inline request"
	msgBigMultibulk     = "ERR Protocol error: too big mbulk count string"
	msgBigBulk          = "ERR Protocol error: too big bulk count string"
	msgExpectedDollar   = "ERR Protocol error: expected '$', got '"
)

// Reply errors. redis-server never parses replies, so these are walnut's
// own words, in the same style.
const (
	msgUnexpectedType = "ERR Protocol error: unexpected reply type '"
	msgInvalidInt     = "ERR Protocol error: invalid integer"
	msgInvalidBool    = "ERR Protocol error: invalid boolean"
	msgInvalidNull    = "ERR Protocol error: invalid null"
	msgMissingCRLF    = "ERR Protocol error: missing CRLF"
	msgBigLine        = "ERR Protocol error: too big reply line"
	msgTooDeep        = "ERR Protocol error: too deep nesting"
	msgInconsistent   = "ERR Protocol error: inconsistent reply"
)

// newError returns a fresh *protocol.Error: errors are never shared
// package-level values, so a caller may keep or modify one safely.
func newError(reply string, tooLarge bool) error {
	return &protocol.Error{Kind: protocol.Redis, Reply: reply, TooLarge: tooLarge}
}

// byteError returns the error prefix + c + "'", mapping CR and LF to a
// space as redis-server's addReplyErrorFormat does so the reply stays one
// line. Other bytes, including those ≥ 0x80, are kept raw.
func byteError(prefix string, c byte) error {
	if c == '\r' || c == '\n' {
		c = ' '
	}
	return newError(prefix+string([]byte{c})+"'", false)
}

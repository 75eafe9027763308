package memcache

import "github.com/walnutproxy/walnut/protocol"

// Replies carried by the *protocol.Error values this package returns. All
// but lineTooLong and tooManyKeys are memcached 1.6's own words; those two
// cover limits memcached does not have (it closes the connection on a long
// line and has no key count limit).
const (
	replyError          = "ERROR"
	replyBadFormat      = "CLIENT_ERROR bad command line format"
	replyBadDelete      = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyBadChunk       = "CLIENT_ERROR bad data chunk"
	replyBadDelta       = "CLIENT_ERROR invalid numeric delta argument"
	replyBadExptime     = "CLIENT_ERROR invalid exptime argument"
	replyFlagsTooLong   = "CLIENT_ERROR options flags too long"
	replyLineTooLong    = "CLIENT_ERROR line too long"
	replyTooManyKeys    = "CLIENT_ERROR too many keys"
	replyObjectTooLarge = "SERVER_ERROR object too large for cache"
	replyInvalid        = "SERVER_ERROR Invalid argument"
)

// newError returns a memcache *protocol.Error with the given reply.
func newError(reply string, tooLarge bool) error {
	return &protocol.Error{Kind: protocol.Memcache, Reply: reply, TooLarge: tooLarge}
}

// errInvalid reports invalid server output.
func errInvalid() error { return newError(replyInvalid, false) }

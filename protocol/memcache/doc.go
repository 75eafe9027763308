// Package memcache implements the memcached text (ASCII) protocol for
// walnut's proxy and for in-process callers: it parses client requests,
// frames and takes apart server responses, and encodes both, without
// copying and, in the steady state, without allocating.
//
// The parsers are pure functions over a byte slice that report an
// incomplete frame by consuming nothing (n == 0 with a nil error):
// ParseRequest for requests, FrameResponse for the complete response to a
// given command (FrameResponseHint adds, for an incomplete one, the length
// it will at least have) and ParseValue for one VALUE block of a get
// response. A Reader does the buffering around them for an io.Reader;
// the Append functions and a Writer encode. Parsed values alias their
// input.
//
// The request parser accepts what memcached 1.6 accepts and answers
// malformed input with memcached's own reply, carried by a
// *protocol.Error ("ERROR", "CLIENT_ERROR bad command line format",
// "CLIENT_ERROR bad data chunk", "SERVER_ERROR object too large for
// cache", …); ParseRequest documents each reply and which of them leave
// the stream in sync. In particular it accepts, as memcached does:
// leading, trailing and repeated spaces; lines ended by "\n" alone; a
// negative exptime; "delete <key> 0"; an unrecognised token in place of
// noreply; keys with bytes 0x80-0xFF; gat and gats without keys. The q
// flag of the meta commands is decoded into Request.Quiet, which
// documents the replies memcached then leaves out.
//
// It deviates from memcached in these ways, all on input no real client
// sends:
//
//   - A key containing CR or NUL gets "CLIENT_ERROR bad command line
//     format": memcached takes a CR inside a line as part of a key, and
//     ends the whole line at a NUL byte. Keys with other control bytes
//     (tab, 0x01, 0x7F, …) are accepted, as memcached stores them and
//     twemproxy forwards them. (Tokens are separated by spaces only, as
//     in memcached: "get\tk" is an unknown command, "get a\tb" a get of
//     the key "a\tb".)
//   - Numbers are plain decimal digits (exptime may start with '-'):
//     memcached's strtol also takes a '+' sign and surrounding tabs.
//     Flags above 2^32-1 and lengths above 2^31-3 are rejected where
//     memcached silently truncates them.
//   - A line longer than Limits.MaxLine (64 KiB by default) is refused
//     with "CLIENT_ERROR line too long", except that a get, gets, gat or
//     gats line may be as long as Limits.MaxRequest (64 MiB by default),
//     and a get with more than Limits.MaxArgs keys is refused with
//     "CLIENT_ERROR too many keys". memcached closes a connection after
//     2 KiB without a line end, except for get and gets, whose lines are
//     unbounded (gat and gats are closed there too; walnut reads them as
//     long as get lines).
//   - Commands outside the set listed with Command (for example shutdown,
//     slabs, lru_crawler, watch, bget) are Unknown and get ERROR.
//
// Reference: memcached's protocol.txt and proto_text.c (1.6.18), whose
// replies the tests check against a running memcached.
package memcache

// Package resp implements the Redis serialization protocol (RESP2, with
// RESP3 replies understood) for both sides of a proxy and for in-process
// callers: parsing client commands, framing and parsing server replies,
// and encoding both.
//
// # Commands
//
// ParseCommand parses one command from a byte slice into a Command whose
// Args and Raw alias the input, exactly as redis-server 7 parses it: RESP
// arrays of bulk strings and inline commands (with redis-server's quoting
// rules), the same tolerances ("*0", "*-1" and empty inline lines are
// skipped; the two bytes after a bulk's data are not checked) and the same
// error replies, word for word ("ERR Protocol error: invalid bulk length"
// and so on), carried by *protocol.Error. An incomplete command is not an
// error: ParseCommand consumes nothing. A Reader does the same over an
// io.Reader; ReadCommands returns every complete command already buffered,
// for a proxy to dispatch as one batch before it flushes once.
//
// # Command table
//
// LookupCommand and ResolveCommand find a command in a table of
// redis-server 7's commands (Commands returns it) and describe it with a
// CommandInfo: its arity, flags and key positions, as COMMAND INFO reports
// them (a test compares every entry with a running redis-server). Keys
// lists the positions of a command's keys and validates a numkeys argument
// as redis-server does. The errors redis-server answers before running a
// command (unknown command or subcommand, wrong number of arguments, bad
// numkeys) are *CommandError values worded as redis-server words them.
// The table holds facts about Redis only: which commands a proxy forwards,
// splits, answers itself or refuses is the proxy's own policy (walnut's is
// in package proxy).
//
// # Replies
//
// FrameReply finds where the first reply in a byte slice ends without
// materialising it, for a proxy that forwards reply bytes unchanged. It
// walks nested aggregates iteratively, and knows every RESP3 type
// (including attributes and streamed frames) so that an unexpected reply
// never desynchronises the stream; FrameReplyHint also tells, for an
// incomplete reply whose bulk header has arrived, how long the reply will
// at least be, so that a caller framing from its own buffer can read on
// and grow that buffer once instead of framing again after every read.
// ParseReply, and Reader.ReadReply, materialise a reply as a Value tree
// for in-process callers and tests; an error reply is a Value, not a Go
// error.
//
// # Encoding
//
// The Append functions (AppendBulk, AppendArrayHeader, AppendCommand, …)
// encode onto a byte slice in the style of strconv. A Writer buffers the
// same encodings, and raw frames, in front of an io.Writer, with a sticky
// error and an explicit Flush.
//
// # Limits and memory
//
// Every parser takes protocol.Limits (zero fields mean the defaults) and
// checks each line length, bulk length, element count and nesting depth
// before allocating anything for it: "*999999999\r\n" or
// "$999999999\r\n" allocate nothing. Parsing the common commands into a
// reused Command, and framing a reply, allocate nothing at all. Buffers
// that grew for one large frame are dropped once it has been consumed.
//
// # Concurrency
//
// ParseCommand, FrameReply, ParseReply and the Append functions are pure
// and safe for concurrent use on distinct arguments. A Reader, Writer,
// Command or Value is not safe for concurrent use.
package resp

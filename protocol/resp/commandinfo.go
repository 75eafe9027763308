package resp

import (
	"slices"
	"strconv"
	"strings"
)

// Class says how a proxy routes a command: answer it itself, forward it
// whole to the server of one key, split it over the servers of its keys,
// or refuse it.
type Class uint8

// The routing classes. Keys reports the key positions of a command of any
// class.
const (
	// ClassUnsupported marks a command a sharding proxy cannot run
	// correctly. Reason says why; UnsupportedError is the reply to send,
	// keeping the connection open (twemproxy closes it).
	ClassUnsupported Class = iota

	// ClassLocal marks a command the proxy answers itself, never
	// forwarding it: PING, ECHO, QUIT, AUTH, SELECT, HELLO, RESET and the
	// CLIENT subcommands SETNAME, GETNAME and SETINFO. The answers are
	// expected to be:
	//
	//   - PING [message]: +PONG, or message as a bulk string. More than one
	//     argument is an arity error (ArityError), which redis-server
	//     checks inside the command, so CheckArity accepts it.
	//   - ECHO message: message as a bulk string.
	//   - QUIT: +OK (redis-server 7; twemproxy sends nothing), then close
	//     the connection once earlier replies are written.
	//   - AUTH [username] password: checked against the pool password as
	//     twemproxy does; more than two arguments is a syntax error.
	//   - SELECT index: +OK for 0 and an error for any other index: server
	//     connections are shared between clients, so a client cannot
	//     switch database (a pool's redis_db applies to every client).
	//     twemproxy closes the connection on any SELECT.
	//   - HELLO [protover [AUTH username password] [SETNAME name]]: the
	//     proxy chooses the client's protocol, since server connections
	//     are shared. HELLO 3 is answered "-NOPROTO unsupported protocol
	//     version" unless the proxy speaks RESP3 to clients; go-redis v9,
	//     which sends HELLO 3 on every new connection, then falls back to
	//     RESP2 and AUTH. HELLO and HELLO 2 get redis-server's RESP2 reply.
	//     AUTH and SETNAME act as the commands of the same name.
	//   - RESET: forget the client name and authentication; +RESET.
	//   - CLIENT SETNAME name, CLIENT GETNAME: a name kept per client
	//     connection. CLIENT SETINFO: +OK, and nothing is kept; go-redis v9
	//     sends CLIENT SETINFO LIB-NAME and LIB-VER on every new connection
	//     (and ignores errors), and redis-server 7.0 does not know it.
	ClassLocal

	// ClassKeyless marks a command without keys that any server can
	// answer: COMMAND (every subcommand), LOLWUT, TIME (which twemproxy
	// refuses) and the HELP subcommands of OBJECT, MEMORY, XGROUP and
	// XINFO. twemproxy sends COMMAND and LOLWUT to the server of the
	// literal key "placeholder", so always to the same server; a proxy
	// should do the same. The answer describes that server, not the
	// proxy: COMMAND also lists commands the proxy refuses.
	ClassKeyless

	// ClassSingleKey marks a command with one key, at FirstKey (1, or 2
	// for a subcommand such as OBJECT ENCODING key); no other argument is
	// a key. It is forwarded whole to the server of that key. SORT (BY,
	// GET and STORE patterns) and GEORADIUS and GEORADIUSBYMEMBER (STORE,
	// STOREDIST) can name further keys in options that the legacy key
	// positions do not cover; as in twemproxy, those must live on the
	// first key's server.
	ClassSingleKey

	// ClassFirstKey marks a command with several keys at fixed positions
	// or over a range (FirstKey, LastKey, Step), forwarded whole to the
	// server of the first key. It is correct only when every key lives on
	// that server, for example because all share a hash tag ({user1}:a,
	// {user1}:b); a proxy should check that with Keys and refuse the
	// command otherwise (twemproxy does not check). Examples: SDIFF,
	// SINTER, SUNION and their STORE forms, PFCOUNT, PFMERGE, COPY, LMOVE,
	// RPOPLPUSH, SMOVE, LCS, ZRANGESTORE, GEOSEARCHSTORE, and RENAME,
	// RENAMENX, MSETNX and BITOP, which twemproxy refuses.
	ClassFirstKey

	// ClassNumKeys marks a command whose keys are counted by a numkeys
	// argument at NumKeysIndex: 2 for EVAL, EVALSHA, FCALL and their _RO
	// forms and for ZUNIONSTORE, ZINTERSTORE and ZDIFFSTORE (whose
	// destination, at FirstKey 1, comes first); 1 for ZUNION, ZINTER,
	// ZDIFF, ZINTERCARD, SINTERCARD, LMPOP and ZMPOP. Routing is as for
	// ClassFirstKey: the whole command goes to the server of the first key
	// Keys returns, and every key must live there. Keys validates numkeys
	// and reports a bad one in redis-server's words. A script called with
	// numkeys 0 has no key and may go to any server, as for ClassKeyless
	// (twemproxy refuses it). twemproxy routes ZUNION, ZINTER and ZDIFF by
	// the numkeys argument itself, as if it were a key.
	ClassNumKeys

	// ClassMultiKey marks a command whose every argument from FirstKey on
	// is a key (Step 1): MGET, DEL, UNLINK, TOUCH and EXISTS. The proxy
	// splits it into one command per server and merges the replies: MGET
	// by position, the others by adding the integers. twemproxy does not
	// split EXISTS: it counts only the keys on the first key's server.
	ClassMultiKey

	// ClassMultiKeyValue marks a command of key/value pairs (Step 2):
	// MSET. The proxy splits it into one command per server, each key
	// with its value, and answers +OK once all succeed.
	ClassMultiKeyValue

	// ClassContainer marks a command whose second argument names a
	// subcommand: CLIENT, MEMORY, OBJECT, XGROUP and XINFO. Look the
	// subcommand up with Subcommand, or use ResolveCommand; each
	// subcommand has its own class, arity and key positions, counted from
	// the container's name (OBJECT ENCODING key has FirstKey 2). The other
	// containers of redis-server are refused as a whole (CONFIG, SCRIPT,
	// FUNCTION, ACL, CLUSTER, …), except COMMAND, which is forwarded as a
	// whole (ClassKeyless).
	ClassContainer
)

var commandClassNames = [...]string{
	ClassUnsupported:   "unsupported",
	ClassLocal:         "local",
	ClassKeyless:       "keyless",
	ClassSingleKey:     "single-key",
	ClassFirstKey:      "first-key",
	ClassNumKeys:       "numkeys",
	ClassMultiKey:      "multi-key",
	ClassMultiKeyValue: "multi-key-value",
	ClassContainer:     "container",
}

// String returns the class name in lower case, such as "single-key".
func (c Class) String() string {
	if int(c) < len(commandClassNames) {
		return commandClassNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// CommandFlags describe what a command does to the data, as the flags of
// the same names in redis-server's COMMAND reply do.
type CommandFlags uint8

// The command flags.
const (
	// FlagWrite marks a command that may modify data ("write").
	FlagWrite CommandFlags = 1 << iota
	// FlagReadOnly marks a command that only reads data ("readonly").
	FlagReadOnly
	// FlagBlocking marks a command that may block its connection
	// ("blocking").
	FlagBlocking
)

// numKeysStyle selects how Keys validates a numkeys argument; each style
// reproduces the checks, and the error texts, of one redis-server
// implementation.
type numKeysStyle uint8

const (
	numKeysNone       numKeysStyle = iota
	numKeysEval                    // EVAL, EVALSHA and _RO forms: >= 0
	numKeysFcall                   // FCALL, FCALL_RO: as EVAL, other text for a non-integer
	numKeysZset                    // ZUNION, ZINTER, ZDIFF (and STORE), ZINTERCARD: >= 1
	numKeysSintercard              // SINTERCARD: >= 1
	numKeysMpop                    // LMPOP, ZMPOP, BLMPOP, BZMPOP: >= 1, and a direction after the keys
)

// CommandInfo describes one command, or one subcommand of a container
// command, for routing. The fields mirror redis-server 7's COMMAND INFO.
type CommandInfo struct {
	// Name is the command name in lower case. A subcommand has redis-server's
	// full name, "container|subcommand", such as "client|setinfo".
	Name string
	// Arity is redis-server's argument count, the command name included
	// (and the container's, for a subcommand): positive means exactly
	// that many, negative means at least -Arity. It accepts the options of
	// redis-server 7: EXPIRE has -3, so EXPIRE k 10 NX passes, where
	// twemproxy's fixed count refuses it.
	Arity int
	// Class says how the command is routed.
	Class Class
	// Flags are the redis-server flags write, readonly and blocking.
	Flags CommandFlags
	// FirstKey, LastKey and Step are redis-server's legacy key positions:
	// the keys are args[FirstKey], args[FirstKey+Step], … up to
	// args[LastKey], where a negative LastKey counts from the end (-1 is
	// the last argument, -2 the one before). FirstKey 0 means none.
	FirstKey, LastKey, Step int
	// NumKeysIndex, if not zero, is the position of a numkeys argument;
	// that many keys follow it. Redis-server reports these commands with
	// the flag movablekeys, and their numkeys keys are not in the legacy
	// positions.
	NumKeysIndex int
	// Since is the redis-server version that added the command.
	Since string
	// Reason says, for a ClassUnsupported command, why a sharding proxy
	// refuses it, in words fit to send to the client, such as "KEYS is
	// not supported through a sharding proxy: keys live on many servers".
	Reason string

	numKeys numKeysStyle
	index   int // position in commandTable
}

// Index returns the command's position in the slice Commands returns, so
// that callers can keep per-command data in a slice rather than a map.
func (ci *CommandInfo) Index() int { return ci.index }

// A CommandError is a request the proxy answers itself with an error
// instead of forwarding it: an unknown command, a wrong number of
// arguments, a bad numkeys argument, or an unsupported command. Unlike a
// *protocol.Error the stream stays in step: send Reply and go on reading.
type CommandError struct {
	// Reply is the error reply without the leading '-' and trailing CRLF,
	// worded as redis-server 7 words the same error, such as "ERR wrong
	// number of arguments for 'get' command".
	Reply string
}

// Error returns "resp: " followed by the reply.
func (e *CommandError) Error() string { return "resp: " + e.Reply }

// Error replies of redis-server 7 that do not name the command.
const (
	cmdErrNotInteger    = "ERR value is not an integer or out of range"
	cmdErrSyntax        = "ERR syntax error"
	cmdErrNegativeKeys  = "ERR Number of keys can't be negative"
	cmdErrTooManyKeys   = "ERR Number of keys can't be greater than number of args"
	cmdErrBadNumKeys    = "ERR Bad number of keys provided"
	cmdErrNumKeysBelow1 = "ERR numkeys should be greater than 0"
)

func newCommandError(reply string) *CommandError { return &CommandError{Reply: reply} }

// maxNameLen bounds the names LookupCommand and Subcommand look up; no
// command or subcommand name is longer.
const maxNameLen = 32

// LookupCommand returns the command named name, matched without regard
// to ASCII case, or false if the table has no such command (see Commands).
// A container command such as CLIENT is returned as itself; see
// Subcommand.
//
// LookupCommand does not allocate. The returned CommandInfo is shared and
// must not be modified. It is safe for concurrent use.
func LookupCommand(name []byte) (*CommandInfo, bool) {
	var buf [maxNameLen]byte
	if len(name) == 0 || len(name) > len(buf) {
		return nil, false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	ci, ok := commandIndex[string(buf[:len(name)])]
	return ci, ok
}

// Subcommand returns the subcommand of the container command ci named
// name, matched without regard to ASCII case, or false if ci is not a
// container or has no such subcommand. Like LookupCommand it does not
// allocate, and the result must not be modified.
func (ci *CommandInfo) Subcommand(name []byte) (*CommandInfo, bool) {
	var buf [2*maxNameLen + 1]byte
	if ci.Class != ClassContainer || len(name) == 0 || len(name) > maxNameLen || len(ci.Name) > maxNameLen {
		return nil, false
	}
	n := copy(buf[:], ci.Name)
	buf[n] = '|'
	n++
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	sub, ok := subcommandIndex[string(buf[:n])]
	return sub, ok
}

// ResolveCommand looks up the command args[0] and, when it is a container
// and args[1] exists, its subcommand args[1], then checks the number of
// arguments, in the order redis-server does. A failure is a *CommandError
// worded as redis-server's reply: unknown command, unknown subcommand, or
// wrong number of arguments. ResolveCommand does not allocate unless it
// fails. Whether the command is supported is left to the caller (see
// Class).
func ResolveCommand(args [][]byte) (*CommandInfo, error) {
	if len(args) == 0 {
		return nil, UnknownCommandError(args)
	}
	ci, ok := LookupCommand(args[0])
	if !ok {
		return nil, UnknownCommandError(args)
	}
	if ci.Class == ClassContainer && len(args) > 1 {
		sub, ok := ci.Subcommand(args[1])
		if !ok {
			return nil, ci.UnknownSubcommandError(args[1])
		}
		ci = sub
	}
	if !ci.CheckArity(len(args)) {
		return nil, ci.ArityError()
	}
	return ci, nil
}

// CheckArity reports whether nargs arguments, the command name included,
// satisfy ci.Arity.
func (ci *CommandInfo) CheckArity(nargs int) bool {
	if ci.Arity >= 0 {
		return nargs == ci.Arity
	}
	return nargs >= -ci.Arity
}

// ArityError returns redis-server's reply to a wrong number of arguments,
// such as "ERR wrong number of arguments for 'get' command" (a subcommand
// is named "container|subcommand").
func (ci *CommandInfo) ArityError() *CommandError {
	return newCommandError("ERR wrong number of arguments for '" + ci.Name + "' command")
}

// UnsupportedError returns the reply for a refused command: "ERR "
// followed by ci.Reason. It is meant for a ClassUnsupported command, every
// one of which has a Reason (the tests check it); for any other command
// the reply is a bare "ERR ".
func (ci *CommandInfo) UnsupportedError() *CommandError {
	return newCommandError("ERR " + ci.Reason)
}

// UnknownSubcommandError returns redis-server's reply to an unknown
// subcommand sub of the container ci, such as "ERR unknown subcommand
// 'foo'. Try CLIENT HELP.".
func (ci *CommandInfo) UnknownSubcommandError(sub []byte) *CommandError {
	b := make([]byte, 0, 64+len(sub))
	b = append(b, "ERR unknown subcommand '"...)
	b = appendCString(b, sub, 128)
	b = append(b, "'. Try "...)
	b = append(b, strings.ToUpper(ci.Name)...)
	b = append(b, " HELP."...)
	return newCommandError(noNewlines(b))
}

// UnknownCommandError returns redis-server 7's reply to an unknown command
// args[0], such as "ERR unknown command 'foo', with args beginning with:
// 'a' 'b' " (with the trailing space). Like redis-server it quotes the
// name as sent, up to 128 bytes, and the arguments up to about 128 bytes
// in all; it stops each at a NUL byte and turns CR and LF into spaces.
func UnknownCommandError(args [][]byte) *CommandError {
	var name []byte
	if len(args) > 0 {
		name = args[0]
	}
	b := make([]byte, 0, 200)
	b = append(b, "ERR unknown command '"...)
	b = appendCString(b, name, 128)
	b = append(b, "', with args beginning with: "...)
	quoted := 0
	for i := 1; i < len(args) && quoted < 128; i++ {
		start := len(b)
		b = append(b, '\'')
		b = appendCString(b, args[i], 128-quoted)
		b = append(b, '\'', ' ')
		quoted += len(b) - start
	}
	return newCommandError(noNewlines(b))
}

// appendCString appends s up to its first NUL byte and at most max bytes,
// as C's "%.*s" prints it.
func appendCString(dst, s []byte, max int) []byte {
	for i, c := range s {
		if c == 0 || i == max {
			break
		}
		dst = append(dst, c)
	}
	return dst
}

// noNewlines returns b as a string with CR and LF replaced by spaces, as
// redis-server does to every rejection it sends.
func noNewlines(b []byte) string {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// Keys appends to dst[:0] the positions in args of the keys of the
// command ci: its legacy key positions, then, for a numkeys command, the
// keys its numkeys argument counts. args is the whole command, its name
// (and a container's subcommand name) included. With enough capacity in
// dst, Keys does not allocate.
//
// Keys checks what it needs: the number of arguments (an odd number of
// MSET arguments included) and the numkeys argument. It reports a problem
// as a *CommandError worded as redis-server's reply, such as "ERR numkeys
// should be greater than 0", and the proxy can send that to the client.
// A numkeys of 0, which scripts allow, yields no keys and no error.
// Keys on a container returns no keys; resolve the subcommand first.
func (ci *CommandInfo) Keys(args [][]byte, dst []int) ([]int, error) {
	dst = dst[:0]
	if !ci.CheckArity(len(args)) {
		return dst, ci.ArityError()
	}
	if ci.FirstKey > 0 && ci.Step > 0 {
		last := ci.LastKey
		if last < 0 {
			last += len(args)
			if ci.Step > 1 && (len(args)-ci.FirstKey)%ci.Step != 0 {
				return dst, ci.ArityError() // a key without its value
			}
		}
		last = min(last, len(args)-1)
		for i := ci.FirstKey; i <= last; i += ci.Step {
			dst = append(dst, i)
		}
	}
	if ci.NumKeysIndex > 0 && ci.NumKeysIndex < len(args) {
		n, err := ci.numKeysCount(args)
		if err != nil {
			return dst[:0], err
		}
		for i := 1; i <= n; i++ {
			dst = append(dst, ci.NumKeysIndex+i)
		}
	}
	return dst, nil
}

// numKeysCount parses and checks the numkeys argument of args as
// redis-server's implementation of ci does, returning its error text.
func (ci *CommandInfo) numKeysCount(args [][]byte) (int, error) {
	avail := len(args) - ci.NumKeysIndex - 1 // arguments after numkeys
	n, ok := string2ll(args[ci.NumKeysIndex])
	switch ci.numKeys {
	case numKeysEval, numKeysFcall:
		switch {
		case !ok && ci.numKeys == numKeysFcall:
			return 0, newCommandError(cmdErrBadNumKeys)
		case !ok:
			return 0, newCommandError(cmdErrNotInteger)
		case n > int64(avail):
			return 0, newCommandError(cmdErrTooManyKeys)
		case n < 0:
			return 0, newCommandError(cmdErrNegativeKeys)
		}
	case numKeysZset:
		switch {
		case !ok:
			return 0, newCommandError(cmdErrNotInteger)
		case n < 1:
			return 0, newCommandError("ERR at least 1 input key is needed for '" + ci.Name + "' command")
		case n > int64(avail):
			return 0, newCommandError(cmdErrSyntax)
		}
	case numKeysSintercard:
		switch {
		case !ok || n < 1:
			return 0, newCommandError(cmdErrNumKeysBelow1)
		case n > int64(avail):
			return 0, newCommandError(cmdErrTooManyKeys)
		}
	case numKeysMpop:
		switch {
		case !ok || n < 1:
			return 0, newCommandError(cmdErrNumKeysBelow1)
		case n > int64(avail-1): // LEFT|RIGHT or MIN|MAX must follow
			return 0, newCommandError(cmdErrSyntax)
		}
	default:
		if !ok || n < 0 || n > int64(avail) {
			return 0, newCommandError(cmdErrSyntax)
		}
	}
	return int(n), nil
}

// Commands returns a copy of the command table, sorted by name: every
// command of redis-server 7.0.15, and those of 7.2 and 7.4 that a client
// of a sharding proxy may send (CLIENT SETINFO, the hash field expiration
// commands HEXPIRE … HTTL, WAITAOF). The subcommands of the containers
// CLIENT, MEMORY, OBJECT, XGROUP and XINFO follow their container under
// their full names ("client|setinfo"); the other containers are refused
// whole and their subcommands are not listed.
func Commands() []CommandInfo {
	return slices.Clone(commandTable)
}

// commandIndex and subcommandIndex map lower-case names to entries of
// commandTable. They are built once and never modified.
var commandIndex, subcommandIndex = indexCommands(commandTable)

func indexCommands(table []CommandInfo) (cmds, subs map[string]*CommandInfo) {
	cmds = make(map[string]*CommandInfo, len(table))
	subs = make(map[string]*CommandInfo)
	for i := range table {
		ci := &table[i]
		ci.index = i
		if strings.Contains(ci.Name, "|") {
			subs[ci.Name] = ci
		} else {
			cmds[ci.Name] = ci
		}
	}
	return cmds, subs
}

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

// commandTable is the command table, sorted by name. Arity, key positions,
// flags and Since are redis-server 7.0.15's (checked against a running
// server by TestCommandInfoMatchesRedis), or, for newer commands, those of
// src/commands/*.json in the redis source (commit 4f8cdc2, 2024-10-18).
// Class and Reason are walnut's routing decisions; the comments note where
// they differ from twemproxy 0.5.0, which closes the connection on every
// command it refuses.
//
// Decisions on contested commands:
//   - Answered locally (ClassLocal): PING, ECHO, QUIT, AUTH, SELECT (0
//     only), HELLO (RESP2 only unless the proxy speaks RESP3), RESET, and
//     CLIENT SETNAME, GETNAME and SETINFO, so that go-redis v9's
//     connection handshake (v9.22.0 initConn: HELLO 3, then AUTH, SELECT,
//     CLIENT SETNAME, CLIENT SETINFO as configured) works.
//   - COMMAND, LOLWUT and TIME go to one fixed server (ClassKeyless).
//   - Several-key commands that cannot be split (SDIFF …, COPY, RENAME,
//     MSETNX, BITOP, EVAL …) go to the first key's server; their keys must
//     share it (ClassFirstKey, ClassNumKeys).
//   - Stream commands on one key are supported, as are XGROUP and XINFO;
//     XREAD and XREADGROUP are not (BLOCK, and keys after STREAMS).
//   - Blocking commands, transactions, Pub/Sub, keyspace-wide commands
//     (KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL, FLUSHDB), scripts and
//     functions management, replication, cluster and per-server
//     administration commands are refused (ClassUnsupported).
var commandTable = []CommandInfo{
	{Name: "acl", Arity: -2, Class: ClassUnsupported, Since: "6.0.0", Reason: "ACL is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "append", Arity: 3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "asking", Arity: 1, Class: ClassUnsupported, Since: "3.0.0", Reason: "ASKING is not supported through a sharding proxy: it is a Redis Cluster command"},
	{Name: "auth", Arity: -2, Class: ClassLocal, Since: "1.0.0"},
	{Name: "bgrewriteaof", Arity: 1, Class: ClassUnsupported, Since: "1.0.0", Reason: "BGREWRITEAOF is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "bgsave", Arity: -1, Class: ClassUnsupported, Since: "1.0.0", Reason: "BGSAVE is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "bitcount", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "bitfield", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"},
	{Name: "bitfield_ro", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.0.0"},
	{Name: "bitop", Arity: -4, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 2, LastKey: -1, Step: 1, Since: "2.6.0"}, // twemproxy refuses it; the destination (arg 2) is the first key
	{Name: "bitpos", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.7"},
	{Name: "blmove", Arity: 6, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, FirstKey: 1, LastKey: 2, Step: 1, Since: "6.2.0", Reason: "BLMOVE is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "blmpop", Arity: -5, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, NumKeysIndex: 2, numKeys: numKeysMpop, Since: "7.0.0", Reason: "BLMPOP is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "blpop", Arity: -3, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, FirstKey: 1, LastKey: -2, Step: 1, Since: "2.0.0", Reason: "BLPOP is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "brpop", Arity: -3, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, FirstKey: 1, LastKey: -2, Step: 1, Since: "2.0.0", Reason: "BRPOP is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "brpoplpush", Arity: 4, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, FirstKey: 1, LastKey: 2, Step: 1, Since: "2.2.0", Reason: "BRPOPLPUSH is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "bzmpop", Arity: -5, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, NumKeysIndex: 2, numKeys: numKeysMpop, Since: "7.0.0", Reason: "BZMPOP is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "bzpopmax", Arity: -3, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, FirstKey: 1, LastKey: -2, Step: 1, Since: "5.0.0", Reason: "BZPOPMAX is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "bzpopmin", Arity: -3, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, FirstKey: 1, LastKey: -2, Step: 1, Since: "5.0.0", Reason: "BZPOPMIN is not supported through a sharding proxy: a blocking command would stall the server connection the proxy shares between clients"},
	{Name: "client", Arity: -2, Class: ClassContainer, Since: "2.4.0"},
	{Name: "client|caching", Arity: 3, Class: ClassUnsupported, Since: "6.0.0", Reason: "CLIENT CACHING is not supported through a sharding proxy: client-side caching needs invalidation messages on a server connection of the client's own"},
	{Name: "client|getname", Arity: 2, Class: ClassLocal, Since: "2.6.9"},
	{Name: "client|getredir", Arity: 2, Class: ClassUnsupported, Since: "6.0.0", Reason: "CLIENT GETREDIR is not supported through a sharding proxy: client-side caching needs invalidation messages on a server connection of the client's own"},
	{Name: "client|help", Arity: 2, Class: ClassUnsupported, Since: "5.0.0", Reason: "CLIENT HELP is not supported through a sharding proxy: only CLIENT SETNAME, CLIENT GETNAME and CLIENT SETINFO are"},
	{Name: "client|id", Arity: 2, Class: ClassUnsupported, Since: "5.0.0", Reason: "CLIENT ID is not supported through a sharding proxy: server connections are shared between clients, so it would describe the proxy's connection, not the client's"},
	{Name: "client|info", Arity: 2, Class: ClassUnsupported, Since: "6.2.0", Reason: "CLIENT INFO is not supported through a sharding proxy: server connections are shared between clients, so it would describe the proxy's connection, not the client's"},
	{Name: "client|kill", Arity: -3, Class: ClassUnsupported, Since: "2.4.0", Reason: "CLIENT KILL is not supported through a sharding proxy: server connections are shared between clients, so it would act on other clients too"},
	{Name: "client|list", Arity: -2, Class: ClassUnsupported, Since: "2.4.0", Reason: "CLIENT LIST is not supported through a sharding proxy: server connections are shared between clients, so it would describe the proxy's connection, not the client's"},
	{Name: "client|no-evict", Arity: 3, Class: ClassUnsupported, Since: "7.0.0", Reason: "CLIENT NO-EVICT is not supported through a sharding proxy: server connections are shared between clients, so it would act on other clients too"},
	{Name: "client|no-touch", Arity: 3, Class: ClassUnsupported, Since: "7.2.0", Reason: "CLIENT NO-TOUCH is not supported through a sharding proxy: server connections are shared between clients, so it would act on other clients too"},
	{Name: "client|pause", Arity: -3, Class: ClassUnsupported, Since: "3.0.0", Reason: "CLIENT PAUSE is not supported through a sharding proxy: server connections are shared between clients, so it would act on other clients too"},
	{Name: "client|reply", Arity: 3, Class: ClassUnsupported, Since: "3.2.0", Reason: "CLIENT REPLY is not supported through a sharding proxy: the proxy answers every request"},
	{Name: "client|setinfo", Arity: 4, Class: ClassLocal, Since: "7.2.0"},
	{Name: "client|setname", Arity: 3, Class: ClassLocal, Since: "2.6.9"},
	{Name: "client|tracking", Arity: -3, Class: ClassUnsupported, Since: "6.0.0", Reason: "CLIENT TRACKING is not supported through a sharding proxy: client-side caching needs invalidation messages on a server connection of the client's own"},
	{Name: "client|trackinginfo", Arity: 2, Class: ClassUnsupported, Since: "6.2.0", Reason: "CLIENT TRACKINGINFO is not supported through a sharding proxy: client-side caching needs invalidation messages on a server connection of the client's own"},
	{Name: "client|unblock", Arity: -3, Class: ClassUnsupported, Since: "5.0.0", Reason: "CLIENT UNBLOCK is not supported through a sharding proxy: server connections are shared between clients, so it would act on other clients too"},
	{Name: "client|unpause", Arity: 2, Class: ClassUnsupported, Since: "6.2.0", Reason: "CLIENT UNPAUSE is not supported through a sharding proxy: server connections are shared between clients, so it would act on other clients too"},
	{Name: "cluster", Arity: -2, Class: ClassUnsupported, Since: "3.0.0", Reason: "CLUSTER is not supported through a sharding proxy: it is a Redis Cluster command"},
	{Name: "command", Arity: -1, Class: ClassKeyless, Since: "2.8.13"}, // every subcommand is forwarded; twemproxy accepts only a bare COMMAND
	{Name: "config", Arity: -2, Class: ClassUnsupported, Since: "2.0.0", Reason: "CONFIG is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "copy", Arity: -3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "6.2.0"},
	{Name: "dbsize", Arity: 1, Class: ClassUnsupported, Flags: FlagReadOnly, Since: "1.0.0", Reason: "DBSIZE is not supported through a sharding proxy: keys live on many servers; ask each server"},
	{Name: "debug", Arity: -2, Class: ClassUnsupported, Since: "1.0.0", Reason: "DEBUG is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "decr", Arity: 2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "decrby", Arity: 3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "del", Arity: -2, Class: ClassMultiKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "discard", Arity: 1, Class: ClassUnsupported, Since: "2.0.0", Reason: "DISCARD is not supported through a sharding proxy: a transaction needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "dump", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "echo", Arity: 2, Class: ClassLocal, Since: "1.0.0"},                                           // twemproxy refuses it
	{Name: "eval", Arity: -3, Class: ClassNumKeys, NumKeysIndex: 2, numKeys: numKeysEval, Since: "2.6.0"}, // numkeys 0 allowed (no key); twemproxy requires numkeys >= 1
	{Name: "eval_ro", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 2, numKeys: numKeysEval, Since: "7.0.0"},
	{Name: "evalsha", Arity: -3, Class: ClassNumKeys, NumKeysIndex: 2, numKeys: numKeysEval, Since: "2.6.0"}, // numkeys 0 allowed (no key); twemproxy requires numkeys >= 1
	{Name: "evalsha_ro", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 2, numKeys: numKeysEval, Since: "7.0.0"},
	{Name: "exec", Arity: 1, Class: ClassUnsupported, Since: "1.2.0", Reason: "EXEC is not supported through a sharding proxy: a transaction needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "exists", Arity: -2, Class: ClassMultiKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"}, // split like DEL; twemproxy sends it whole to the first key's server
	{Name: "expire", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "expireat", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "expiretime", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.0.0"},
	{Name: "failover", Arity: -1, Class: ClassUnsupported, Since: "6.2.0", Reason: "FAILOVER is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "fcall", Arity: -3, Class: ClassNumKeys, NumKeysIndex: 2, numKeys: numKeysFcall, Since: "7.0.0"},
	{Name: "fcall_ro", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 2, numKeys: numKeysFcall, Since: "7.0.0"},
	{Name: "flushall", Arity: -1, Class: ClassUnsupported, Flags: FlagWrite, Since: "1.0.0", Reason: "FLUSHALL is not supported through a sharding proxy: it would have to run on every server; run it on each server directly"},
	{Name: "flushdb", Arity: -1, Class: ClassUnsupported, Flags: FlagWrite, Since: "1.0.0", Reason: "FLUSHDB is not supported through a sharding proxy: it would have to run on every server; run it on each server directly"},
	{Name: "function", Arity: -2, Class: ClassUnsupported, Since: "7.0.0", Reason: "FUNCTION is not supported through a sharding proxy: scripts and functions are loaded per server; load them on each server directly (EVAL loads its script itself)"},
	{Name: "geoadd", Arity: -5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"},
	{Name: "geodist", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"},
	{Name: "geohash", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"},
	{Name: "geopos", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"},
	{Name: "georadius", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"}, // a STORE or STOREDIST key must share the first key's server
	{Name: "georadius_ro", Arity: -6, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.10"},
	{Name: "georadiusbymember", Arity: -5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"}, // a STORE or STOREDIST key must share the first key's server
	{Name: "georadiusbymember_ro", Arity: -5, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.10"},
	{Name: "geosearch", Arity: -7, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "geosearchstore", Arity: -8, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "6.2.0"},
	{Name: "get", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "getbit", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "getdel", Arity: 2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "getex", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "getrange", Arity: 4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.4.0"},
	{Name: "getset", Arity: 3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "hdel", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hello", Arity: -1, Class: ClassLocal, Since: "6.0.0"}, // twemproxy refuses it
	{Name: "hexists", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hexpire", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hexpireat", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hexpiretime", Arity: -5, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hget", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hgetall", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hincrby", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hincrbyfloat", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "hkeys", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hlen", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hmget", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hmset", Arity: -4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hpersist", Arity: -5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hpexpire", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hpexpireat", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hpexpiretime", Arity: -5, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hpttl", Arity: -5, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hrandfield", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "hscan", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.0"},
	{Name: "hset", Arity: -4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hsetnx", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "hstrlen", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.2.0"},
	{Name: "httl", Arity: -5, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.4.0"},
	{Name: "hvals", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "incr", Arity: 2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "incrby", Arity: 3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "incrbyfloat", Arity: 3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "info", Arity: -1, Class: ClassUnsupported, Since: "1.0.0", Reason: "INFO is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "keys", Arity: 2, Class: ClassUnsupported, Flags: FlagReadOnly, Since: "1.0.0", Reason: "KEYS is not supported through a sharding proxy: keys live on many servers"},
	{Name: "lastsave", Arity: 1, Class: ClassUnsupported, Since: "1.0.0", Reason: "LASTSAVE is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "latency", Arity: -2, Class: ClassUnsupported, Since: "2.8.13", Reason: "LATENCY is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "lcs", Arity: -3, Class: ClassFirstKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 2, Step: 1, Since: "7.0.0"},
	{Name: "lindex", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "linsert", Arity: 5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "llen", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "lmove", Arity: 5, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "6.2.0"},
	{Name: "lmpop", Arity: -4, Class: ClassNumKeys, Flags: FlagWrite, NumKeysIndex: 1, numKeys: numKeysMpop, Since: "7.0.0"},
	{Name: "lolwut", Arity: -1, Class: ClassKeyless, Flags: FlagReadOnly, Since: "5.0.0"},
	{Name: "lpop", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "lpos", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.0.6"},
	{Name: "lpush", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "lpushx", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "lrange", Arity: 4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "lrem", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "lset", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "ltrim", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "memory", Arity: -2, Class: ClassContainer, Since: "4.0.0"},
	{Name: "memory|doctor", Arity: 2, Class: ClassUnsupported, Since: "4.0.0", Reason: "MEMORY DOCTOR is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "memory|help", Arity: 2, Class: ClassKeyless, Since: "4.0.0"},
	{Name: "memory|malloc-stats", Arity: 2, Class: ClassUnsupported, Since: "4.0.0", Reason: "MEMORY MALLOC-STATS is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "memory|purge", Arity: 2, Class: ClassUnsupported, Since: "4.0.0", Reason: "MEMORY PURGE is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "memory|stats", Arity: 2, Class: ClassUnsupported, Since: "4.0.0", Reason: "MEMORY STATS is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "memory|usage", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "4.0.0"},
	{Name: "mget", Arity: -2, Class: ClassMultiKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "migrate", Arity: -6, Class: ClassUnsupported, Flags: FlagWrite, FirstKey: 3, LastKey: 3, Step: 1, Since: "2.6.0", Reason: "MIGRATE is not supported through a sharding proxy: where a key lives is decided by the proxy"},
	{Name: "module", Arity: -2, Class: ClassUnsupported, Since: "4.0.0", Reason: "MODULE is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "monitor", Arity: 1, Class: ClassUnsupported, Since: "1.0.0", Reason: "MONITOR is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "move", Arity: 3, Class: ClassUnsupported, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0", Reason: "MOVE is not supported through a sharding proxy: the proxy offers database 0 only"}, // twemproxy parses it, then closes the connection
	{Name: "mset", Arity: -3, Class: ClassMultiKeyValue, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 2, Since: "1.0.1"},
	{Name: "msetnx", Arity: -3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 2, Since: "1.0.1"}, // twemproxy refuses it
	{Name: "multi", Arity: 1, Class: ClassUnsupported, Since: "1.2.0", Reason: "MULTI is not supported through a sharding proxy: a transaction needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "object", Arity: -2, Class: ClassContainer, Since: "2.2.3"},
	{Name: "object|encoding", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "2.2.3"},
	{Name: "object|freq", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "4.0.0"},
	{Name: "object|help", Arity: 2, Class: ClassKeyless, Since: "6.2.0"},
	{Name: "object|idletime", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "2.2.3"},
	{Name: "object|refcount", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "2.2.3"},
	{Name: "persist", Arity: 2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "pexpire", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "pexpireat", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "pexpiretime", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.0.0"},
	{Name: "pfadd", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.9"},
	{Name: "pfcount", Arity: -2, Class: ClassFirstKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "2.8.9"},
	{Name: "pfdebug", Arity: 3, Class: ClassUnsupported, Flags: FlagWrite, FirstKey: 2, LastKey: 2, Step: 1, Since: "2.8.9", Reason: "PFDEBUG is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "pfmerge", Arity: -2, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 1, Since: "2.8.9"},
	{Name: "pfselftest", Arity: 1, Class: ClassUnsupported, Since: "2.8.9", Reason: "PFSELFTEST is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "ping", Arity: -1, Class: ClassLocal, Since: "1.0.0"}, // twemproxy accepts only a bare PING
	{Name: "psetex", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "psubscribe", Arity: -2, Class: ClassUnsupported, Since: "2.0.0", Reason: "PSUBSCRIBE is not supported through a sharding proxy: Pub/Sub needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "psync", Arity: -3, Class: ClassUnsupported, Since: "2.8.0", Reason: "PSYNC is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "pttl", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "publish", Arity: 3, Class: ClassUnsupported, Since: "2.0.0", Reason: "PUBLISH is not supported through a sharding proxy: Pub/Sub is not available through the proxy"},
	{Name: "pubsub", Arity: -2, Class: ClassUnsupported, Since: "2.8.0", Reason: "PUBSUB is not supported through a sharding proxy: Pub/Sub is not available through the proxy"},
	{Name: "punsubscribe", Arity: -1, Class: ClassUnsupported, Since: "2.0.0", Reason: "PUNSUBSCRIBE is not supported through a sharding proxy: Pub/Sub needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "quit", Arity: -1, Class: ClassLocal, Since: "1.0.0"},
	{Name: "randomkey", Arity: 1, Class: ClassUnsupported, Flags: FlagReadOnly, Since: "1.0.0", Reason: "RANDOMKEY is not supported through a sharding proxy: keys live on many servers"},
	{Name: "readonly", Arity: 1, Class: ClassUnsupported, Since: "3.0.0", Reason: "READONLY is not supported through a sharding proxy: it is a Redis Cluster command"},
	{Name: "readwrite", Arity: 1, Class: ClassUnsupported, Since: "3.0.0", Reason: "READWRITE is not supported through a sharding proxy: it is a Redis Cluster command"},
	{Name: "rename", Arity: 3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "1.0.0"},   // twemproxy refuses it
	{Name: "renamenx", Arity: 3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "1.0.0"}, // twemproxy refuses it
	{Name: "replconf", Arity: -1, Class: ClassUnsupported, Since: "3.0.0", Reason: "REPLCONF is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "replicaof", Arity: 3, Class: ClassUnsupported, Since: "5.0.0", Reason: "REPLICAOF is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "reset", Arity: 1, Class: ClassLocal, Since: "6.2.0"},
	{Name: "restore", Arity: -4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.6.0"},
	{Name: "restore-asking", Arity: -4, Class: ClassUnsupported, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "3.0.0", Reason: "RESTORE-ASKING is not supported through a sharding proxy: it is a Redis Cluster command"},
	{Name: "role", Arity: 1, Class: ClassUnsupported, Since: "2.8.12", Reason: "ROLE is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "rpop", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "rpoplpush", Arity: 3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "1.2.0"},
	{Name: "rpush", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "rpushx", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "sadd", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "save", Arity: 1, Class: ClassUnsupported, Since: "1.0.0", Reason: "SAVE is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "scan", Arity: -2, Class: ClassUnsupported, Flags: FlagReadOnly, Since: "2.8.0", Reason: "SCAN is not supported through a sharding proxy: keys live on many servers"},
	{Name: "scard", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "script", Arity: -2, Class: ClassUnsupported, Since: "2.6.0", Reason: "SCRIPT is not supported through a sharding proxy: scripts and functions are loaded per server; load them on each server directly (EVAL loads its script itself)"},
	{Name: "sdiff", Arity: -2, Class: ClassFirstKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "sdiffstore", Arity: -3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "select", Arity: 2, Class: ClassLocal, Since: "1.0.0"}, // twemproxy refuses it
	{Name: "set", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "setbit", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "setex", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "setnx", Arity: 3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "setrange", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "shutdown", Arity: -1, Class: ClassUnsupported, Since: "1.0.0", Reason: "SHUTDOWN is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "sinter", Arity: -2, Class: ClassFirstKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "sintercard", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 1, numKeys: numKeysSintercard, Since: "7.0.0"},
	{Name: "sinterstore", Arity: -3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "sismember", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "slaveof", Arity: 3, Class: ClassUnsupported, Since: "1.0.0", Reason: "SLAVEOF is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "slowlog", Arity: -2, Class: ClassUnsupported, Since: "2.2.12", Reason: "SLOWLOG is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "smembers", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "smismember", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "smove", Arity: 4, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "1.0.0"},
	{Name: "sort", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"}, // BY, GET and STORE keys must share the first key's server
	{Name: "sort_ro", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.0.0"},
	{Name: "spop", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "spublish", Arity: 3, Class: ClassUnsupported, FirstKey: 1, LastKey: 1, Step: 1, Since: "7.0.0", Reason: "SPUBLISH is not supported through a sharding proxy: Pub/Sub is not available through the proxy"},
	{Name: "srandmember", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "srem", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "sscan", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.0"},
	{Name: "ssubscribe", Arity: -2, Class: ClassUnsupported, FirstKey: 1, LastKey: -1, Step: 1, Since: "7.0.0", Reason: "SSUBSCRIBE is not supported through a sharding proxy: Pub/Sub needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "strlen", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "subscribe", Arity: -2, Class: ClassUnsupported, Since: "2.0.0", Reason: "SUBSCRIBE is not supported through a sharding proxy: Pub/Sub needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "substr", Arity: 4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "sunion", Arity: -2, Class: ClassFirstKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "sunionstore", Arity: -3, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 1, Since: "1.0.0"},
	{Name: "sunsubscribe", Arity: -1, Class: ClassUnsupported, FirstKey: 1, LastKey: -1, Step: 1, Since: "7.0.0", Reason: "SUNSUBSCRIBE is not supported through a sharding proxy: Pub/Sub needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "swapdb", Arity: 3, Class: ClassUnsupported, Flags: FlagWrite, Since: "4.0.0", Reason: "SWAPDB is not supported through a sharding proxy: the proxy offers database 0 only"},
	{Name: "sync", Arity: 1, Class: ClassUnsupported, Since: "1.0.0", Reason: "SYNC is not supported through a sharding proxy: it concerns one server, not the data; send it to the servers directly"},
	{Name: "time", Arity: 1, Class: ClassKeyless, Since: "2.6.0"}, // twemproxy refuses it
	{Name: "touch", Arity: -2, Class: ClassMultiKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Since: "3.2.1"},
	{Name: "ttl", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "type", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.0"},
	{Name: "unlink", Arity: -2, Class: ClassMultiKey, Flags: FlagWrite, FirstKey: 1, LastKey: -1, Step: 1, Since: "4.0.0"},
	{Name: "unsubscribe", Arity: -1, Class: ClassUnsupported, Since: "2.0.0", Reason: "UNSUBSCRIBE is not supported through a sharding proxy: Pub/Sub needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "unwatch", Arity: 1, Class: ClassUnsupported, Since: "2.2.0", Reason: "UNWATCH is not supported through a sharding proxy: a transaction needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "wait", Arity: 3, Class: ClassUnsupported, Since: "3.0.0", Reason: "WAIT is not supported through a sharding proxy: it waits on the server connection the proxy shares between clients"},
	{Name: "waitaof", Arity: 4, Class: ClassUnsupported, Flags: FlagBlocking, Since: "7.2.0", Reason: "WAITAOF is not supported through a sharding proxy: it waits on the server connection the proxy shares between clients"},
	{Name: "watch", Arity: -2, Class: ClassUnsupported, FirstKey: 1, LastKey: -1, Step: 1, Since: "2.2.0", Reason: "WATCH is not supported through a sharding proxy: a transaction needs a server connection of its own, and the proxy shares server connections between clients"},
	{Name: "xack", Arity: -4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xadd", Arity: -5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xautoclaim", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "xclaim", Arity: -6, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xdel", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xgroup", Arity: -2, Class: ClassContainer, Since: "5.0.0"},
	{Name: "xgroup|create", Arity: -5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xgroup|createconsumer", Arity: 5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 2, LastKey: 2, Step: 1, Since: "6.2.0"},
	{Name: "xgroup|delconsumer", Arity: 5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xgroup|destroy", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xgroup|help", Arity: 2, Class: ClassKeyless, Since: "5.0.0"},
	{Name: "xgroup|setid", Arity: -5, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xinfo", Arity: -2, Class: ClassContainer, Since: "5.0.0"},
	{Name: "xinfo|consumers", Arity: 4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xinfo|groups", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xinfo|help", Arity: 2, Class: ClassKeyless, Since: "5.0.0"},
	{Name: "xinfo|stream", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 2, LastKey: 2, Step: 1, Since: "5.0.0"},
	{Name: "xlen", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xpending", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xrange", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xread", Arity: -4, Class: ClassUnsupported, Flags: FlagReadOnly | FlagBlocking, Since: "5.0.0", Reason: "XREAD is not supported through a sharding proxy: with BLOCK it would stall the server connection the proxy shares between clients, and its keys follow the STREAMS keyword"},
	{Name: "xreadgroup", Arity: -7, Class: ClassUnsupported, Flags: FlagWrite | FlagBlocking, Since: "5.0.0", Reason: "XREADGROUP is not supported through a sharding proxy: with BLOCK it would stall the server connection the proxy shares between clients, and its keys follow the STREAMS keyword"},
	{Name: "xrevrange", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xsetid", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "xtrim", Arity: -4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "zadd", Arity: -4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zcard", Arity: 2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zcount", Arity: 4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "zdiff", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 1, numKeys: numKeysZset, Since: "6.2.0"}, // routed by the first key; twemproxy hashes the numkeys argument
	{Name: "zdiffstore", Arity: -4, Class: ClassNumKeys, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, NumKeysIndex: 2, numKeys: numKeysZset, Since: "6.2.0"},
	{Name: "zincrby", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zinter", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 1, numKeys: numKeysZset, Since: "6.2.0"}, // routed by the first key; twemproxy hashes the numkeys argument
	{Name: "zintercard", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 1, numKeys: numKeysZset, Since: "7.0.0"},
	{Name: "zinterstore", Arity: -4, Class: ClassNumKeys, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, NumKeysIndex: 2, numKeys: numKeysZset, Since: "2.0.0"},
	{Name: "zlexcount", Arity: 4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.9"},
	{Name: "zmpop", Arity: -4, Class: ClassNumKeys, Flags: FlagWrite, NumKeysIndex: 1, numKeys: numKeysMpop, Since: "7.0.0"},
	{Name: "zmscore", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "zpopmax", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "zpopmin", Arity: -2, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "5.0.0"},
	{Name: "zrandmember", Arity: -2, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "6.2.0"},
	{Name: "zrange", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zrangebylex", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.9"},
	{Name: "zrangebyscore", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.0.5"},
	{Name: "zrangestore", Arity: -5, Class: ClassFirstKey, Flags: FlagWrite, FirstKey: 1, LastKey: 2, Step: 1, Since: "6.2.0"},
	{Name: "zrank", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "zrem", Arity: -3, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zremrangebylex", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.9"},
	{Name: "zremrangebyrank", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "zremrangebyscore", Arity: 4, Class: ClassSingleKey, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zrevrange", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zrevrangebylex", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.9"},
	{Name: "zrevrangebyscore", Arity: -4, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.2.0"},
	{Name: "zrevrank", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.0.0"},
	{Name: "zscan", Arity: -3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "2.8.0"},
	{Name: "zscore", Arity: 3, Class: ClassSingleKey, Flags: FlagReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Since: "1.2.0"},
	{Name: "zunion", Arity: -3, Class: ClassNumKeys, Flags: FlagReadOnly, NumKeysIndex: 1, numKeys: numKeysZset, Since: "6.2.0"}, // routed by the first key; twemproxy hashes the numkeys argument
	{Name: "zunionstore", Arity: -4, Class: ClassNumKeys, Flags: FlagWrite, FirstKey: 1, LastKey: 1, Step: 1, NumKeysIndex: 2, numKeys: numKeysZset, Since: "2.0.0"},
}

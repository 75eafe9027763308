package resp

import (
	"slices"
	"strings"
)

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
// command, as redis-server 7's COMMAND INFO does: its argument count, its
// flags and where its keys are. It says nothing about how a proxy treats
// the command; that is the proxy's decision.
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

	numKeys numKeysStyle
	index   int  // position in commandTable
	subs    bool // the table lists subcommands of this command
}

// Index returns the command's position in the slice Commands returns, so
// that callers can keep per-command data in a slice rather than a map.
func (ci *CommandInfo) Index() int { return ci.index }

// HasSubcommands reports whether ci is a container command whose
// subcommands the table lists (CLIENT, MEMORY, OBJECT, XGROUP and XINFO):
// its second argument names a subcommand, with its own arity and key
// positions, counted from the container's name (OBJECT ENCODING key has
// FirstKey 2). Look it up with Subcommand, or use ResolveCommand. Other
// containers of redis-server (COMMAND, CONFIG, SCRIPT, …) are described
// as a whole, and HasSubcommands reports false for them.
func (ci *CommandInfo) HasSubcommands() bool { return ci.subs }

// A CommandError is a request the proxy answers itself with an error
// instead of forwarding it: an unknown command, a wrong number of
// arguments, or a bad numkeys argument. Unlike a
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
// container whose subcommands the table lists (see HasSubcommands) or
// has no such subcommand. Like LookupCommand it does not allocate, and
// the result must not be modified.
func (ci *CommandInfo) Subcommand(name []byte) (*CommandInfo, bool) {
	var buf [2*maxNameLen + 1]byte
	if !ci.subs || len(name) == 0 || len(name) > maxNameLen || len(ci.Name) > maxNameLen {
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

// ResolveCommand looks up the command args[0] and, when it has
// subcommands (HasSubcommands) and args[1] exists, its subcommand args[1],
// then checks the number of arguments, in the order redis-server does. A
// failure is a *CommandError worded as redis-server's reply: unknown
// command, unknown subcommand, or wrong number of arguments.
// ResolveCommand does not allocate unless it fails. What to do with the
// command, including whether to run it at all, is left to the caller.
func ResolveCommand(args [][]byte) (*CommandInfo, error) {
	if len(args) == 0 {
		return nil, UnknownCommandError(args)
	}
	ci, ok := LookupCommand(args[0])
	if !ok {
		return nil, UnknownCommandError(args)
	}
	if ci.subs && len(args) > 1 {
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
// their full names ("client|setinfo"); the other containers (COMMAND,
// CONFIG, SCRIPT, …) are described as a whole and their subcommands are
// not listed.
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
		if container, _, ok := strings.Cut(ci.Name, "|"); ok {
			subs[ci.Name] = ci
			if parent := cmds[container]; parent != nil { // sorted: the container came first
				parent.subs = true
			}
		} else {
			cmds[ci.Name] = ci
		}
	}
	return cmds, subs
}

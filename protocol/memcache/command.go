package memcache

import "strconv"

// Command identifies a memcached text-protocol command.
type Command uint8

// The commands ParseRequest recognises. Unknown is the zero value and marks
// a line memcached answers with ERROR.
const (
	Unknown        Command = iota
	Get                    // get <key>+
	Gets                   // gets <key>+
	Gat                    // gat <exptime> <key>*
	Gats                   // gats <exptime> <key>*
	Set                    // set <key> <flags> <exptime> <bytes> [noreply]
	Add                    // add, same form as set
	Replace                // replace, same form as set
	Append                 // append, same form as set
	Prepend                // prepend, same form as set
	Cas                    // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
	Incr                   // incr <key> <value> [noreply]
	Decr                   // decr <key> <value> [noreply]
	Touch                  // touch <key> <exptime> [noreply]
	Delete                 // delete <key> [0] [noreply]
	Version                // version
	Quit                   // quit
	Verbosity              // verbosity <level> [noreply]
	FlushAll               // flush_all [delay] [noreply]
	Stats                  // stats [<args>]
	MetaGet                // mg <key> <flags>*
	MetaSet                // ms <key> <datalen> <flags>*
	MetaDelete             // md <key> <flags>*
	MetaArithmetic         // ma <key> <flags>*
	MetaNoop               // mn
	MetaDebug              // me <key> <flags>*
	numCommands
)

// commandNames holds each command's name on the wire. It is read-only.
var commandNames = [numCommands]string{
	Unknown:        "unknown",
	Get:            "get",
	Gets:           "gets",
	Gat:            "gat",
	Gats:           "gats",
	Set:            "set",
	Add:            "add",
	Replace:        "replace",
	Append:         "append",
	Prepend:        "prepend",
	Cas:            "cas",
	Incr:           "incr",
	Decr:           "decr",
	Touch:          "touch",
	Delete:         "delete",
	Version:        "version",
	Quit:           "quit",
	Verbosity:      "verbosity",
	FlushAll:       "flush_all",
	Stats:          "stats",
	MetaGet:        "mg",
	MetaSet:        "ms",
	MetaDelete:     "md",
	MetaArithmetic: "ma",
	MetaNoop:       "mn",
	MetaDebug:      "me",
}

// String returns the command's name as sent on the wire ("get",
// "flush_all", "mg"), "unknown" for Unknown, or "Command(N)" for a value
// that is not a Command.
func (c Command) String() string {
	if c < numCommands {
		return commandNames[c]
	}
	return "Command(" + strconv.Itoa(int(c)) + ")"
}

// IsRetrieval reports whether c is get, gets, gat or gats: a command with
// any number of keys answered by VALUE blocks and END.
func (c Command) IsRetrieval() bool {
	return c >= Get && c <= Gats
}

// IsStorage reports whether c is set, add, replace, append, prepend or
// cas: a command followed by a data block.
func (c Command) IsStorage() bool {
	return c >= Set && c <= Cas
}

// IsMeta reports whether c is one of the meta commands mg, ms, md, ma, mn
// and me.
func (c Command) IsMeta() bool {
	return c >= MetaGet && c <= MetaDebug
}

// lookupCommand maps a command token to its Command, Unknown if none.
func lookupCommand(tok []byte) Command {
	switch string(tok) {
	case "get":
		return Get
	case "set":
		return Set
	case "gets":
		return Gets
	case "delete":
		return Delete
	case "incr":
		return Incr
	case "decr":
		return Decr
	case "touch":
		return Touch
	case "add":
		return Add
	case "replace":
		return Replace
	case "append":
		return Append
	case "prepend":
		return Prepend
	case "cas":
		return Cas
	case "gat":
		return Gat
	case "gats":
		return Gats
	case "version":
		return Version
	case "quit":
		return Quit
	case "verbosity":
		return Verbosity
	case "flush_all":
		return FlushAll
	case "stats":
		return Stats
	case "mg":
		return MetaGet
	case "ms":
		return MetaSet
	case "md":
		return MetaDelete
	case "ma":
		return MetaArithmetic
	case "mn":
		return MetaNoop
	case "me":
		return MetaDebug
	}
	return Unknown
}

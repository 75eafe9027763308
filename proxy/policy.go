package proxy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/walnutproxy/walnut/protocol/resp"
)

// This file is walnut's Redis command policy: for every command of resp's
// table, whether the proxy answers it itself, forwards it to one server,
// splits it over several, or refuses it, and with what words. resp knows
// what a command is (arity, flags, key positions); this file decides what
// a sharding proxy does with it. redisDispatch (redis.go) acts on the
// decision.
//
// Commands with keys are routed by their keys unless redisDecisions says
// otherwise (see routeByKeys); every other decision is listed there. The
// comments in redisDecisions note where walnut differs from twemproxy
// 0.5.0, which also closes the connection on every command it refuses.
// In short:
//   - Answered by the proxy: PING, ECHO, QUIT, AUTH, SELECT (0 only),
//     HELLO (RESP2 or RESP3; see resp3.go), RESET, and CLIENT
//     SETNAME, GETNAME and SETINFO, so that go-redis v9's connection
//     handshake (v9.22.0 initConn: HELLO 3, then AUTH, SELECT, CLIENT
//     SETNAME, CLIENT SETINFO as configured) works.
//   - COMMAND, LOLWUT, TIME and LASTSAVE go to one fixed server.
//   - Commands over the whole keyspace or every server (FLUSHALL, FLUSHDB,
//     DBSIZE, KEYS, SCAN, RANDOMKEY, INFO, SCRIPT, FUNCTION, PUBSUB) are
//     fanned out to the servers and their replies merged (fanout.go).
//   - PUBLISH and SPUBLISH go to the server of their channel, which is
//     routed as a key (pubsub.go).
//   - Several-key commands that cannot be split (SDIFF …, COPY, RENAME,
//     MSETNX, BITOP, EVAL …) go to the first key's server; their keys must
//     share it.
//   - Stream commands on one key are supported, as are XGROUP and XINFO;
//     XREAD and XREADGROUP are routed by the keys after STREAMS, which
//     must share a server.
//   - Transactions, blocking commands (and XREAD/XREADGROUP with BLOCK)
//     and subscriptions are served on a server connection of the
//     client's own (classPinned, see pinned.go).
//   - WAIT, replication, cluster and per-server administration commands
//     are refused, and the connection stays open. A pool can refuse more
//     (Config.RefuseCommands, the nutcracker.yml key
//     redis_refuse_commands).

// A commandClass says how the proxy routes a Redis command.
type commandClass uint8

// The routing classes.
const (
	// classUnsupported marks a command a sharding proxy cannot run
	// correctly. The client gets the route's refusal, which names the
	// command and says why (one of the refuse constants), and the
	// connection stays open (twemproxy closes it).
	classUnsupported commandClass = iota

	// classLocal marks a command the proxy answers itself, never
	// forwarding it (redisLocal): PING, ECHO, QUIT, AUTH, SELECT, HELLO,
	// RESET and the CLIENT subcommands SETNAME, GETNAME and SETINFO:
	//
	//   - PING [message]: +PONG, or message as a bulk string. More than one
	//     argument is an arity error, which redis-server checks inside the
	//     command, so resp's arity check accepts it.
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
	//     proxy answers in the client's place, since server connections
	//     are shared: HELLO 3 switches the client to RESP3, whose requests
	//     then use RESP3 server connections (resp3.go), and HELLO 2 back;
	//     the reply is redis-server's, a map in RESP3 and an array in
	//     RESP2. go-redis v9 sends HELLO 3 on every new connection. The
	//     in-process Client answers HELLO 3 "-NOPROTO unsupported protocol
	//     version", and go-redis then falls back to RESP2 and AUTH. AUTH
	//     and SETNAME act as the commands of the same name.
	//   - RESET: forget the client name and authentication, back to RESP2;
	//     +RESET.
	//   - CLIENT SETNAME name, CLIENT GETNAME: a name kept per client
	//     connection. CLIENT SETINFO: +OK, and nothing is kept; go-redis v9
	//     sends CLIENT SETINFO LIB-NAME and LIB-VER on every new connection
	//     (and ignores errors), and redis-server 7.0 does not know it.
	classLocal

	// classKeyless marks a command without keys that any server can
	// answer: COMMAND (every subcommand), LOLWUT, TIME and LASTSAVE (which
	// twemproxy refuses) and the HELP subcommands of OBJECT, MEMORY, XGROUP and
	// XINFO. twemproxy sends COMMAND and LOLWUT to the server of the
	// literal key "placeholder", so always to the same server, and so does
	// the proxy (placeholderKey). The answer describes that server, not
	// the proxy: COMMAND also lists commands the proxy refuses.
	classKeyless

	// classSingleKey marks a command with one key, at FirstKey (1, or 2
	// for a subcommand such as OBJECT ENCODING key); no other argument is
	// a key. It is forwarded whole to the server of that key. SORT (BY,
	// GET and STORE patterns) and GEORADIUS and GEORADIUSBYMEMBER (STORE,
	// STOREDIST) can name further keys in options that the legacy key
	// positions do not cover; as in twemproxy, those must live on the
	// first key's server.
	classSingleKey

	// classFirstKey marks a command with several keys at fixed positions
	// or over a range (FirstKey, LastKey, Step), forwarded whole to the
	// server of the first key. It is correct only when every key lives on
	// that server, for example because all share a hash tag ({user1}:a,
	// {user1}:b); the proxy checks that and answers -CROSSSLOT otherwise
	// (twemproxy does not check). Examples: SDIFF, SINTER, SUNION and their
	// STORE forms, PFCOUNT, PFMERGE, COPY, LMOVE, RPOPLPUSH, SMOVE, LCS,
	// ZRANGESTORE, GEOSEARCHSTORE, and RENAME, RENAMENX, MSETNX and BITOP,
	// which twemproxy refuses.
	classFirstKey

	// classNumKeys marks a command whose keys are counted by a numkeys
	// argument at NumKeysIndex: 2 for EVAL, EVALSHA, FCALL and their _RO
	// forms and for ZUNIONSTORE, ZINTERSTORE and ZDIFFSTORE (whose
	// destination, at FirstKey 1, comes first); 1 for ZUNION, ZINTER,
	// ZDIFF, ZINTERCARD, SINTERCARD, LMPOP and ZMPOP. Routing is as for
	// classFirstKey: the whole command goes to the server of the first key
	// resp's Keys returns, and every key must live there; a bad numkeys
	// gets redis-server's own error reply. A script called with numkeys 0
	// has no key and goes to the server of placeholderKey, as for
	// classKeyless (twemproxy refuses it). twemproxy routes ZUNION, ZINTER
	// and ZDIFF by the numkeys argument itself, as if it were a key.
	classNumKeys

	// classMultiKey marks a command whose every argument from FirstKey on
	// is a key (Step 1): MGET, DEL, UNLINK, TOUCH and EXISTS. The proxy
	// splits it into one command per server and merges the replies: MGET
	// by position, the others by adding the integers. twemproxy does not
	// split EXISTS: it counts only the keys on the first key's server.
	classMultiKey

	// classMultiKeyValue marks a command of key/value pairs (Step 2):
	// MSET. The proxy splits it into one command per server, each key
	// with its value, and answers +OK once all succeed.
	classMultiKeyValue

	// classContainer marks a command whose subcommands resp's table lists
	// (CLIENT, MEMORY, OBJECT, XGROUP and XINFO). resp.ResolveCommand
	// resolves the subcommand, which has a class of its own, before the
	// proxy routes anything, so a container is never routed itself. The
	// other containers of redis-server are decided as a whole: COMMAND is
	// keyless, SCRIPT and FUNCTION fan out (by subcommand, see fanout.go),
	// CONFIG, ACL, CLUSTER, … are refused.
	classContainer

	// classPinned marks a command served on a server connection of the
	// client's own rather than on the shared ones (pinned.go): a
	// transaction (MULTI, EXEC, DISCARD, WATCH, UNWATCH; transaction.go),
	// a blocking command (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
	// BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP with BLOCK;
	// blocking.go) or a subscription (the SUBSCRIBE and UNSUBSCRIBE
	// commands; pubsub.go). The route's pin says which. twemproxy
	// refuses them all and closes the connection.
	classPinned

	// classFanout marks a command without keys that concerns every key
	// or every server: FLUSHALL, FLUSHDB, DBSIZE, KEYS, SCAN, RANDOMKEY,
	// INFO, SCRIPT, FUNCTION and PUBSUB. The route's fan says which
	// servers it is sent to and how their replies merge (fanout.go).
	// twemproxy refuses all of them.
	classFanout

	// classChannel marks PUBLISH, whose channel (argument 1) is not a key
	// in redis-server's table but is routed as one (pubsub.go): forwarded
	// whole to the channel's server, where its subscribers are.
	classChannel
)

var commandClassNames = [...]string{
	classUnsupported:   "unsupported",
	classLocal:         "local",
	classKeyless:       "keyless",
	classSingleKey:     "single-key",
	classFirstKey:      "first-key",
	classNumKeys:       "numkeys",
	classMultiKey:      "multi-key",
	classMultiKeyValue: "multi-key-value",
	classContainer:     "container",
	classFanout:        "fan-out",
	classPinned:        "pinned",
	classChannel:       "channel",
}

// String returns the class name in lower case, such as "single-key".
func (c commandClass) String() string {
	if int(c) < len(commandClassNames) {
		return commandClassNames[c]
	}
	return "commandClass(" + strconv.Itoa(int(c)) + ")"
}

// The reasons a command is refused, in words fit for the client. The
// refusal a client gets is "-ERR <NAME> is not supported through a
// sharding proxy: <reason>", where NAME is the command in upper case
// ("CLIENT KILL" for a subcommand).
const (
	// refuseServerAdmin: configuration, persistence, replication,
	// introspection and debugging of one server (CONFIG, SAVE,
	// REPLICAOF, SLOWLOG, MEMORY STATS, FUNCTION STATS, …).
	refuseServerAdmin = "it concerns one server, not the data; send it to the servers directly"
	// refuseDatabase: MOVE, SWAPDB. SELECT is answered by the proxy.
	refuseDatabase = "the proxy offers database 0 only"
	// refusePlacement: MIGRATE.
	refusePlacement = "where a key lives is decided by the proxy"
	// refuseCluster: Redis Cluster commands (CLUSTER, ASKING, READONLY, …).
	refuseCluster = "it is a Redis Cluster command"
	// refuseWait: WAIT, WAITAOF.
	refuseWait = "it waits on the server connection the proxy shares between clients"
	// refuseScriptKill: SCRIPT KILL, FUNCTION KILL (refused in fanout.go).
	refuseScriptKill = "a script that runs too long blocks its server for every client; kill it on that server directly"
	// refuseScriptDebug: SCRIPT DEBUG (refused in fanout.go).
	refuseScriptDebug = "the Lua debugger needs a server connection of its own, and the proxy shares server connections between clients"
	// refuseClientTracking: CLIENT TRACKING, CACHING, GETREDIR,
	// TRACKINGINFO.
	refuseClientTracking = "client-side caching needs invalidation messages on a server connection of the client's own"
	// refuseConnectionInfo: CLIENT ID, INFO, LIST.
	refuseConnectionInfo = "server connections are shared between clients, so it would describe the proxy's connection, not the client's"
	// refuseOtherClients: CLIENT KILL, PAUSE, UNBLOCK, NO-EVICT, ….
	refuseOtherClients = "server connections are shared between clients, so it would act on other clients too"
	// refuseNoReply: CLIENT REPLY.
	refuseNoReply = "the proxy answers every request"
	// refuseClientHelp: CLIENT HELP.
	refuseClientHelp = "only CLIENT SETNAME, CLIENT GETNAME and CLIENT SETINFO are"
)

// A redisRoute is the proxy's decision for one command of resp's table.
type redisRoute struct {
	class commandClass
	// fan says how a classFanout command reaches the servers (fanout.go).
	fan fanOp
	// pin says what a classPinned command is (pinned.go).
	pin pinKind
	// reason says why a classUnsupported command is refused: one of the
	// refuse constants.
	reason string
	// refusal is the error reply to a classUnsupported command, without
	// the '-' and CRLF: "ERR <NAME> is not supported through a sharding
	// proxy: <reason>". It is built once, so refusing allocates nothing.
	refusal string
}

// refuse returns the route of a command refused for reason.
func refuse(reason string) redisRoute {
	return redisRoute{class: classUnsupported, reason: reason}
}

// pinned returns the route of a command served on a connection of the
// client's own.
func pinned(kind pinKind) redisRoute {
	return redisRoute{class: classPinned, pin: kind}
}

// redisDecisions lists the route of every command that is not routed by
// its keys, by resp's name ("client|kill" for a subcommand). A name resp's
// table does not have is a mistake that buildRedisRoutes reports.
var redisDecisions = map[string]redisRoute{
	// Answered by the proxy (classLocal).
	"auth":           {class: classLocal},
	"client|getname": {class: classLocal},
	"client|setinfo": {class: classLocal},
	"client|setname": {class: classLocal},
	"echo":           {class: classLocal}, // twemproxy refuses it
	"hello":          {class: classLocal}, // twemproxy refuses it
	"ping":           {class: classLocal}, // twemproxy accepts only a bare PING
	"quit":           {class: classLocal},
	"reset":          {class: classLocal},
	"select":         {class: classLocal}, // twemproxy refuses it

	// Sent to one fixed server (classKeyless).
	"command":     {class: classKeyless}, // every subcommand; twemproxy accepts only a bare COMMAND
	"lolwut":      {class: classKeyless},
	"memory|help": {class: classKeyless},
	"object|help": {class: classKeyless},
	"lastsave":    {class: classKeyless}, // twemproxy refuses it
	"time":        {class: classKeyless}, // twemproxy refuses it
	"xgroup|help": {class: classKeyless},
	"xinfo|help":  {class: classKeyless},

	// Split over the servers of their keys.
	"del":    {class: classMultiKey},
	"exists": {class: classMultiKey}, // twemproxy sends it whole to the first key's server
	"mget":   {class: classMultiKey},
	"touch":  {class: classMultiKey},
	"unlink": {class: classMultiKey},
	"mset":   {class: classMultiKeyValue},

	// Sent to several servers, replies merged (classFanout, fanout.go);
	// twemproxy refuses them all.
	"dbsize":    {class: classFanout, fan: fanDBSize},
	"flushall":  {class: classFanout, fan: fanEvery},
	"flushdb":   {class: classFanout, fan: fanEvery},
	"function":  {class: classFanout, fan: fanFunction},
	"info":      {class: classFanout, fan: fanInfo},
	"keys":      {class: classFanout, fan: fanKeys},
	"randomkey": {class: classFanout, fan: fanRandomKey},
	"scan":      {class: classFanout, fan: fanScan},
	"script":    {class: classFanout, fan: fanScript},
	"pubsub":    {class: classFanout, fan: fanPubsub}, // by subcommand (pubsub.go)

	// Refused (classUnsupported), by reason.
	"acl":                 refuse(refuseServerAdmin),
	"bgrewriteaof":        refuse(refuseServerAdmin),
	"bgsave":              refuse(refuseServerAdmin),
	"config":              refuse(refuseServerAdmin),
	"debug":               refuse(refuseServerAdmin),
	"failover":            refuse(refuseServerAdmin),
	"latency":             refuse(refuseServerAdmin),
	"memory|doctor":       refuse(refuseServerAdmin),
	"memory|malloc-stats": refuse(refuseServerAdmin),
	"memory|purge":        refuse(refuseServerAdmin),
	"memory|stats":        refuse(refuseServerAdmin),
	"module":              refuse(refuseServerAdmin),
	"monitor":             refuse(refuseServerAdmin),
	"pfdebug":             refuse(refuseServerAdmin),
	"pfselftest":          refuse(refuseServerAdmin),
	"psync":               refuse(refuseServerAdmin),
	"replconf":            refuse(refuseServerAdmin),
	"replicaof":           refuse(refuseServerAdmin),
	"role":                refuse(refuseServerAdmin),
	"save":                refuse(refuseServerAdmin),
	"shutdown":            refuse(refuseServerAdmin),
	"slaveof":             refuse(refuseServerAdmin),
	"slowlog":             refuse(refuseServerAdmin),
	"sync":                refuse(refuseServerAdmin),

	"move":    refuse(refuseDatabase), // twemproxy parses it, then closes the connection
	"swapdb":  refuse(refuseDatabase),
	"migrate": refuse(refusePlacement),

	"asking":         refuse(refuseCluster),
	"cluster":        refuse(refuseCluster),
	"readonly":       refuse(refuseCluster),
	"readwrite":      refuse(refuseCluster),
	"restore-asking": refuse(refuseCluster),

	// Served on a server connection of the client's own (classPinned,
	// pinned.go); twemproxy refuses them all.
	"blmove":     pinned(pinBlocking),
	"blmpop":     pinned(pinBlocking),
	"blpop":      pinned(pinBlocking),
	"brpop":      pinned(pinBlocking),
	"brpoplpush": pinned(pinBlocking),
	"bzmpop":     pinned(pinBlocking),
	"bzpopmax":   pinned(pinBlocking),
	"bzpopmin":   pinned(pinBlocking),
	"xread":      pinned(pinBlocking), // with BLOCK; without, routed by its keys (blocking.go)
	"xreadgroup": pinned(pinBlocking), // likewise

	"discard": pinned(pinTransaction),
	"exec":    pinned(pinTransaction),
	"multi":   pinned(pinTransaction),
	"unwatch": pinned(pinTransaction),
	"watch":   pinned(pinTransaction),

	"psubscribe":   pinned(pinPubsub),
	"punsubscribe": pinned(pinPubsub),
	"ssubscribe":   pinned(pinPubsub),
	"subscribe":    pinned(pinPubsub),
	"sunsubscribe": pinned(pinPubsub),
	"unsubscribe":  pinned(pinPubsub),
	"publish":      {class: classChannel},

	"wait":    refuse(refuseWait),
	"waitaof": refuse(refuseWait),

	"client|caching":      refuse(refuseClientTracking),
	"client|getredir":     refuse(refuseClientTracking),
	"client|tracking":     refuse(refuseClientTracking),
	"client|trackinginfo": refuse(refuseClientTracking),
	"client|id":           refuse(refuseConnectionInfo),
	"client|info":         refuse(refuseConnectionInfo),
	"client|list":         refuse(refuseConnectionInfo),
	"client|kill":         refuse(refuseOtherClients),
	"client|no-evict":     refuse(refuseOtherClients),
	"client|no-touch":     refuse(refuseOtherClients),
	"client|pause":        refuse(refuseOtherClients),
	"client|unblock":      refuse(refuseOtherClients),
	"client|unpause":      refuse(refuseOtherClients),
	"client|reply":        refuse(refuseNoReply),
	"client|help":         refuse(refuseClientHelp),
}

// redisRoutes holds the route of every command of resp's table, at its
// resp.CommandInfo.Index.
var redisRoutes = buildRedisRoutes(resp.Commands(), redisDecisions)

// redisRouteOf returns the proxy's route for ci, a command or subcommand
// of resp's table. It does not allocate.
func redisRouteOf(ci *resp.CommandInfo) *redisRoute {
	return &redisRoutes[ci.Index()]
}

// buildRedisRoutes returns the route of each command of cmds (resp's
// table), indexed by resp.CommandInfo.Index: its entry in decisions, or
// else the route its keys give (routeByKeys). The two tables are static
// parts of this module, so a mismatch between them (a decision for a
// command resp does not have, or a command with neither a decision nor a
// key) is a programming error, and it panics.
func buildRedisRoutes(cmds []resp.CommandInfo, decisions map[string]redisRoute) []redisRoute {
	routes := make([]redisRoute, len(cmds))
	decided := 0
	for i := range cmds {
		ci := &cmds[i]
		rt, ok := decisions[ci.Name]
		if ok {
			decided++
		} else {
			rt.class = routeByKeys(ci)
		}
		if (rt.class == classFanout) != (rt.fan != fanNone) {
			panic("proxy: Redis command " + ci.Name + " has a fan-out without the fan-out class, or the class without one")
		}
		if (rt.class == classPinned) != (rt.pin != pinNone) {
			panic("proxy: Redis command " + ci.Name + " is pinned without a kind, or has a kind without the pinned class")
		}
		if rt.class == classUnsupported {
			if rt.reason == "" {
				panic("proxy: Redis command " + ci.Name + " is refused without a reason")
			}
			name := strings.ToUpper(strings.ReplaceAll(ci.Name, "|", " "))
			rt.refusal = "ERR " + name + " is not supported through a sharding proxy: " + rt.reason
		}
		routes[ci.Index()] = rt
	}
	if decided != len(decisions) {
		for name := range decisions {
			if !isRedisCommand(cmds, name) {
				panic("proxy: routing decision for " + name + ", which is not a Redis command resp knows")
			}
		}
	}
	return routes
}

// routeByKeys returns the class of a command without a listed decision:
// a container is resolved to its subcommand first; any other command is
// routed by its keys, to the first key's server. A command with one key
// is classSingleKey, with a numkeys argument classNumKeys, with several
// keys classFirstKey.
func routeByKeys(ci *resp.CommandInfo) commandClass {
	switch {
	case ci.HasSubcommands():
		return classContainer
	case ci.NumKeysIndex > 0:
		return classNumKeys
	case ci.FirstKey > 0 && ci.LastKey == ci.FirstKey:
		return classSingleKey
	case ci.FirstKey > 0:
		return classFirstKey
	}
	panic("proxy: no routing decision for Redis command " + ci.Name + ", which has no keys")
}

// isRedisCommand reports whether cmds has a command named name.
func isRedisCommand(cmds []resp.CommandInfo, name string) bool {
	for i := range cmds {
		if cmds[i].Name == name {
			return true
		}
	}
	return false
}

// buildRefusals returns the error replies to the commands an operator
// refuses (Config.RefuseCommands), by resp's name ("flushall",
// "client|kill"), and for the subcommands of SCRIPT and FUNCTION by
// "script|flush" and the like; nil if names is empty. Each name is a
// command ("flushall", which for a container such as CLIENT refuses every
// subcommand) or a command and a subcommand ("script flush" or
// "script|flush"), in any case.
func buildRefusals(names []string) (map[string]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	m := make(map[string]string)
	cmds := resp.Commands()
	for _, name := range names {
		lower := strings.ToLower(strings.TrimSpace(name))
		cmd, sub, hasSub := strings.Cut(strings.Replace(lower, " ", "|", 1), "|")
		ci, ok := resp.LookupCommand([]byte(cmd))
		if !ok || cmd == "" || strings.ContainsAny(sub, " |") {
			return nil, fmt.Errorf("%q is not a Redis command", name)
		}
		var full []string // resp's names of what name refuses
		switch {
		case !hasSub && ci.HasSubcommands():
			full = append(full, cmd)
			for i := range cmds {
				if strings.HasPrefix(cmds[i].Name, cmd+"|") {
					full = append(full, cmds[i].Name)
				}
			}
		case !hasSub:
			full = append(full, cmd)
		case ci.HasSubcommands():
			sci, ok := ci.Subcommand([]byte(sub))
			if !ok {
				return nil, fmt.Errorf("%q is not a Redis command: %s has no subcommand %s", name, strings.ToUpper(cmd), strings.ToUpper(sub))
			}
			full = append(full, sci.Name)
		case cmd == "script" || cmd == "function":
			if lookupScriptSub(cmd == "function", []byte(sub)) == nil {
				return nil, fmt.Errorf("%q is not a Redis command walnut can refuse: %s %s is not one of walnut's SCRIPT and FUNCTION subcommands", name, strings.ToUpper(cmd), strings.ToUpper(sub))
			}
			full = append(full, cmd+"|"+sub)
		default:
			return nil, fmt.Errorf("%q is not a Redis command: %s has no subcommands", name, strings.ToUpper(cmd))
		}
		for _, f := range full {
			m[f] = "ERR " + strings.ToUpper(strings.ReplaceAll(f, "|", " ")) + " is refused by this pool's configuration (redis_refuse_commands)"
		}
	}
	return m, nil
}

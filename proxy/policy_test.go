package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/protocol/resp"
)

func TestCommandClassString(t *testing.T) {
	tests := []struct {
		give commandClass
		want string
	}{
		{classUnsupported, "unsupported"},
		{classLocal, "local"},
		{classKeyless, "keyless"},
		{classSingleKey, "single-key"},
		{classFirstKey, "first-key"},
		{classNumKeys, "numkeys"},
		{classMultiKey, "multi-key"},
		{classMultiKeyValue, "multi-key-value"},
		{classContainer, "container"},
		{classFanout, "fan-out"},
		{classPinned, "pinned"},
		{commandClass(200), "commandClass(200)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.give.String(), "commandClass(%d)", uint8(tt.give))
	}
}

// TestRedisRoutesConsistent checks, for every command of resp's table,
// that its route fits what resp says about it: a refused command has a
// reason and a refusal naming it, a routed one has keys where its class
// needs them.
func TestRedisRoutesConsistent(t *testing.T) {
	cmds := resp.Commands()
	require.Len(t, redisRoutes, len(cmds))
	for i := range cmds {
		ci := &cmds[i]
		t.Run(ci.Name, func(t *testing.T) {
			rt := redisRouteOf(ci)
			display := strings.ToUpper(strings.ReplaceAll(ci.Name, "|", " "))
			if rt.class == classUnsupported {
				assert.NotEmpty(t, rt.reason)
				assert.Equal(t, "ERR "+display+" is not supported through a sharding proxy: "+rt.reason, rt.refusal)
			} else {
				assert.Empty(t, rt.reason, "reason on a supported command")
				assert.Empty(t, rt.refusal, "refusal on a supported command")
			}
			assert.Equal(t, ci.HasSubcommands(), rt.class == classContainer, "container")
			assert.Equal(t, rt.class == classFanout, rt.fan != fanNone, "fan-out")

			keyless := ci.FirstKey == 0 && ci.NumKeysIndex == 0
			switch rt.class {
			case classLocal, classKeyless, classContainer, classFanout:
				assert.True(t, keyless, "%v command with keys", rt.class)
			case classSingleKey:
				assert.Positive(t, ci.FirstKey)
				assert.Equal(t, ci.FirstKey, ci.LastKey)
				assert.Zero(t, ci.NumKeysIndex)
			case classFirstKey:
				assert.Positive(t, ci.FirstKey)
				assert.NotEqual(t, ci.FirstKey, ci.LastKey, "one key: use classSingleKey")
				assert.Zero(t, ci.NumKeysIndex)
			case classNumKeys:
				assert.Positive(t, ci.NumKeysIndex)
			case classMultiKey:
				assert.Equal(t, [3]int{1, -1, 1}, [3]int{ci.FirstKey, ci.LastKey, ci.Step})
			case classMultiKeyValue:
				assert.Equal(t, [3]int{1, -1, 2}, [3]int{ci.FirstKey, ci.LastKey, ci.Step})
			}
			if ci.Flags&resp.FlagBlocking != 0 && ci.Name != "wait" && ci.Name != "waitaof" {
				assert.Equal(t, classPinned, rt.class, "a blocking command is routed on the shared connections")
				assert.Equal(t, pinBlocking, rt.pin)
			}
			assert.Equal(t, rt.class == classPinned, rt.pin != pinNone, "pinned")
		})
	}
}

// TestRedisRefusals pins every refusal reply, byte for byte, to
// testdata/redis-refusals.txt: one line per refused command, its name, a
// tab and the reply as the client gets it, without the CRLF.
func TestRedisRefusals(t *testing.T) {
	golden, err := os.ReadFile("testdata/redis-refusals.txt")
	require.NoError(t, err)
	want := make(map[string]string)
	for line := range strings.Lines(string(golden)) {
		name, reply, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		require.True(t, ok, "line %q", line)
		want[name] = reply
	}
	got := make(map[string]string)
	for _, ci := range resp.Commands() {
		if rt := redisRouteOf(&ci); rt.class == classUnsupported {
			got[ci.Name] = "-" + rt.refusal
		}
	}
	for name, reply := range want {
		assert.Equal(t, reply, got[name], "%s", name)
	}
	for name := range got {
		assert.Contains(t, want, name, "refused, but not in the golden file")
	}
}

func TestRedisRouteClass(t *testing.T) {
	tests := []struct {
		give []string // a command, or a container and a subcommand
		want commandClass
	}{
		{[]string{"GET"}, classSingleKey},
		{[]string{"get"}, classSingleKey},
		{[]string{"gEt"}, classSingleKey},
		{[]string{"ZREVRANGEBYSCORE"}, classSingleKey},
		{[]string{"GeoRadiusByMember_RO"}, classSingleKey},
		{[]string{"RESTORE-ASKING"}, classUnsupported},
		{[]string{"mget"}, classMultiKey},
		{[]string{"MSET"}, classMultiKeyValue},
		{[]string{"MSETNX"}, classFirstKey},
		{[]string{"EvalSha"}, classNumKeys},
		{[]string{"PING"}, classLocal},
		{[]string{"hello"}, classLocal},
		{[]string{"COMMAND"}, classKeyless},
		{[]string{"LOLWUT"}, classKeyless},
		{[]string{"Client"}, classContainer},
		{[]string{"KEYS"}, classFanout},
		{[]string{"flushall"}, classFanout},
		{[]string{"Script"}, classFanout},
		{[]string{"FUNCTION"}, classFanout},
		{[]string{"lastsave"}, classKeyless},
		{[]string{"CONFIG"}, classUnsupported},
		{[]string{"BLPOP"}, classPinned},
		{[]string{"multi"}, classPinned},
		{[]string{"XREAD"}, classPinned},
		{[]string{"WAIT"}, classUnsupported},
		{[]string{"XADD"}, classSingleKey},
		{[]string{"HEXPIRE"}, classSingleKey},
		{[]string{"CLIENT", "SETINFO"}, classLocal},
		{[]string{"client", "SetName"}, classLocal},
		{[]string{"client", "getname"}, classLocal},
		{[]string{"client", "KILL"}, classUnsupported},
		{[]string{"client", "TRACKING"}, classUnsupported},
		{[]string{"OBJECT", "encoding"}, classSingleKey},
		{[]string{"object", "HELP"}, classKeyless},
		{[]string{"memory", "usage"}, classSingleKey},
		{[]string{"memory", "stats"}, classUnsupported},
		{[]string{"XGROUP", "CREATE"}, classSingleKey},
		{[]string{"xinfo", "Stream"}, classSingleKey},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			ci, ok := resp.LookupCommand([]byte(tt.give[0]))
			require.True(t, ok)
			if len(tt.give) > 1 {
				ci, ok = ci.Subcommand([]byte(tt.give[1]))
				require.True(t, ok)
			}
			assert.Equal(t, tt.want, redisRouteOf(ci).class)
		})
	}
}

// TestBuildRedisRoutesMismatch checks that a decision for a command resp
// does not know, and a keyless command without a decision, are caught
// when the routes are built.
func TestBuildRedisRoutesMismatch(t *testing.T) {
	cmds := resp.Commands()
	assert.NotPanics(t, func() { buildRedisRoutes(cmds, redisDecisions) })

	typo := make(map[string]redisRoute, len(redisDecisions)+1)
	for name, rt := range redisDecisions {
		typo[name] = rt
	}
	typo["mgte"] = redisRoute{class: classMultiKey}
	assert.PanicsWithValue(t, "proxy: routing decision for mgte, which is not a Redis command resp knows",
		func() { buildRedisRoutes(cmds, typo) })

	missing := make(map[string]redisRoute, len(redisDecisions))
	for name, rt := range redisDecisions {
		if name != "lolwut" {
			missing[name] = rt
		}
	}
	assert.PanicsWithValue(t, "proxy: no routing decision for Redis command lolwut, which has no keys",
		func() { buildRedisRoutes(cmds, missing) })

	missing["lolwut"] = redisRoute{class: classUnsupported}
	assert.PanicsWithValue(t, "proxy: Redis command lolwut is refused without a reason",
		func() { buildRedisRoutes(cmds, missing) })
}

func TestRedisRouteOfAllocs(t *testing.T) {
	for _, name := range []string{"GET", "KEYS", "MSET"} {
		ci, ok := resp.LookupCommand([]byte(name))
		require.True(t, ok)
		allocs := testing.AllocsPerRun(100, func() { routeSink = redisRouteOf(ci) })
		assert.Zero(t, allocs, "redisRouteOf(%s)", name)
	}
}

var routeSink *redisRoute

// BenchmarkRedisRouteOf measures what routing adds to resp's lookup of
// each command: resp.ResolveCommand, then redisRouteOf.
func BenchmarkRedisRouteOf(b *testing.B) {
	for _, args := range [][]string{{"GET", "k"}, {"MSET", "a", "1"}, {"KEYS", "*"}, {"CLIENT", "SETNAME", "x"}} {
		b.Run(args[0], func(b *testing.B) {
			argv := make([][]byte, len(args))
			for i, a := range args {
				argv[i] = []byte(a)
			}
			b.ReportAllocs()
			for b.Loop() {
				ci, err := resp.ResolveCommand(argv)
				if err != nil {
					b.Fatal(err)
				}
				routeSink = redisRouteOf(ci)
			}
		})
	}
}

// twemproxyCommands lists the commands twemproxy 0.5.0 accepts, by the
// number of arguments after the key it requires; -1 means any number (or,
// for keyless commands, none).
var twemproxyCommands = map[int][]string{
	// No key: PING and QUIT (local), COMMAND and LOLWUT (keyless); AUTH is
	// local with its password in the key's place.
	-1: {"PING", "QUIT", "COMMAND", "LOLWUT", "EVAL", "EVALSHA",
		"MGET", "DEL", "UNLINK", "TOUCH", "MSET",
		"SORT", "COPY", "BITCOUNT", "BITPOS", "BITFIELD", "EXISTS", "GETEX", "SET", "HDEL",
		"HMGET", "HMSET", "HSCAN", "HSET", "HRANDFIELD", "LPUSH", "LPUSHX", "RPUSH", "RPUSHX",
		"LPOP", "RPOP", "LPOS", "SADD", "SDIFF", "SDIFFSTORE", "SINTER", "SINTERSTORE", "SREM",
		"SUNION", "SUNIONSTORE", "SRANDMEMBER", "SSCAN", "SPOP", "SMISMEMBER", "PFADD", "PFMERGE",
		"PFCOUNT", "ZADD", "ZDIFF", "ZDIFFSTORE", "ZINTER", "ZINTERSTORE", "ZMSCORE", "ZPOPMAX",
		"ZPOPMIN", "ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANGESTORE", "ZREM",
		"ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZSCAN", "ZUNION", "ZUNIONSTORE",
		"GEODIST", "GEOPOS", "GEOHASH", "GEOADD", "GEORADIUS", "GEORADIUSBYMEMBER", "GEOSEARCH",
		"GEOSEARCHSTORE", "RESTORE"},
	0: {"PERSIST", "PTTL", "TTL", "TYPE", "DUMP", "DECR", "GET", "GETDEL", "INCR", "STRLEN",
		"HGETALL", "HKEYS", "HLEN", "HVALS", "LLEN", "SCARD", "SMEMBERS", "ZCARD", "AUTH"},
	// MOVE is parsed here too, but twemproxy then closes the connection,
	// so it is left out.
	1: {"EXPIRE", "EXPIREAT", "PEXPIRE", "PEXPIREAT", "APPEND", "DECRBY", "GETBIT", "GETSET",
		"INCRBY", "INCRBYFLOAT", "SETNX", "HEXISTS", "HGET", "HSTRLEN", "LINDEX", "RPOPLPUSH",
		"SISMEMBER", "ZRANK", "ZREVRANK", "ZSCORE"},
	2: {"GETRANGE", "PSETEX", "SETBIT", "SETEX", "SETRANGE", "HINCRBY", "HINCRBYFLOAT", "HSETNX",
		"LRANGE", "LREM", "LSET", "LTRIM", "SMOVE", "ZCOUNT", "ZLEXCOUNT", "ZINCRBY",
		"ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE"},
	3: {"LINSERT", "LMOVE"},
}

// TestTwemproxyCommandsSupported checks that every command twemproxy
// accepts is in resp's table and not refused, and that every fixed
// argument count twemproxy accepts passes CheckArity.
func TestTwemproxyCommandsSupported(t *testing.T) {
	for extra, names := range twemproxyCommands {
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				ci, ok := resp.LookupCommand([]byte(name))
				require.True(t, ok, "missing")
				rt := redisRouteOf(ci)
				assert.NotEqual(t, classUnsupported, rt.class, "refused: %s", rt.reason)
				if extra >= 0 {
					assert.True(t, ci.CheckArity(2+extra), "twemproxy accepts %d arguments", 2+extra)
				}
			})
		}
	}
}

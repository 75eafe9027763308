package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// testedRedisVersion is the redis-server the table mirrors; commands
// newer than it are checked only for being newer.
const testedRedisVersion = "7.0.15"

func byteArgs(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func TestCommandClassString(t *testing.T) {
	tests := []struct {
		give Class
		want string
	}{
		{ClassUnsupported, "unsupported"},
		{ClassLocal, "local"},
		{ClassKeyless, "keyless"},
		{ClassSingleKey, "single-key"},
		{ClassFirstKey, "first-key"},
		{ClassNumKeys, "numkeys"},
		{ClassMultiKey, "multi-key"},
		{ClassMultiKeyValue, "multi-key-value"},
		{ClassContainer, "container"},
		{Class(200), "Class(200)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.give.String(), "Class(%d)", uint8(tt.give))
	}
}

// TestCommandTableConsistent checks the invariants that LookupCommand,
// Keys and the proxy rely on, for every entry.
func TestCommandTableConsistent(t *testing.T) {
	cmds := Commands()
	require.NotEmpty(t, cmds)
	require.True(t, slices.IsSortedFunc(cmds, func(a, b CommandInfo) int { return strings.Compare(a.Name, b.Name) }), "table not sorted by name")
	seen := make(map[string]bool)
	for _, ci := range cmds {
		t.Run(ci.Name, func(t *testing.T) {
			assert.False(t, seen[ci.Name], "duplicate")
			seen[ci.Name] = true
			assert.Equal(t, strings.ToLower(ci.Name), ci.Name, "name not lower case")
			container, sub, isSub := strings.Cut(ci.Name, "|")
			assert.LessOrEqual(t, len(container), maxNameLen)
			assert.LessOrEqual(t, len(sub), maxNameLen)
			if isSub {
				parent, ok := LookupCommand([]byte(container))
				if assert.True(t, ok, "container %q missing", container) {
					assert.Equal(t, ClassContainer, parent.Class, "container %q", container)
				}
				assert.NotEqual(t, ClassContainer, ci.Class, "nested container")
			}
			assert.NotEmpty(t, ci.Since)
			assert.NotZero(t, ci.Arity)

			display := strings.ToUpper(strings.ReplaceAll(ci.Name, "|", " "))
			if ci.Class == ClassUnsupported {
				assert.True(t, strings.HasPrefix(ci.Reason, display+" is not supported through a sharding proxy: "), "Reason %q", ci.Reason)
				assert.Equal(t, "ERR "+ci.Reason, ci.UnsupportedError().Reply)
			} else {
				assert.Empty(t, ci.Reason, "Reason on a supported command")
			}

			// Every key position must exist whenever the arity is met.
			minArgs := max(ci.Arity, -ci.Arity)
			if ci.FirstKey > 0 {
				assert.Positive(t, ci.Step)
				if ci.LastKey < 0 {
					// The range may be empty (SUNSUBSCRIBE [shardchannel …]).
					assert.LessOrEqual(t, ci.FirstKey, minArgs, "FirstKey beyond the minimum arguments")
				} else {
					assert.Less(t, ci.FirstKey, minArgs, "FirstKey beyond the minimum arguments")
				}
				assert.Less(t, ci.LastKey, minArgs, "LastKey beyond the minimum arguments")
				if ci.LastKey > 0 {
					assert.GreaterOrEqual(t, ci.LastKey, ci.FirstKey)
				}
			} else {
				assert.Zero(t, ci.LastKey)
				assert.Zero(t, ci.Step)
			}
			assert.Equal(t, ci.NumKeysIndex > 0, ci.numKeys != numKeysNone, "NumKeysIndex and numKeys disagree")
			assert.Less(t, ci.NumKeysIndex, minArgs)
			if ci.NumKeysIndex > 0 && ci.FirstKey > 0 {
				assert.Less(t, ci.LastKey, ci.NumKeysIndex)
				assert.Positive(t, ci.LastKey)
			}

			keyless := ci.FirstKey == 0 && ci.NumKeysIndex == 0
			switch ci.Class {
			case ClassLocal, ClassKeyless, ClassContainer:
				assert.True(t, keyless, "%v command with keys", ci.Class)
			case ClassSingleKey:
				assert.Positive(t, ci.FirstKey)
				assert.Equal(t, ci.FirstKey, ci.LastKey)
				assert.Zero(t, ci.NumKeysIndex)
			case ClassFirstKey:
				assert.Positive(t, ci.FirstKey)
				assert.NotEqual(t, ci.FirstKey, ci.LastKey, "one key: use ClassSingleKey")
				assert.Zero(t, ci.NumKeysIndex)
			case ClassNumKeys:
				assert.Positive(t, ci.NumKeysIndex)
			case ClassMultiKey:
				assert.Equal(t, [3]int{1, -1, 1}, [3]int{ci.FirstKey, ci.LastKey, ci.Step})
			case ClassMultiKeyValue:
				assert.Equal(t, [3]int{1, -1, 2}, [3]int{ci.FirstKey, ci.LastKey, ci.Step})
			}
		})
	}
	for _, ci := range cmds {
		if ci.Class == ClassContainer {
			assert.True(t, slices.ContainsFunc(cmds, func(s CommandInfo) bool { return strings.HasPrefix(s.Name, ci.Name+"|") }),
				"container %q without subcommands", ci.Name)
		}
	}
}

func TestCommandsReturnsCopy(t *testing.T) {
	cmds := Commands()
	i := slices.IndexFunc(cmds, func(ci CommandInfo) bool { return ci.Name == "get" })
	require.GreaterOrEqual(t, i, 0)
	cmds[i].Arity = 99
	cmds[i].Class = ClassUnsupported
	ci, ok := LookupCommand([]byte("get"))
	require.True(t, ok)
	assert.Equal(t, 2, ci.Arity)
	assert.Equal(t, ClassSingleKey, ci.Class)
}

func TestLookupCommand(t *testing.T) {
	tests := []struct {
		give   string
		want   string // "" means not found
		wantCl Class
	}{
		{give: "GET", want: "get", wantCl: ClassSingleKey},
		{give: "get", want: "get", wantCl: ClassSingleKey},
		{give: "gEt", want: "get", wantCl: ClassSingleKey},
		{give: "ZREVRANGEBYSCORE", want: "zrevrangebyscore", wantCl: ClassSingleKey},
		{give: "GeoRadiusByMember_RO", want: "georadiusbymember_ro", wantCl: ClassSingleKey},
		{give: "RESTORE-ASKING", want: "restore-asking", wantCl: ClassUnsupported},
		{give: "mget", want: "mget", wantCl: ClassMultiKey},
		{give: "MSET", want: "mset", wantCl: ClassMultiKeyValue},
		{give: "MSETNX", want: "msetnx", wantCl: ClassFirstKey},
		{give: "EvalSha", want: "evalsha", wantCl: ClassNumKeys},
		{give: "PING", want: "ping", wantCl: ClassLocal},
		{give: "hello", want: "hello", wantCl: ClassLocal},
		{give: "COMMAND", want: "command", wantCl: ClassKeyless},
		{give: "LOLWUT", want: "lolwut", wantCl: ClassKeyless},
		{give: "Client", want: "client", wantCl: ClassContainer},
		{give: "KEYS", want: "keys", wantCl: ClassUnsupported},
		{give: "BLPOP", want: "blpop", wantCl: ClassUnsupported},
		{give: "XADD", want: "xadd", wantCl: ClassSingleKey},
		{give: "HEXPIRE", want: "hexpire", wantCl: ClassSingleKey},
		{give: "foo"},
		{give: ""},
		{give: "ge"},
		{give: "gett"},
		{give: "get "},
		{give: "get\x00"},
		{give: "GET\r\n"},
		{give: "g\xc3\xa9t"},
		{give: "client|setinfo"}, // subcommands are not commands
		{give: "CLIENT|SETINFO"},
		{give: "|"},
		{give: strings.Repeat("a", maxNameLen+1)},
		{give: strings.Repeat("GET", 1000)},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			ci, ok := LookupCommand([]byte(tt.give))
			if tt.want == "" {
				assert.False(t, ok)
				assert.Nil(t, ci)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.want, ci.Name)
			assert.Equal(t, tt.wantCl, ci.Class)
		})
	}
	ci, ok := LookupCommand(nil)
	assert.False(t, ok, "nil name")
	assert.Nil(t, ci)
}

func TestLookupSubcommand(t *testing.T) {
	tests := []struct {
		container, sub string
		want           string // "" means not found
		wantCl         Class
	}{
		{"CLIENT", "SETINFO", "client|setinfo", ClassLocal},
		{"client", "SetName", "client|setname", ClassLocal},
		{"client", "getname", "client|getname", ClassLocal},
		{"client", "KILL", "client|kill", ClassUnsupported},
		{"client", "TRACKING", "client|tracking", ClassUnsupported},
		{"OBJECT", "encoding", "object|encoding", ClassSingleKey},
		{"object", "HELP", "object|help", ClassKeyless},
		{"memory", "usage", "memory|usage", ClassSingleKey},
		{"memory", "stats", "memory|stats", ClassUnsupported},
		{"XGROUP", "CREATE", "xgroup|create", ClassSingleKey},
		{"xinfo", "Stream", "xinfo|stream", ClassSingleKey},
		{"client", "nosuch", "", 0},
		{"client", "", "", 0},
		{"client", "client|setinfo", "", 0},
		{"client", strings.Repeat("x", 100), "", 0},
		{"get", "foo", "", 0},      // not a container
		{"config", "get", "", 0},   // refused whole
		{"command", "info", "", 0}, // forwarded whole
	}
	for _, tt := range tests {
		t.Run(tt.container+" "+tt.sub, func(t *testing.T) {
			ci, ok := LookupCommand([]byte(tt.container))
			require.True(t, ok)
			sub, ok := ci.Subcommand([]byte(tt.sub))
			if tt.want == "" {
				assert.False(t, ok)
				assert.Nil(t, sub)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tt.want, sub.Name)
			assert.Equal(t, tt.wantCl, sub.Class)
		})
	}
}

func TestResolveCommand(t *testing.T) {
	tests := []struct {
		give    []string
		want    string
		wantErr string
	}{
		{give: []string{"GET", "k"}, want: "get"},
		{give: []string{"get"}, wantErr: "ERR wrong number of arguments for 'get' command"},
		{give: []string{"EXPIRE", "k", "10", "NX"}, want: "expire"},
		{give: []string{"CLIENT", "SETINFO", "LIB-NAME", "go-redis"}, want: "client|setinfo"},
		{give: []string{"CLIENT", "SETINFO", "LIB-NAME"}, wantErr: "ERR wrong number of arguments for 'client|setinfo' command"},
		{give: []string{"CLIENT"}, wantErr: "ERR wrong number of arguments for 'client' command"},
		{give: []string{"client", "nosuch"}, wantErr: "ERR unknown subcommand 'nosuch'. Try CLIENT HELP."},
		{give: []string{"object", "ENCODING", "k"}, want: "object|encoding"},
		{give: []string{"foo", "a", "b"}, wantErr: "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{give: []string{}, wantErr: "ERR unknown command '', with args beginning with: "},
		{give: []string{"KEYS", "*"}, want: "keys"}, // supported or not is the caller's business
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			ci, err := ResolveCommand(byteArgs(tt.give...))
			if tt.wantErr != "" {
				var ce *CommandError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tt.wantErr, ce.Reply)
				assert.Nil(t, ci)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ci.Name)
		})
	}
}

func TestCheckArity(t *testing.T) {
	tests := []struct {
		give []string
		want bool
	}{
		{[]string{"GET", "k"}, true},
		{[]string{"GET"}, false},
		{[]string{"GET", "k", "x"}, false},
		{[]string{"EXPIRE", "k", "10"}, true},
		{[]string{"EXPIRE", "k", "10", "NX"}, true}, // twemproxy refuses this
		{[]string{"EXPIRE", "k"}, false},
		{[]string{"ZRANK", "k", "m", "WITHSCORE"}, false}, // WITHSCORE came in redis 7.2
		{[]string{"SET", "k", "v", "GET"}, true},
		{[]string{"SET", "k"}, false},
		{[]string{"MGET", "a"}, true},
		{[]string{"MGET"}, false},
		{[]string{"MSET", "a", "1"}, true},
		{[]string{"MSET", "a", "1", "b"}, true}, // parity is Keys' check, as in redis-server
		{[]string{"PING"}, true},
		{[]string{"PING", "a", "b"}, true}, // PING checks its upper bound itself
		{[]string{"LMOVE", "a", "b", "LEFT", "RIGHT"}, true},
		{[]string{"LMOVE", "a", "b", "LEFT"}, false},
		{[]string{"EVAL", "s", "0"}, true},
		{[]string{"EVAL", "s"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			ci, ok := LookupCommand([]byte(tt.give[0]))
			require.True(t, ok)
			assert.Equal(t, tt.want, ci.CheckArity(len(tt.give)))
		})
	}
}

func TestArityError(t *testing.T) {
	ci, ok := LookupCommand([]byte("GET"))
	require.True(t, ok)
	assert.Equal(t, "ERR wrong number of arguments for 'get' command", ci.ArityError().Reply)
	assert.EqualError(t, ci.ArityError(), "resp: ERR wrong number of arguments for 'get' command")
}

func TestUnknownCommandError(t *testing.T) {
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"FOO", "a", "b"}, "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "},
		{[]string{"foo"}, "ERR unknown command 'foo', with args beginning with: "},
		{[]string{"foo", "", ""}, "ERR unknown command 'foo', with args beginning with: '' '' "},
		{[]string{"Foo", "a\r\nb"}, "ERR unknown command 'Foo', with args beginning with: 'a  b' "},
		{[]string{"foo", "a\x00b", "c"}, "ERR unknown command 'foo', with args beginning with: 'a' 'c' "},
		{[]string{"f\x00oo", "x"}, "ERR unknown command 'f', with args beginning with: 'x' "},
		{[]string{strings.Repeat("x", 200), "y"}, "ERR unknown command '" + strings.Repeat("x", 128) + "', with args beginning with: 'y' "},
		{[]string{"foo", strings.Repeat("a", 120), strings.Repeat("b", 20), "c"},
			"ERR unknown command 'foo', with args beginning with: '" + strings.Repeat("a", 120) + "' 'bbbbb' "},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(strings.Join(tt.give, " ")), func(t *testing.T) {
			assert.Equal(t, tt.want, UnknownCommandError(byteArgs(tt.give...)).Reply)
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		give    []string
		want    []int
		wantErr string
	}{
		// ClassSingleKey
		{give: []string{"GET", "k"}, want: []int{1}},
		{give: []string{"SET", "k", "v", "EX", "10"}, want: []int{1}},
		{give: []string{"EXPIRE", "k", "10", "NX"}, want: []int{1}},
		{give: []string{"XADD", "s", "*", "f", "v"}, want: []int{1}},
		{give: []string{"OBJECT", "ENCODING", "k"}, want: nil}, // a container has no keys
		{give: []string{"GET"}, wantErr: "ERR wrong number of arguments for 'get' command"},
		// ClassFirstKey
		{give: []string{"RENAME", "a", "b"}, want: []int{1, 2}},
		{give: []string{"SDIFF", "a", "b", "c"}, want: []int{1, 2, 3}},
		{give: []string{"BITOP", "AND", "dst", "a", "b"}, want: []int{2, 3, 4}},
		{give: []string{"LMOVE", "a", "b", "LEFT", "RIGHT"}, want: []int{1, 2}},
		{give: []string{"MSETNX", "a", "1", "b", "2"}, want: []int{1, 3}},
		{give: []string{"MSETNX", "a", "1", "b"}, wantErr: "ERR wrong number of arguments for 'msetnx' command"},
		// ClassMultiKey, ClassMultiKeyValue
		{give: []string{"MGET", "a"}, want: []int{1}},
		{give: []string{"DEL", "a", "b", "c"}, want: []int{1, 2, 3}},
		{give: []string{"EXISTS", "a", "a"}, want: []int{1, 2}},
		{give: []string{"MSET", "a", "1", "b", "2", "c", "3"}, want: []int{1, 3, 5}},
		{give: []string{"MSET", "a", "1", "b"}, wantErr: "ERR wrong number of arguments for 'mset' command"},
		{give: []string{"MSET", "a"}, wantErr: "ERR wrong number of arguments for 'mset' command"},
		// ClassNumKeys
		{give: []string{"EVAL", "return 1", "2", "a", "b", "arg"}, want: []int{3, 4}},
		{give: []string{"EVAL", "return 1", "0", "arg"}, want: nil},
		{give: []string{"EVAL", "return 1", "3", "a", "b"}, wantErr: "ERR Number of keys can't be greater than number of args"},
		{give: []string{"EVAL", "return 1", "-1", "a"}, wantErr: "ERR Number of keys can't be negative"},
		{give: []string{"EVAL", "return 1", "x", "a"}, wantErr: "ERR value is not an integer or out of range"},
		{give: []string{"FCALL", "f", "x", "a"}, wantErr: "ERR Bad number of keys provided"},
		{give: []string{"FCALL", "f", "1", "a"}, want: []int{3}},
		{give: []string{"ZUNION", "2", "a", "b", "WITHSCORES"}, want: []int{2, 3}},
		{give: []string{"ZUNION", "0", "a"}, wantErr: "ERR at least 1 input key is needed for 'zunion' command"},
		{give: []string{"ZUNION", "3", "a", "b"}, wantErr: "ERR syntax error"},
		{give: []string{"ZUNIONSTORE", "d", "2", "a", "b"}, want: []int{1, 3, 4}},
		{give: []string{"ZDIFFSTORE", "d", "0", "a"}, wantErr: "ERR at least 1 input key is needed for 'zdiffstore' command"},
		{give: []string{"SINTERCARD", "2", "a", "b", "LIMIT", "1"}, want: []int{2, 3}},
		{give: []string{"SINTERCARD", "0", "a"}, wantErr: "ERR numkeys should be greater than 0"},
		{give: []string{"SINTERCARD", "3", "a", "b"}, wantErr: "ERR Number of keys can't be greater than number of args"},
		{give: []string{"LMPOP", "2", "a", "b", "LEFT"}, want: []int{2, 3}},
		{give: []string{"LMPOP", "2", "a", "LEFT"}, wantErr: "ERR syntax error"},
		{give: []string{"ZMPOP", "x", "a", "MIN"}, wantErr: "ERR numkeys should be greater than 0"},
		{give: []string{"BLMPOP", "0", "1", "a", "LEFT"}, want: []int{3}},
		// unsupported commands still report their keys
		{give: []string{"BLPOP", "a", "b", "0"}, want: []int{1, 2}},
		{give: []string{"WATCH", "a", "b"}, want: []int{1, 2}},
		{give: []string{"KEYS", "*"}, want: nil},
		// keyless
		{give: []string{"PING"}, want: nil},
		{give: []string{"LOLWUT", "VERSION", "5"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			ci, ok := LookupCommand([]byte(tt.give[0]))
			require.True(t, ok)
			got, err := ci.Keys(byteArgs(tt.give...), nil)
			if tt.wantErr != "" {
				var ce *CommandError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tt.wantErr, ce.Reply)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestKeysSubcommand(t *testing.T) {
	tests := []struct {
		give []string
		want []int
	}{
		{[]string{"OBJECT", "ENCODING", "k"}, []int{2}},
		{[]string{"MEMORY", "USAGE", "k", "SAMPLES", "5"}, []int{2}},
		{[]string{"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}, []int{2}},
		{[]string{"XINFO", "STREAM", "s", "FULL"}, []int{2}},
		{[]string{"XINFO", "HELP"}, nil},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			args := byteArgs(tt.give...)
			ci, err := ResolveCommand(args)
			require.NoError(t, err)
			got, err := ci.Keys(args, make([]int, 0, 4))
			require.NoError(t, err)
			if tt.want == nil {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestKeysReusesDst(t *testing.T) {
	ci, ok := LookupCommand([]byte("MGET"))
	require.True(t, ok)
	dst := make([]int, 3, 8)
	got, err := ci.Keys(byteArgs("MGET", "a", "b"), dst)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, got)
	assert.Same(t, &dst[0], &got[0], "dst's array not reused")
}

// TestKeysNumKeysParse checks string2ll, which parses numkeys arguments
// (as it parses request headers) the way redis-server's string2ll does.
func TestKeysNumKeysParse(t *testing.T) {
	tests := []struct {
		give   string
		want   int64
		wantOK bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1", -1, true},
		{"123", 123, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false},
		{"18446744073709551616", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"-0", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1a", 0, false},
		{"0x1", 0, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.give), func(t *testing.T) {
			got, ok := string2ll([]byte(tt.give))
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLookupCommandAllocs(t *testing.T) {
	names := [][]byte{[]byte("GET"), []byte("get"), []byte("ZREVRANGEBYSCORE"), []byte("nosuchcommand"), []byte("")}
	for _, name := range names {
		allocs := testing.AllocsPerRun(100, func() { LookupCommand(name) })
		assert.Zero(t, allocs, "LookupCommand(%q)", name)
	}
	client, ok := LookupCommand([]byte("client"))
	require.True(t, ok)
	allocs := testing.AllocsPerRun(100, func() { client.Subcommand([]byte("SETINFO")) })
	assert.Zero(t, allocs, "Subcommand")

	args := byteArgs("MSET", "a", "1", "b", "2")
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := ResolveCommand(args); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "ResolveCommand")

	dst := make([]int, 0, 8)
	for _, give := range [][]string{
		{"MSET", "a", "1", "b", "2"},
		{"EVAL", "return 1", "2", "a", "b"},
		{"ZUNIONSTORE", "d", "2", "a", "b"},
	} {
		args := byteArgs(give...)
		ci, err := ResolveCommand(args)
		require.NoError(t, err)
		allocs = testing.AllocsPerRun(100, func() { dst, _ = ci.Keys(args, dst) })
		assert.Zero(t, allocs, "Keys(%q)", give)
	}
}

var commandSink *CommandInfo

func BenchmarkLookupCommand(b *testing.B) {
	for _, name := range []string{"GET", "get", "ZREVRANGEBYSCORE", "unknowncommand"} {
		b.Run(name, func(b *testing.B) {
			n := []byte(name)
			b.ReportAllocs()
			for b.Loop() {
				commandSink, _ = LookupCommand(n)
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
// accepts is in the table and not refused, and that every fixed argument
// count twemproxy accepts passes CheckArity.
func TestTwemproxyCommandsSupported(t *testing.T) {
	for extra, names := range twemproxyCommands {
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				ci, ok := LookupCommand([]byte(name))
				require.True(t, ok, "missing")
				assert.NotEqual(t, ClassUnsupported, ci.Class, "refused: %s", ci.Reason)
				if extra >= 0 {
					assert.True(t, ci.CheckArity(2+extra), "twemproxy accepts %d arguments", 2+extra)
				}
			})
		}
	}
}

// commandTestConn is a raw RESP2 connection to a redis-server, reading
// nested replies, which testserver.RedisConn does not.
type commandTestConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// commandTestError is an error reply, without its '-'.
type commandTestError string

func dialCommandTest(t testing.TB, addr string) *commandTestConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &commandTestConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// do sends args and returns the reply: a string (simple or bulk), an
// int64, nil, a commandTestError, or a []any of those.
func (c *commandTestConn) do(args ...string) any {
	c.t.Helper()
	require.NoError(c.t, c.conn.SetDeadline(time.Now().Add(10*time.Second)))
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	_, err := c.conn.Write(b)
	require.NoError(c.t, err)
	reply, err := readCommandTestReply(c.r, 0)
	require.NoError(c.t, err, "reply to %q", args)
	return reply
}

// readCommandTestReply reads one RESP2 reply, recursively.
func readCommandTestReply(r *bufio.Reader, depth int) (any, error) {
	if depth > 16 {
		return nil, errors.New("reply nested too deep")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return commandTestError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("bad array length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		elems := make([]any, n)
		for i := range elems {
			if elems[i], err = readCommandTestReply(r, depth+1); err != nil {
				return nil, err
			}
		}
		return elems, nil
	}
	return nil, fmt.Errorf("unexpected reply type %q", line)
}

// commandTestMap turns a RESP2 flat key/value array into a map.
func commandTestMap(t testing.TB, v any) map[string]any {
	t.Helper()
	arr, ok := v.([]any)
	require.True(t, ok, "not an array: %#v", v)
	require.Zero(t, len(arr)%2, "odd map array: %#v", v)
	m := make(map[string]any, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		k, ok := arr[i].(string)
		require.True(t, ok, "map key %#v", arr[i])
		m[k] = arr[i+1]
	}
	return m
}

// newerThanTested reports whether version (such as "7.2.0") is newer than
// testedRedisVersion.
func newerThanTested(t testing.TB, version string) bool {
	t.Helper()
	parse := func(s string) [3]int {
		var v [3]int
		parts := strings.Split(s, ".")
		require.Len(t, parts, 3, "version %q", s)
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			require.NoError(t, err, "version %q", s)
			v[i] = n
		}
		return v
	}
	a, b := parse(version), parse(testedRedisVersion)
	return slices.Compare(a[:], b[:]) > 0
}

// commandTestArgs returns the words that name ci on the wire: "GET", or
// "CLIENT", "SETINFO" for a subcommand.
func commandTestArgs(ci CommandInfo) []string {
	return strings.Split(strings.ToUpper(ci.Name), "|")
}

func startCommandTestRedis(t *testing.T) *commandTestConn {
	t.Helper()
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	c := dialCommandTest(t, srv.Addr)
	info, ok := c.do("INFO", "server").(string)
	require.True(t, ok)
	require.Contains(t, info, "redis_version:"+testedRedisVersion+"\r\n", "the table mirrors redis-server %s", testedRedisVersion)
	return c
}

// TestCommandInfoMatchesRedis compares every entry with COMMAND INFO of
// the real redis-server: arity, legacy key positions, flags, and the
// position of a numkeys argument. Entries the server does not know must
// be of a later redis version.
func TestCommandInfoMatchesRedis(t *testing.T) {
	c := startCommandTestRedis(t)
	for _, ci := range Commands() {
		t.Run(ci.Name, func(t *testing.T) {
			reply, ok := c.do("COMMAND", "INFO", ci.Name).([]any)
			require.True(t, ok)
			require.Len(t, reply, 1)
			if reply[0] == nil {
				assert.True(t, newerThanTested(t, ci.Since), "redis-server %s does not know it, but Since is %s", testedRedisVersion, ci.Since)
				return
			}
			assert.False(t, newerThanTested(t, ci.Since), "known to redis-server %s, but Since is %s", testedRedisVersion, ci.Since)
			info, ok := reply[0].([]any)
			require.True(t, ok)
			require.GreaterOrEqual(t, len(info), 9)
			assert.Equal(t, ci.Name, info[0])
			assert.Equal(t, int64(ci.Arity), info[1], "arity")
			assert.Equal(t, int64(ci.FirstKey), info[3], "first key")
			assert.Equal(t, int64(ci.LastKey), info[4], "last key")
			assert.Equal(t, int64(ci.Step), info[5], "step")

			flags, ok := info[2].([]any)
			require.True(t, ok)
			assert.Equal(t, slices.Contains(flags, any("write")), ci.Flags&FlagWrite != 0, "write flag")
			assert.Equal(t, slices.Contains(flags, any("readonly")), ci.Flags&FlagReadOnly != 0, "readonly flag")
			assert.Equal(t, slices.Contains(flags, any("blocking")), ci.Flags&FlagBlocking != 0, "blocking flag")

			// The numkeys argument: a key spec whose keys are found by
			// "keynum", with the keys right after numkeys, one by one.
			numKeysIndex := 0
			specs, ok := info[8].([]any)
			require.True(t, ok)
			for _, s := range specs {
				spec := commandTestMap(t, s)
				find := commandTestMap(t, spec["find_keys"])
				if find["type"] != "keynum" {
					continue
				}
				begin := commandTestMap(t, spec["begin_search"])
				require.Equal(t, "index", begin["type"])
				pos := commandTestMap(t, begin["spec"])["index"].(int64)
				keynum := commandTestMap(t, find["spec"])
				require.Zero(t, numKeysIndex, "two keynum specs")
				numKeysIndex = int(pos + keynum["keynumidx"].(int64))
				assert.Equal(t, keynum["keynumidx"].(int64)+1, keynum["firstkey"], "keys not right after numkeys")
				assert.Equal(t, int64(1), keynum["keystep"])
			}
			assert.Equal(t, numKeysIndex, ci.NumKeysIndex, "numkeys position")
		})
	}
}

// TestCommandsMissingFromTable reports the commands redis-server knows
// that the table lacks. Missing top-level commands are only logged; a
// missing subcommand of a container in the table fails, since the proxy
// would call it unknown.
func TestCommandsMissingFromTable(t *testing.T) {
	c := startCommandTestRedis(t)
	count, ok := c.do("COMMAND", "COUNT").(int64)
	require.True(t, ok)
	all, ok := c.do("COMMAND").([]any)
	require.True(t, ok)
	require.Len(t, all, int(count))
	var missing []string
	for _, e := range all {
		info := e.([]any)
		name := info[0].(string)
		ci, ok := LookupCommand([]byte(name))
		if !ok {
			missing = append(missing, name)
			continue
		}
		subs, _ := info[9].([]any)
		for _, s := range subs {
			full := s.([]any)[0].(string)
			if ci.Class != ClassContainer {
				continue // refused or forwarded whole
			}
			_, sub, _ := strings.Cut(full, "|")
			_, ok := ci.Subcommand([]byte(sub))
			assert.True(t, ok, "subcommand %s missing", full)
		}
	}
	t.Logf("redis-server %s: %d commands; missing from the table: %d %v", testedRedisVersion, count, len(missing), missing)
}

// TestCommandErrorsMatchRedis sends requests that redis-server rejects
// before running them and requires ResolveCommand and Keys to produce the
// same error replies, byte for byte.
func TestCommandErrorsMatchRedis(t *testing.T) {
	c := startCommandTestRedis(t)
	check := func(t *testing.T, args []string, got error) {
		t.Helper()
		var ce *CommandError
		require.ErrorAs(t, got, &ce, "%q", args)
		assert.Equal(t, commandTestError(ce.Reply), c.do(args...), "%q", args)
	}

	t.Run("arity", func(t *testing.T) {
		for _, ci := range Commands() {
			words := commandTestArgs(ci)
			n := ci.Arity + 1 // one too many
			if ci.Arity < 0 {
				n = -ci.Arity - 1 // one too few
			}
			if n < len(words) {
				continue // no wrong count to send
			}
			if newerThanTested(t, ci.Since) || ci.Name == "exec" {
				// redis-server reports a rejected EXEC as "EXECABORT
				// Transaction discarded because of: …"; EXEC is refused
				// anyway.
				continue
			}
			args := append(words, slices.Repeat([]string{"x"}, n-len(words))...)[:n]
			_, err := ResolveCommand(byteArgs(args...))
			check(t, args, err)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		for _, args := range [][]string{
			{"FOO", "a", "b"},
			{"foo"},
			{"foo", "", ""},
			{"Foo", "a\r\nb"},
			{"foo", "a\x00b", "c"},
			{"f\x00oo", "x"},
			{strings.Repeat("x", 200), "y"},
			{"foo", strings.Repeat("a", 200)},
			{"foo", strings.Repeat("a", 120), strings.Repeat("b", 20), "c"},
			{"foo", strings.Repeat("a", 125), "bcdef"},
			{"foo", strings.Repeat("a", 124), "b", "c"},
			append([]string{"foo"}, slices.Repeat([]string{"xxxxx"}, 40)...),
			{"foo", "\xff\xfe"},
			{"client|setinfo", "a"},
			{"", "a"},
			{"CLIENT", "nosuch"},
			{"client", "NoSuch", "x"},
			{"OBJECT", "nosuch"},
			{"object", strings.Repeat("n", 200)},
			{"xinfo", "x\r\ny"},
			{"XGROUP", "foo"},
			{"memory", "bar"},
		} {
			_, err := ResolveCommand(byteArgs(args...))
			check(t, args, err)
		}
	})

	t.Run("mset", func(t *testing.T) {
		for _, args := range [][]string{
			{"MSET", "a", "1", "b"},
			{"MSETNX", "a", "1", "b"},
			{"mset", "a", "1", "b", "2", "c"},
		} {
			argv := byteArgs(args...)
			ci, err := ResolveCommand(argv)
			require.NoError(t, err)
			_, err = ci.Keys(argv, nil)
			check(t, args, err)
		}
	})

	t.Run("numkeys", func(t *testing.T) {
		sha, ok := c.do("SCRIPT", "LOAD", "return 1").(string)
		require.True(t, ok)
		_, ok = c.do("FUNCTION", "LOAD", "#!lua name=walnuttest\n"+
			"redis.register_function('f', function(keys, args) return 1 end)\n"+
			"redis.register_function{function_name='fro', callback=function(keys, args) return 1 end, flags={'no-writes'}}").(string)
		require.True(t, ok, "FUNCTION LOAD")

		// Each template has "N" for numkeys, two keys, and what must follow.
		templates := [][]string{
			{"EVAL", "return 1", "N", "k1", "k2"},
			{"EVAL_RO", "return 1", "N", "k1", "k2"},
			{"EVALSHA", sha, "N", "k1", "k2"},
			{"EVALSHA_RO", sha, "N", "k1", "k2"},
			{"FCALL", "f", "N", "k1", "k2"},
			{"FCALL_RO", "fro", "N", "k1", "k2"},
			{"ZUNION", "N", "k1", "k2"},
			{"ZINTER", "N", "k1", "k2"},
			{"ZDIFF", "N", "k1", "k2"},
			{"ZINTERCARD", "N", "k1", "k2"},
			{"ZUNIONSTORE", "dst", "N", "k1", "k2"},
			{"ZINTERSTORE", "dst", "N", "k1", "k2"},
			{"ZDIFFSTORE", "dst", "N", "k1", "k2"},
			{"SINTERCARD", "N", "k1", "k2"},
			{"LMPOP", "N", "k1", "k2", "LEFT"},
			{"ZMPOP", "N", "k1", "k2", "MIN"},
			{"BLMPOP", "0.01", "N", "k1", "k2", "LEFT"},
			{"BZMPOP", "0.01", "N", "k1", "k2", "MIN"},
		}
		numkeys := []string{"abc", "-1", "0", "1", "2", "3", "01", "+1", " 1", "-0", "",
			"2147483648", "9223372036854775807", "-9223372036854775808", "99999999999999999999"}
		covered := make(map[string]bool)
		for _, tmpl := range templates {
			for _, n := range numkeys {
				args := slices.Clone(tmpl)
				args[slices.Index(args, "N")] = n
				argv := byteArgs(args...)
				ci, err := ResolveCommand(argv)
				require.NoError(t, err)
				covered[ci.Name] = true
				keys, err := ci.Keys(argv, nil)
				if err != nil {
					check(t, args, err)
					continue
				}
				// Accepted. With numkeys 2 the request is well formed and the
				// server must run it; with fewer keys it may fail later, on
				// the arguments after them.
				want, err := strconv.Atoi(n)
				require.NoError(t, err)
				if ci.FirstKey > 0 {
					want++ // the destination
				}
				assert.Len(t, keys, want, "%q", args)
				reply := c.do(args...)
				if n == "2" {
					assert.IsNotType(t, commandTestError(""), reply, "%q", args)
				}
			}
		}
		for _, ci := range Commands() {
			if ci.NumKeysIndex > 0 {
				assert.True(t, covered[ci.Name], "no numkeys test for %s", ci.Name)
			}
		}
	})
}

func TestCommandIndex(t *testing.T) {
	cmds := Commands()
	for i := range cmds {
		name := cmds[i].Name
		var ci *CommandInfo
		var ok bool
		if c, sub, found := strings.Cut(name, "|"); found {
			parent, _ := LookupCommand([]byte(c))
			ci, ok = parent.Subcommand([]byte(sub))
		} else {
			ci, ok = LookupCommand([]byte(name))
		}
		if !ok || ci.Index() != i || cmds[i].Index() != i {
			t.Fatalf("%s: Index %d (found %v), want %d", name, ci.Index(), ok, i)
		}
	}
}

package hashkit_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/hashkit"
)

// specKeys are the columns of a small table of twemproxy's raw hash outputs:
// short keys, a hash-tagged key and UTF-8 bytes.
var specKeys = []string{"", "a", "foo", "hello", "123456789", "key:1", "user:{1000}:name", "\xc3\xa9t\xc3\xa9"}

// specVectors are the rows of that table: raw function outputs.
var specVectors = map[string][8]uint32{
	"one_at_a_time": {0x00000000, 0xca2e9442, 0x238678dd, 0xc8fd181b, 0xc66b58c5, 0xa2b61284, 0x45cc0cf2, 0x7fcb4b35},
	"md5":           {0xd98c1dd4, 0xb975c10c, 0xdb18bdac, 0x2a40415d, 0x94e7f925, 0x3cb0c47a, 0x3f68bfcd, 0x1e6aafde},
	"crc16":         {0x00000000, 0x00007c87, 0x0c3caf96, 0x6b4fc362, 0x869031c3, 0x70129a01, 0x3e0f5bec, 0xe626a767},
	"crc32":         {0x00000000, 0x000068b7, 0x00000c73, 0x00003610, 0x00004bf4, 0x00000b6f, 0x0000088a, 0x000044d1},
	"crc32a":        {0x00000000, 0xe8b7be43, 0x8c736521, 0x3610a686, 0xcbf43926, 0x0b6f3bec, 0x088a760f, 0x44d16cd4},
	"fnv1_64":       {0x84222325, 0x8601b7be, 0x6ba13533, 0xbdbdd4c7, 0x2bf916d6, 0xfdc93305, 0x2117eeba, 0xee202e17},
	"fnv1a_64":      {0x84222325, 0x8601ec8c, 0xfed9d577, 0x80aabd0b, 0x23c6cdfc, 0x962f5ac9, 0x4470a87c, 0xea769c57},
	"fnv1_32":       {0x811c9dc5, 0x050c5d7e, 0x408f5e13, 0xb6fa7167, 0x24148816, 0x8964f7a5, 0x7b7b2b3a, 0xbebb7c97},
	"fnv1a_32":      {0x811c9dc5, 0xe40c292c, 0xa9f37ed7, 0x4f9f2cab, 0xbb86b11c, 0x58140fa9, 0xa1b8001c, 0x0beea017},
	"hsieh":         {0x00000000, 0x93642e87, 0x76d4d427, 0x13842ac5, 0xe4fc1670, 0x80bc54d9, 0xb43402d6, 0xcc955977},
	"murmur":        {0x00000000, 0x4b41757c, 0xc4e0338f, 0x521b0bff, 0xb7760690, 0xdc094157, 0x0b18b3be, 0xda710acb},
	"jenkins":       {0xdeadbefc, 0xe0a38690, 0x99f84f99, 0x2e0cc8f3, 0x19777af6, 0x82bc75da, 0x234281cb, 0x89466c13},
}

func TestSpecVectors(t *testing.T) {
	for name, want := range specVectors {
		fn, err := hashkit.ByName(name)
		require.NoError(t, err)
		for i, key := range specKeys {
			t.Run(fmt.Sprintf("%s/%q", name, key), func(t *testing.T) {
				assert.Equal(t, fmt.Sprintf("%#08x", want[i]), fmt.Sprintf("%#08x", fn([]byte(key))))
			})
		}
	}
}

// TestTwemproxyVectors checks every hash against vectors produced by
// compiling twemproxy's own src/hashkit C files on x86-64 (signed char):
// empty, single-byte (all 256), high-byte, long (up to 16 KiB) and random
// binary keys. See testdata/twemproxy_vectors.txt for provenance.
func TestTwemproxyVectors(t *testing.T) {
	f, err := os.Open("testdata/twemproxy_vectors.txt")
	require.NoError(t, err)
	defer f.Close()

	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	perHash := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		require.Len(t, fields, 3, "line %d", line)
		fn, err := hashkit.ByName(fields[0])
		require.NoError(t, err, "line %d", line)
		var key []byte
		if fields[1] != "-" {
			key, err = hex.DecodeString(fields[1])
			require.NoError(t, err, "line %d", line)
		}
		want, err := strconv.ParseUint(fields[2], 0, 32)
		require.NoError(t, err, "line %d", line)
		if got := fn(key); got != uint32(want) {
			t.Errorf("line %d: %s(%x) = %#08x, twemproxy gives %#08x", line, fields[0], key, got, want)
		}
		perHash[fields[0]]++
	}
	require.NoError(t, sc.Err())
	for _, name := range hashkit.Names() {
		if name == "farm" {
			continue
		}
		assert.GreaterOrEqual(t, perHash[name], 500, "vectors for %s", name)
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		give    string
		wantErr bool
	}{
		{give: "fnv1a_64"},
		{give: "farm"},
		{give: "jenkins"},
		{give: "FNV1A_64", wantErr: true}, // twemproxy matches lowercase only
		{give: "one_on_time", wantErr: true},
		{give: "", wantErr: true},
		{give: "sha1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			fn, err := hashkit.ByName(tt.give)
			if tt.wantErr {
				require.ErrorIs(t, err, hashkit.ErrUnknown)
				assert.Contains(t, err.Error(), strconv.Quote(tt.give))
				assert.Nil(t, fn)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, fn)
		})
	}
	assert.Len(t, hashkit.Names(), 13)
	for _, name := range hashkit.Names() {
		_, err := hashkit.ByName(name)
		assert.NoError(t, err, name)
	}
	names := hashkit.Names()
	names[0] = "mutated"
	assert.Equal(t, "one_at_a_time", hashkit.Names()[0], "Names must return a copy")
}

func TestFarm(t *testing.T) {
	// Farm is plain go-farm Hash32; check it is wired to that and stable.
	assert.NotEqual(t, hashkit.Farm([]byte("foo")), hashkit.Farm([]byte("bar")))
	assert.Equal(t, hashkit.Farm([]byte("walnut")), hashkit.Farm([]byte("walnut")))
}

func TestAllocs(t *testing.T) {
	key := []byte("user:{1000}:name\xc3\xa9")
	for _, name := range hashkit.Names() {
		fn, err := hashkit.ByName(name)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(100, func() { _ = fn(key) })
		assert.Zero(t, allocs, "%s allocates", name)
	}
}

var sink uint32

func BenchmarkHash(b *testing.B) {
	for _, name := range hashkit.Names() {
		fn, err := hashkit.ByName(name)
		require.NoError(b, err)
		for _, size := range []int{8, 16, 64, 256} {
			key := make([]byte, size)
			for i := range key {
				key[i] = byte('a' + i%26)
			}
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					sink += fn(key)
				}
			})
		}
	}
}

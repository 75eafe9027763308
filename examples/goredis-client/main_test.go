package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/internal/testserver"
)

// TestRun runs the program against two real redis-servers in a pool with
// no hash tag (where go-redis's own Ring would misplace keys with braces):
// every key is found, before the DEL, on the server the program names.
func TestRun(t *testing.T) {
	r1 := testserver.StartRedis(t, testserver.RedisOptions{})
	r2 := testserver.StartRedis(t, testserver.RedisOptions{})
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	yml := fmt.Sprintf("r:\n  redis: true\n  servers:\n   - %s:1 one\n   - %s:1 two\n", r1.Addr, r2.Addr)
	require.NoError(t, os.WriteFile(conf, []byte(yml), 0o600))
	keys := []string{"user:{42}:name", "user:{42}:email", "a", "b", "c", "d", "e", "f"}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), append([]string{"-c", conf, "-pool", "r", "-del=false"}, keys...), &out))
	t.Log(out.String())
	for _, k := range keys {
		assert.Contains(t, out.String(), fmt.Sprintf("MGET %-15s = value of %s", k, k))
	}
	// Each key is on the server the program names, found there directly.
	addr := map[string]string{"one": r1.Addr, "two": r2.Addr}
	used := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		var key, arrow, name, paren string
		if n, _ := fmt.Sscanf(line, "SET %s %s %s %s", &key, &arrow, &name, &paren); n != 4 {
			continue
		}
		used[name] = true
		require.Equal(t, "("+addr[name]+")", paren, key)
		got, err := testserver.DialRedis(t, addr[name]).Do("GET", key)
		require.NoError(t, err)
		assert.Equal(t, "value of "+key, got, key)
	}
	assert.Len(t, used, 2, "keys on both servers")

	out.Reset()
	require.NoError(t, run(context.Background(), append([]string{"-c", conf, "-pool", "r"}, keys...), &out))
	assert.Contains(t, out.String(), fmt.Sprintf("DEL %d keys", len(keys)), "one DEL across both servers")
}

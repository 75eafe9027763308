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

// TestRun runs the program against two real memcacheds: every key comes
// back from the one GetMulti, and is found on the server the program names.
func TestRun(t *testing.T) {
	m1 := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	m2 := testserver.StartMemcached(t, testserver.MemcachedOptions{})
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	yml := fmt.Sprintf("m:\n  servers:\n   - %s:1 one\n   - %s:1 two\n", m1.Addr, m2.Addr)
	require.NoError(t, os.WriteFile(conf, []byte(yml), 0o600))
	keys := []string{"1:a", "2:b", "3:c", "4:d", "5:e", "6:f", "7:g", "8:h"}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), append([]string{"-c", conf, "-pool", "m"}, keys...), &out))
	t.Log(out.String())
	for _, k := range keys {
		assert.Contains(t, out.String(), fmt.Sprintf("get %-12s = value of %s", k, k))
	}
	addr := map[string]string{"one": m1.Addr, "two": m2.Addr}
	used := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		var key, arrow, name, paren string
		if n, _ := fmt.Sscanf(line, "set %s %s %s %s", &key, &arrow, &name, &paren); n != 4 {
			continue
		}
		used[name] = true
		require.Equal(t, "("+addr[name]+")", paren, key)
		got, err := testserver.DialMemcache(t, addr[name]).Get([]byte(key))
		require.NoError(t, err)
		assert.Equal(t, "value of "+key, string(got[key]), key)
	}
	assert.Len(t, used, 2, "keys on both servers")
}

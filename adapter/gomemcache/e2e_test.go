package gomemcache_test

// Differential tests against the real nutcracker: the same nutcracker.yml is
// served by nutcracker in front of real memcacheds and read by config.Parse
// for a gomemcache Client with a Selector; what one side writes, the other
// must find, every time.

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/walnutproxy/walnut/adapter/gomemcache"
	"github.com/walnutproxy/walnut/config"
	"github.com/walnutproxy/walnut/internal/testserver"
)

// e2ePool is one memcached pool of a nutcracker.yml.
type e2ePool struct {
	name, hash, dist string
	extra            string   // more pool keys, each line indented by two spaces
	servers          []string // servers: entries, in config order
	listen           string
}

func (p *e2ePool) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  hash: %s\n  distribution: %s\n  hash_tag: \"{}\"\n%s  servers:\n",
		p.name, p.listen, p.hash, p.dist, p.extra)
	for _, s := range p.servers {
		fmt.Fprintf(&b, "   - %s\n", s)
	}
	return b.String()
}

// startNutcracker starts one nutcracker serving pools (giving each a listen
// address) and returns the same configuration as parsed by config.Parse,
// by pool name.
func startNutcracker(t *testing.T, pools ...*e2ePool) map[string]config.Pool {
	t.Helper()
	testserver.RequireBinary(t, "nutcracker")
	var yml strings.Builder
	var listens []string
	for _, p := range pools {
		p.listen = fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t, "127.0.0.1"))
		listens = append(listens, p.listen)
		yml.WriteString(p.yaml())
	}
	testserver.StartNutcracker(t, yml.String(), testserver.NutcrackerOptions{Listen: listens})
	parsed, err := config.Parse("nutcracker.yml", []byte(yml.String()))
	require.NoError(t, err)
	byName := map[string]config.Pool{}
	for _, p := range parsed.Pools {
		byName[p.Name] = p
	}
	return byName
}

// startUnixMemcached starts memcached on a unix socket, which
// internal/testserver does not offer, and returns the socket's path. The
// process is killed, by its PID, when the test ends.
func startUnixMemcached(t *testing.T) string {
	t.Helper()
	bin := testserver.RequireBinary(t, "memcached")
	dir, err := os.MkdirTemp("", "gm") // short: socket paths are limited to 107 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "mc.sock")
	args := []string{"-s", path, "-m", "16"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	var out testserver.SyncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Write([]byte("version\r\n"))
			var line string
			if err == nil {
				line, err = bufio.NewReader(c).ReadString('\n')
			}
			c.Close()
			if err == nil && strings.HasPrefix(line, "VERSION ") {
				return path
			}
		}
		require.True(t, time.Now().Before(deadline), "memcached on %s did not answer: %v\n%s", path, err, out.String())
		time.Sleep(20 * time.Millisecond)
	}
}

// chunks calls f with consecutive slices of at most n keys.
func chunks(keys []string, n int, f func([]string)) {
	for start := 0; start < len(keys); start += n {
		f(keys[start:min(start+n, len(keys))])
	}
}

func toBytes(keys []string) [][]byte {
	b := make([][]byte, len(keys))
	for i, k := range keys {
		b[i] = []byte(k)
	}
	return b
}

// viaNutcracker writes keys[i] = prefix+i through nutcracker at listen.
func viaNutcracker(t *testing.T, listen, prefix string, keys []string) {
	t.Helper()
	proxy := testserver.DialMemcache(t, listen)
	defer proxy.Close()
	for i, k := range keys {
		require.NoError(t, proxy.Set([]byte(k), []byte(prefix+strconv.Itoa(i))), "set %q through nutcracker", k)
	}
}

// clientHits reads every key with mc, one Get each, and returns how many it
// found with the value viaNutcracker wrote, and up to three that it did not.
func clientHits(t *testing.T, mc *memcache.Client, prefix string, keys []string) (int, []string) {
	t.Helper()
	hits := 0
	var missed []string
	for i, k := range keys {
		it, err := mc.Get(k)
		if err == nil && string(it.Value) == prefix+strconv.Itoa(i) {
			hits++
			continue
		}
		if !errors.Is(err, memcache.ErrCacheMiss) {
			require.NoError(t, err, "get %q", k)
		}
		if len(missed) < 3 {
			missed = append(missed, strconv.Quote(k))
		}
	}
	return hits, missed
}

// multiHits reads keys with mc's GetMulti, 100 at a time, and returns how
// many it found.
func multiHits(t *testing.T, mc *memcache.Client, keys []string) int {
	t.Helper()
	hits := 0
	chunks(keys, 100, func(c []string) {
		got, err := mc.GetMulti(c)
		require.NoError(t, err)
		hits += len(got)
	})
	return hits
}

// nutcrackerHits reads keys through nutcracker and returns how many hold
// the value prefix+index.
func nutcrackerHits(t *testing.T, listen, prefix string, keys []string) int {
	t.Helper()
	proxy := testserver.DialMemcache(t, listen)
	defer proxy.Close()
	hits := 0
	off := 0
	chunks(keys, 100, func(c []string) {
		got, err := proxy.Get(toBytes(c)...)
		require.NoError(t, err)
		for j, k := range c {
			if v, ok := got[k]; ok && string(v) == prefix+strconv.Itoa(off+j) {
				hits++
			}
		}
		off += len(c)
	})
	return hits
}

// TestCrossCheckNutcracker writes 2,000 keys through nutcracker and reads
// every one with NewFromPool over the same nutcracker.yml, then writes 2,000
// more with the Client and reads them through nutcracker, for memcached
// pools with a hash tag and unequal weights: ketama and modula over named
// servers, and ketama and modula over unnamed ones, including a server on
// port 11211 (named by its host alone) and one on a unix socket. Every key
// must be found both ways.
func TestCrossCheckNutcracker(t *testing.T) {
	testserver.RequireBinary(t, "nutcracker")
	named := func() []string {
		var s []string
		for i, w := range []int{3, 1, 2} {
			m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
			s = append(s, fmt.Sprintf("%s:%d mc-%c", m.Addr, w, 'c'-i))
		}
		return s
	}
	unnamed := func() []string {
		m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
		m11211 := testserver.StartMemcachedOn11211(t)
		return []string{
			m.Addr + ":1",
			startUnixMemcached(t) + ":3",
			m11211.Host + ":11211:2",
		}
	}
	pools := []*e2ePool{
		{name: "ketama_named", hash: "fnv1a_64", dist: "ketama", servers: named()},
		{name: "modula_named", hash: "fnv1a_64", dist: "modula", servers: named()},
		{name: "ketama_unnamed", hash: "md5", dist: "ketama", servers: unnamed()},
		{name: "modula_unnamed", hash: "murmur", dist: "modula", servers: unnamed()},
	}
	cfg := startNutcracker(t, pools...)
	rng := rand.New(rand.NewPCG(2026, 11211))
	const n = 2000
	total := 0
	for _, p := range pools {
		t.Run(p.name, func(t *testing.T) {
			pool := cfg[p.name]
			keys := randomKeys(rng, 2*n)
			fromProxy, fromClient := keys[:n], keys[n:]
			mc, err := gomemcache.NewFromPool(pool)
			require.NoError(t, err)

			// nutcracker writes, the Client reads.
			viaNutcracker(t, p.listen, p.name+"/", fromProxy)
			hits, missed := clientHits(t, mc, p.name+"/", fromProxy)
			assert.Equal(t, n, hits, "keys written through nutcracker that the Client missed, e.g. %v", missed)
			assert.Equal(t, n, multiHits(t, mc, fromProxy), "GetMulti")
			// The primary form, from the servers and ring options alone.
			direct, err := gomemcache.New(pool.Servers, pool.RingOptions())
			require.NoError(t, err)
			assert.Equal(t, n, multiHits(t, direct, fromProxy), "New(servers, ring options)")

			// The Client writes, nutcracker reads.
			for i, k := range fromClient {
				require.NoError(t, mc.Set(&memcache.Item{Key: k, Value: []byte(p.name + "/" + strconv.Itoa(i))}), "set %q", k)
			}
			back := nutcrackerHits(t, p.listen, p.name+"/", fromClient)
			assert.Equal(t, n, back, "keys written by the Client that nutcracker missed")

			// The test can tell: gomemcache's own ServerList (crc32 modulo
			// over the same servers) misses most of them.
			var addrs []string
			for _, s := range pool.Servers {
				_, a := s.Network()
				addrs = append(addrs, a)
			}
			naive := multiHits(t, memcache.New(addrs...), fromProxy)
			assert.Less(t, naive, n*3/4)
			t.Logf("%s: %d/%d keys written through nutcracker found by the Client (Get and GetMulti), %d/%d written by the Client found through nutcracker; a ServerList client finds %d/%d",
				p.name, hits, n, back, n, naive, n)
			total += 2 * n
		})
	}
	t.Logf("%d pools, %d keys, each written by one side and found by the other", len(pools), total)
}

// TestEjectionNutcracker stops a memcached, lets nutcracker eject it
// (auto_eject_hosts, server_failure_limit 1), and requires a Client whose
// Selector has the same server ejected with SetLive to find every key
// written through nutcracker afterwards, and nutcracker to find every key
// the Client writes, for ketama with unequal weights (every live server's
// point count changes) and modula (the modulus changes).
func TestEjectionNutcracker(t *testing.T) {
	testserver.RequireBinary(t, "nutcracker")
	var mcs []*testserver.Server
	var list []string
	for i, w := range []int{1, 4, 2, 3} {
		m := testserver.StartMemcached(t, testserver.MemcachedOptions{})
		mcs = append(mcs, m)
		list = append(list, fmt.Sprintf("%s:%d s%d", m.Addr, w, i))
	}
	extra := "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  timeout: 2000\n"
	pools := []*e2ePool{
		{name: "ej_ketama", hash: "fnv1a_64", dist: "ketama", servers: list, extra: extra},
		{name: "ej_modula", hash: "fnv1a_32", dist: "modula", servers: list, extra: extra},
	}
	cfg := startNutcracker(t, pools...)
	rng := rand.New(rand.NewPCG(4, 4))

	const dead = 1 // s1, weight 4: the most keys move
	mcs[dead].Stop()
	const n = 2000
	for _, p := range pools {
		t.Run(p.name, func(t *testing.T) {
			pool := cfg[p.name]
			sel, err := gomemcache.NewSelectorFromPool(pool)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("s%d", dead), sel.Ring().ID(dead))
			mc := memcache.NewFromSelector(sel)
			mc.Timeout = pool.Timeout

			// A request for a key on the stopped server fails, through
			// nutcracker (which ejects it) and from the Client.
			var probe string
			for _, k := range randomKeys(rng, 1000) {
				if sel.Ring().PickString(k) == dead {
					probe = k
					break
				}
			}
			require.NotEmpty(t, probe)
			proxy := testserver.DialMemcache(t, p.listen)
			_, err = proxy.Get([]byte(probe))
			require.Error(t, err, "a get for a key on the stopped server must fail")
			require.NoError(t, proxy.Close())
			_, err = mc.Get(probe)
			require.Error(t, err)
			require.NotErrorIs(t, err, memcache.ErrCacheMiss)

			base := sel.Ring()
			live := []bool{true, true, true, true}
			live[dead] = false
			require.NoError(t, sel.SetLive(live))

			keys := randomKeys(rng, 2*n)
			fromProxy, fromClient := keys[:n], keys[n:]
			moved := 0
			for _, k := range fromProxy {
				if base.PickString(k) != sel.Ring().PickString(k) {
					moved++
				}
			}
			assert.Positive(t, moved, "the test must exercise a change of placement")

			viaNutcracker(t, p.listen, p.name+"/", fromProxy)
			hits, missed := clientHits(t, mc, p.name+"/", fromProxy)
			assert.Equal(t, n, hits, "keys written through nutcracker after the ejection that the Client missed, e.g. %v", missed)
			for i, k := range fromClient {
				require.NoError(t, mc.Set(&memcache.Item{Key: k, Value: []byte(p.name + "/" + strconv.Itoa(i))}), "set %q", k)
			}
			back := nutcrackerHits(t, p.listen, p.name+"/", fromClient)
			assert.Equal(t, n, back, "keys written by the Client that nutcracker missed")
			t.Logf("%s with s%d ejected: %d of %d keys moved; %d/%d written through nutcracker found by the Client, %d/%d written by the Client found through nutcracker",
				p.name, dead, moved, n, hits, n, back, n)
		})
	}
}

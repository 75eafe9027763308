// Package shard places keys on servers exactly as twemproxy (nutcracker) 0.5.0
// does: ketama, modula and random distributions, hash tags, weights, server
// naming and ordering.
//
// A Go service that builds a Ring from the same server list, hash,
// distribution and hash tag as a nutcracker.yml pool gets, for every key, the
// server nutcracker would pick, with no network hop:
//
//	servers, err := shard.ParseServers("10.0.0.1:6379:1 cache-a", "10.0.0.2:6379:1 cache-b")
//	ring, err := shard.NewRing(servers, shard.RingOptions{HashTag: "{}"})
//	s := ring.LookupString(key) // the server: s.Addr, s.ID()
//
// Servers are ordered as twemproxy orders them (by ID: shorter first, then
// bytewise), and every index in this package (Pick's result, Server(i),
// Live(i), WithLive's flags) refers to that order, whatever order the caller
// listed them in: index ring.Servers(), never a slice of one's own, with
// Pick's result, or use Lookup. ParseServers returns its servers in that
// order, and RingOrder maps any list onto it.
package shard

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/walnutproxy/walnut/hashkit"
	"github.com/walnutproxy/walnut/internal/bytesconv"
)

// Distribution selects how hashed keys map to servers.
type Distribution uint8

// The distributions of twemproxy's "distribution:" setting.
const (
	// Ketama is the libketama/libmemcached continuum twemproxy uses: 160
	// points per server (scaled by weight, computed in 32-bit float), four
	// points per MD5 of "<name>-<i>". Adding or removing a server moves only
	// about 1/n of the keys. It is twemproxy's default.
	Ketama Distribution = iota
	// Modula maps hash mod total-weight onto the servers in index order, each
	// owning a run of residues as long as its weight.
	Modula
	// Random sends each key to a uniformly random live server; the hash is
	// not used. Only useful for caches where any server will do.
	Random
)

var distributionNames = [...]string{Ketama: "ketama", Modula: "modula", Random: "random"}

// String returns the twemproxy configuration name of d.
func (d Distribution) String() string {
	if int(d) < len(distributionNames) {
		return distributionNames[d]
	}
	return fmt.Sprintf("Distribution(%d)", uint8(d))
}

// ParseDistribution returns the distribution for a twemproxy configuration
// name ("ketama", "modula" or "random", lowercase). Other names yield an
// error wrapping ErrUnknownDistribution.
func ParseDistribution(name string) (Distribution, error) {
	for d, n := range distributionNames {
		if n == name {
			return Distribution(d), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownDistribution, name)
}

// Errors returned by NewRing, ParseDistribution and Ring.WithLive.
var (
	ErrNoServers           = errors.New("shard: no servers")
	ErrNoLiveServers       = errors.New("shard: no live servers")
	ErrDuplicateName       = errors.New("shard: servers with the same name")
	ErrInvalidWeight       = errors.New("shard: invalid weight")
	ErrInvalidHashTag      = errors.New("shard: hash tag must be exactly two bytes")
	ErrUnknownDistribution = errors.New("shard: unknown distribution")
)

// RingOptions configures NewRing. The zero value is twemproxy's default:
// fnv1a_64 key hash, ketama distribution, no hash tag.
type RingOptions struct {
	// Hash hashes keys (after hash-tag extraction). If nil, hashkit.FNV64a,
	// twemproxy's default, is used. It never affects where ketama puts a
	// server's points: those always come from MD5, as in twemproxy.
	Hash hashkit.Func
	// Distribution selects ketama (the zero value), modula or random.
	Distribution Distribution
	// HashTag, if set, must be two bytes, such as "{}". A key containing the
	// first byte, then later the second with at least one byte between them,
	// is placed by the bytes between (so "user:{42}:name" by "42"); other keys
	// are placed by the whole key.
	HashTag string
}

// A Ring maps keys to servers. It is immutable and safe for concurrent use.
// To change which servers are live (ejection), derive a new Ring with
// WithLive and swap it in, typically through an atomic.Pointer.
type Ring struct {
	servers []Server // in index order
	ids     []string // servers[i].ID()
	live    []bool
	nlive   int
	dist    Distribution
	hash    hashkit.Func
	tag     [2]byte
	hasTag  bool
	single  bool // exactly one configured server: twemproxy skips hashing
	fnv     bool // hash is the default FNV64a: called directly, inlined

	// ketama
	cont ketamaContinuum
	pts  []int // points per server (0 for dead servers)

	// modula: cum[j] is the running total of weights of liveIdx[0..j].
	cum []uint32
	// random and modula: the live servers' indexes.
	liveIdx []int

	cache *pointCache // ketama digests, shared by rings derived by WithLive
}

// NewRing builds a ring over servers with every server live. It copies
// servers, orders them by ID as twemproxy does (shorter first, then
// bytewise; see RingOrder), and checks that IDs are unique (else a
// *DuplicateNameError), weights are not negative and the hash tag, if any,
// is two bytes.
func NewRing(servers []Server, opts RingOptions) (*Ring, error) {
	if len(servers) == 0 {
		return nil, ErrNoServers
	}
	if opts.HashTag != "" && len(opts.HashTag) != 2 {
		return nil, fmt.Errorf("%w: %q", ErrInvalidHashTag, opts.HashTag)
	}
	if opts.Distribution > Random {
		return nil, fmt.Errorf("%w: %v", ErrUnknownDistribution, opts.Distribution)
	}
	r := &Ring{
		servers: make([]Server, len(servers)),
		dist:    opts.Distribution,
		hash:    opts.Hash,
		single:  len(servers) == 1,
	}
	if r.hash == nil {
		r.hash = hashkit.FNV64a
		r.fnv = true
	}
	if opts.HashTag != "" {
		r.tag = [2]byte{opts.HashTag[0], opts.HashTag[1]}
		r.hasTag = true
	}
	for _, s := range servers {
		if s.Weight < 0 || s.Weight > maxWeight {
			return nil, fmt.Errorf("%w %d for server %q", ErrInvalidWeight, s.Weight, s.ID())
		}
	}
	order, err := RingOrder(servers)
	if err != nil {
		return nil, err
	}
	r.ids = make([]string, len(r.servers))
	for j, i := range order {
		r.servers[j] = servers[i]
		r.ids[j] = servers[i].ID()
	}
	r.cache = newPointCache(r.ids)
	live := make([]bool, len(r.servers))
	for i := range live {
		live[i] = true
	}
	r.build(live)
	return r, nil
}

// maxWeight bounds weights so that sums of weights fit in 32 bits, as in
// twemproxy, for up to 256 servers at the limit.
const maxWeight = 1 << 23

// compareNames orders names as twemproxy's string_compare: shorter first,
// then bytewise.
func compareNames(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// WithLive returns a ring over the same servers in which only the servers i
// with live[i] receive keys, as twemproxy rebuilds its distribution when
// auto_eject_hosts ejects servers: ketama recomputes every live server's
// point count over the live total weight, so only the dead servers' keys
// move (other servers' counts can shift slightly when weights differ);
// modula takes the modulus over the live weights. Indexes are unchanged.
// len(live) must equal Len(). If no server is live, WithLive returns
// ErrNoLiveServers. MD5 digests are shared with r, so this is cheap.
func (r *Ring) WithLive(live []bool) (*Ring, error) {
	if len(live) != len(r.servers) {
		return nil, fmt.Errorf("shard: WithLive got %d flags for %d servers", len(live), len(r.servers))
	}
	if !slices.Contains(live, true) {
		return nil, ErrNoLiveServers
	}
	nr := &Ring{
		servers: r.servers,
		ids:     r.ids,
		dist:    r.dist,
		hash:    r.hash,
		tag:     r.tag,
		hasTag:  r.hasTag,
		single:  r.single,
		fnv:     r.fnv,
		cache:   r.cache,
	}
	nr.build(slices.Clone(live))
	return nr, nil
}

func (r *Ring) build(live []bool) {
	r.live = live
	r.nlive = 0
	r.liveIdx = r.liveIdx[:0]
	var total uint32
	for i, ok := range live {
		if ok {
			r.nlive++
			r.liveIdx = append(r.liveIdx, i)
			total += uint32(r.servers[i].weight())
		}
	}
	switch r.dist {
	case Ketama:
		r.pts = make([]int, len(r.servers))
		for _, i := range r.liveIdx {
			r.pts[i] = ketamaPoints(uint32(r.servers[i].weight()), total, r.nlive)
		}
		r.cont = buildContinuum(r.cache, r.pts)
	case Modula:
		r.cum = make([]uint32, len(r.liveIdx))
		var sum uint32
		for j, i := range r.liveIdx {
			sum += uint32(r.servers[i].weight())
			r.cum[j] = sum
		}
	}
}

// Pick returns the index (into Servers) of the server that serves key. It
// applies the hash tag, hashes empty keys to 0 and skips hashing in a
// one-server ring, as twemproxy does. It does not allocate or retain key.
func (r *Ring) Pick(key []byte) int {
	if r.single {
		return 0
	}
	if r.dist != Ketama {
		if r.dist == Random {
			return r.liveIdx[rand.IntN(len(r.liveIdx))]
		}
		return r.pickHash(r.Hash(key))
	}
	// Ketama, the common case, with Hash inlined by hand.
	if r.hasTag {
		key = hashTagged(key, r.tag[0], r.tag[1])
	}
	var h uint32
	if len(key) != 0 {
		if r.fnv {
			h = hashkit.FNV64a(key)
		} else {
			h = r.hash(key)
		}
	}
	return r.cont.lookup(h)
}

// Hash returns the hash value twemproxy computes for key in this pool: the
// hash of the hash-tagged part of the key, 0 for an empty key, and 0 in a
// one-server pool.
func (r *Ring) Hash(key []byte) uint32 {
	if r.single {
		return 0
	}
	if r.hasTag {
		key = hashTagged(key, r.tag[0], r.tag[1])
	}
	if len(key) == 0 {
		return 0
	}
	if r.fnv {
		return hashkit.FNV64a(key)
	}
	return r.hash(key)
}

func (r *Ring) pickHash(h uint32) int {
	switch r.dist {
	case Ketama:
		return r.cont.lookup(h)
	case Modula:
		m := h % r.cum[len(r.cum)-1]
		j, _ := slices.BinarySearch(r.cum, m+1) // first j with cum[j] > m
		return r.liveIdx[j]
	}
	return r.liveIdx[rand.IntN(len(r.liveIdx))]
}

// PickString is Pick for a string key, without copying it.
func (r *Ring) PickString(key string) int {
	return r.Pick(bytesconv.StringToBytes(key))
}

// Lookup returns the server that serves key: its Addr to connect to (or
// Network for net.Dial), its ID for nutcracker's stats. It is
// r.Server(r.Pick(key)), and like Pick it does not allocate.
//
// Prefer it to indexing a slice of one's own with Pick: Pick's index is in
// ring order (sorted by ID), not in the order the servers were given to
// NewRing, so servers[ring.Pick(key)] is a different server whenever the
// caller's slice is in another order.
func (r *Ring) Lookup(key []byte) Server {
	return r.servers[r.Pick(key)]
}

// LookupString is Lookup for a string key, without copying it.
func (r *Ring) LookupString(key string) Server {
	return r.servers[r.PickString(key)]
}

// Get returns the ID of the server that serves key. With it a *Ring
// satisfies go-redis's ConsistentHash interface (Get(string) string), so it
// can be returned from redis.RingOptions.NewConsistentHash when the ring is
// built over servers named like the go-redis shards.
func (r *Ring) Get(key string) string {
	return r.ids[r.PickString(key)]
}

// Len returns the number of servers, live or not.
func (r *Ring) Len() int { return len(r.servers) }

// Server returns the server at index i.
func (r *Ring) Server(i int) Server { return r.servers[i] }

// ID returns the ID of the server at index i (see Server.ID).
func (r *Ring) ID(i int) string { return r.ids[i] }

// Servers returns a copy of the servers in index order.
func (r *Ring) Servers() []Server { return slices.Clone(r.servers) }

// Live reports whether the server at index i receives keys.
func (r *Ring) Live(i int) bool { return r.live[i] }

// Distribution returns the ring's distribution.
func (r *Ring) Distribution() Distribution { return r.dist }

// Points returns the number of ketama continuum points the server at index i
// owns: 160 for an equal share, fewer or more with weights, and 0 for a dead
// server or outside ketama.
func (r *Ring) Points(i int) int {
	if r.dist != Ketama {
		return 0
	}
	return r.pts[i]
}

// hashTagged returns the part of key twemproxy hashes under hash tag l, rr:
// the bytes between the first l and the first rr after it, if there is at
// least one; otherwise the whole key.
func hashTagged(key []byte, l, rr byte) []byte {
	i := bytes.IndexByte(key, l)
	if i < 0 {
		return key
	}
	j := bytes.IndexByte(key[i+1:], rr)
	if j <= 0 { // not found, or nothing between the tags
		return key
	}
	return key[i+1 : i+1+j]
}

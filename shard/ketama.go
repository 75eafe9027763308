package shard

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"
)

const (
	ketamaPointsPerServer = 160
	ketamaPointsPerHash   = 4
	// ketamaMaxHostLen is twemproxy's buffer for "<name>-<i>" including its
	// NUL, so at most ketamaMaxHostLen-1 bytes are hashed.
	ketamaMaxHostLen = 273
)

// ketamaPoints returns the number of continuum points twemproxy gives a live
// server of weight w when the live servers number nlive and weigh total,
// reproducing nc_ketama.c's single-precision arithmetic step by step (each
// explicit float32 conversion rounds, as the C float operations do, and
// keeps the compiler from fusing operations). This is why 25 equal servers
// get 156 points each rather than 160, and why a server can get 0.
func ketamaPoints(w, total uint32, nlive int) int {
	pct := float32(w) / float32(total)
	x := float32(pct * ketamaPointsPerServer)
	x = float32(x / ketamaPointsPerHash)
	x = float32(x * float32(nlive))
	x = float32(float64(x) + 0.0000000001) // C adds a double constant
	return int(math.Floor(float64(x))) * ketamaPointsPerHash
}

// pointCache holds each server's ketama point values in generation order:
// for i = 0, 1, …, the four little-endian words of MD5("<id>-<i>"). A server
// always takes a prefix of its own sequence, so rings derived by WithLive
// reuse the digests and only compute new ones when a count grows.
type pointCache struct {
	ids []string

	mu  sync.Mutex
	pts [][]uint32 // per server; only ever replaced by a longer slice
}

func newPointCache(ids []string) *pointCache {
	return &pointCache{ids: ids, pts: make([][]uint32, len(ids))}
}

// points returns the first n point values of server i. The result must not
// be modified.
func (c *pointCache) points(i, n int) []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	have := c.pts[i]
	if len(have) >= n {
		return have[:n]
	}
	grown := make([]uint32, len(have), n)
	copy(grown, have)
	buf := make([]byte, 0, ketamaMaxHostLen+16)
	for d := len(have) / ketamaPointsPerHash; len(grown) < n; d++ {
		buf = append(append(buf[:0], c.ids[i]...), '-')
		buf = strconv.AppendUint(buf, uint64(d), 10)
		if len(buf) > ketamaMaxHostLen-1 {
			buf = buf[:ketamaMaxHostLen-1]
		}
		sum := md5.Sum(buf)
		for k := 0; k < 16; k += 4 {
			grown = append(grown, binary.LittleEndian.Uint32(sum[k:]))
		}
	}
	c.pts[i] = grown
	return grown[:n]
}

// ketamaContinuum is the sorted ring of points with the server owning each,
// plus a bucket index over the top bits of the hash so that a lookup scans a
// handful of points instead of binary-searching all of them.
type ketamaContinuum struct {
	values []uint32
	owners []int32
	shift  uint     // 32 - bucket bits
	bucket []uint32 // bucket[b] = first point index with value >> shift >= b; len 2^bits+1
}

// buildContinuum gathers pts[i] points of each server i from the cache and
// sorts them ascending by value (ties by server index; twemproxy's qsort
// leaves ties unspecified, and MD5 collisions within 32 bits are rare).
func buildContinuum(cache *pointCache, pts []int) ketamaContinuum {
	total := 0
	for _, n := range pts {
		total += n
	}
	// Sort value<<32|owner as plain integers: ascending by value, ties by
	// owner, and several times faster than sorting structs with a closure.
	all := make([]uint64, 0, total)
	for i, n := range pts {
		for _, v := range cache.points(i, n) {
			all = append(all, uint64(v)<<32|uint64(i))
		}
	}
	sortPoints(all)
	c := ketamaContinuum{values: make([]uint32, len(all)), owners: make([]int32, len(all))}
	for j, p := range all {
		c.values[j], c.owners[j] = uint32(p>>32), int32(uint32(p))
	}
	// About four points per bucket (a quarter of the memory of one per
	// bucket, for the same speed), between 2^4 and 2^16 buckets.
	nbits := min(max(bits.Len(uint(len(all)))-2, 4), 16)
	c.shift = uint(32 - nbits)
	c.bucket = make([]uint32, 1<<nbits+1)
	j := 0
	for b := range 1 << nbits {
		for j < len(c.values) && int(c.values[j]>>c.shift) < b {
			j++
		}
		c.bucket[b] = uint32(j)
	}
	c.bucket[1<<nbits] = uint32(len(c.values))
	return c
}

// sortPoints sorts value<<32|owner keys ascending. Large continua (ejection
// rebuilds of big pools) use a stable LSD radix sort on the value in three
// 11-bit passes; owners were appended in ascending order, so ties keep owner
// order exactly as a full comparison sort would.
func sortPoints(keys []uint64) {
	if len(keys) < 4096 {
		slices.Sort(keys)
		return
	}
	const digit = 11
	tmp := make([]uint64, len(keys))
	src, dst := keys, tmp
	for shift := uint(32); shift < 64; shift += digit {
		var count [1 << digit]int
		for _, k := range src {
			count[(k>>shift)&(1<<digit-1)]++
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			d := (k >> shift) & (1<<digit - 1)
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	// Three passes leave the result in tmp.
	copy(keys, src)
}

// lookup returns the owner of the first point whose value is >= h, wrapping
// to the first point when h is above them all (twemproxy's ketama_dispatch).
func (c *ketamaContinuum) lookup(h uint32) int {
	b := h >> c.shift
	lo, hi := c.bucket[b], c.bucket[b+1]
	// Every point in [lo, hi) shares h's bucket; the first one >= h is there
	// or, if none is, it is the first point of a later bucket: index hi.
	for lo < hi && c.values[lo] < h {
		lo++
	}
	if int(lo) == len(c.values) {
		lo = 0
	}
	return int(c.owners[lo])
}

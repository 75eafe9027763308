package hashkit

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"

	farm "github.com/dgryski/go-farm"
)

// OneAtATime is twemproxy's "one_at_a_time": Bob Jenkins' one-at-a-time hash
// over sign-extended bytes.
func OneAtATime(key []byte) uint32 {
	var h uint32
	for _, b := range key {
		h += sext32(b)
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}

// MD5 is twemproxy's "md5": the first four bytes of the key's MD5 digest read
// little-endian.
func MD5(key []byte) uint32 {
	d := md5.Sum(key)
	return binary.LittleEndian.Uint32(d[:4])
}

// CRC32 is twemproxy's "crc32", the libmemcached variant: the IEEE CRC-32 of
// the key shifted right by 16 and masked to 15 bits, so it is at most 0x7FFF.
// With ketama distribution nearly every key therefore lands on the server
// owning the lowest ring point; prefer CRC32a.
func CRC32(key []byte) uint32 {
	return (crc32.ChecksumIEEE(key) >> 16) & 0x7fff
}

// CRC32a is twemproxy's "crc32a": the standard IEEE CRC-32 (as zlib's crc32).
func CRC32a(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}

// Farm is Google's FarmHash Hash32 (github.com/dgryski/go-farm). It is not a
// twemproxy hash: a pool using it cannot be shared with nutcracker.
func Farm(key []byte) uint32 {
	return farm.Hash32(key)
}

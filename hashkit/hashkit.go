// Package hashkit provides the key hash functions that place keys on servers,
// bit-exact with the hash: setting of twemproxy (nutcracker) 0.5.0 on x86-64.
//
// Every function has the shape of [Func]: it hashes a whole key to 32 bits in
// one call, does not allocate, and neither modifies nor retains the key. The
// names follow Go's hash/fnv (FNV64a for twemproxy's "fnv1a_64"); [ByName]
// maps twemproxy's configuration names to functions.
//
// twemproxy's functions carry quirks that are reproduced on purpose, because a
// key must land on the same server through walnut as through nutcracker:
//
//   - fnv1a_64, the default, is computed in 32 bits with truncated 64-bit
//     constants; it is not FNV-1a-64 truncated to 32 bits.
//   - one_at_a_time, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32 and the 3-byte tail of
//     hsieh read bytes through a signed char, so a byte ≥ 0x80 enters the
//     arithmetic sign-extended (0xC3 as 0xFFFFFFC3).
//   - crc16 keeps a 32-bit register that is never masked to 16 bits.
//   - crc32 (libmemcached's) keeps only 15 bits: (CRC-32 >> 16) & 0x7FFF.
//   - hsieh starts from 0 instead of the key length.
//   - murmur is MurmurHash2 seeded with 0xdeadbeef × len; jenkins is lookup3
//     hashlittle with initval 13.
//
// Farm (Google's FarmHash via github.com/dgryski/go-farm) is offered as a
// modern choice that twemproxy does not have.
package hashkit

import (
	"errors"
	"fmt"
)

// Func hashes a key to 32 bits. Implementations must be safe for concurrent
// use and must neither modify nor retain key.
type Func func(key []byte) uint32

// ErrUnknown is returned (wrapped) by ByName for a name that is not a hash
// twemproxy or walnut defines.
var ErrUnknown = errors.New("hashkit: unknown hash name")

// Default is the name of twemproxy's default hash.
const Default = "fnv1a_64"

// names lists the configuration names in twemproxy's order (nc_hashkit.h),
// followed by walnut's additions.
var names = [...]string{
	"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
	"fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins", "farm",
}

// Names returns the configuration names ByName accepts: twemproxy's twelve in
// twemproxy's order, then "farm". The slice is a fresh copy.
func Names() []string {
	out := make([]string, len(names))
	copy(out, names[:])
	return out
}

// ByName returns the hash function for a configuration name such as
// "fnv1a_64". Names are matched exactly (lowercase), as twemproxy does. An
// unknown name yields an error wrapping ErrUnknown.
func ByName(name string) (Func, error) {
	switch name {
	case "one_at_a_time":
		return OneAtATime, nil
	case "md5":
		return MD5, nil
	case "crc16":
		return CRC16, nil
	case "crc32":
		return CRC32, nil
	case "crc32a":
		return CRC32a, nil
	case "fnv1_64":
		return FNV64, nil
	case "fnv1a_64":
		return FNV64a, nil
	case "fnv1_32":
		return FNV32, nil
	case "fnv1a_32":
		return FNV32a, nil
	case "hsieh":
		return Hsieh, nil
	case "murmur":
		return Murmur, nil
	case "jenkins":
		return Jenkins, nil
	case "farm":
		return Farm, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknown, name)
}

// sext32 widens a byte the way twemproxy's C code does on x86-64, where char
// is signed: bytes ≥ 0x80 are sign-extended.
func sext32(b byte) uint32 { return uint32(int32(int8(b))) }

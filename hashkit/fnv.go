package hashkit

// The 64-bit FNV constants truncated to 32 bits. twemproxy's fnv1a_64 uses
// them in 32-bit arithmetic; for fnv1_64 the low 32 bits of the 64-bit
// product depend only on the low 32 bits of its factors, so 32-bit
// arithmetic gives the same low word as twemproxy's 64-bit loop.
const (
	fnv64Init32  = 0x84222325 // low word of 0xcbf29ce484222325
	fnv64Prime32 = 0x000001b3 // low word of 0x100000001b3
	fnv32Init    = 0x811c9dc5
	fnv32Prime   = 0x01000193
)

// FNV64 is twemproxy's "fnv1_64": 64-bit FNV-1 (multiply, then xor the
// sign-extended byte), returning the low 32 bits.
func FNV64(key []byte) uint32 {
	h := uint32(fnv64Init32)
	for _, b := range key {
		h *= fnv64Prime32
		h ^= sext32(b)
	}
	return h
}

// FNV64a is twemproxy's "fnv1a_64", the default hash. Despite its name it
// works in 32 bits: h = 0x84222325; per byte h ^= sext(b); h *= 0x1b3.
func FNV64a(key []byte) uint32 {
	h := uint32(fnv64Init32)
	for _, b := range key {
		h ^= sext32(b)
		h *= fnv64Prime32
	}
	return h
}

// FNV32 is twemproxy's "fnv1_32": 32-bit FNV-1 over sign-extended bytes.
func FNV32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h *= fnv32Prime
		h ^= sext32(b)
	}
	return h
}

// FNV32a is twemproxy's "fnv1a_32": 32-bit FNV-1a over sign-extended bytes.
func FNV32a(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h ^= sext32(b)
		h *= fnv32Prime
	}
	return h
}

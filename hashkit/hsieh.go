package hashkit

// Hsieh is twemproxy's "hsieh": Paul Hsieh's SuperFastHash started from 0
// rather than the key length. An empty key hashes to 0.
func Hsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	var h uint32
	n := len(key) &^ 3
	for i := 0; i < n; i += 4 {
		h += uint32(key[i]) | uint32(key[i+1])<<8
		tmp := (uint32(key[i+2])|uint32(key[i+3])<<8)<<11 ^ h
		h = h<<16 ^ tmp
		h += h >> 11
	}
	tail := key[n:]
	switch len(tail) {
	case 3:
		h += uint32(tail[0]) | uint32(tail[1])<<8
		h ^= h << 16
		h ^= sext32(tail[2]) << 18
		h += h >> 11
	case 2:
		h += uint32(tail[0]) | uint32(tail[1])<<8
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(tail[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

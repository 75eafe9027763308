package hashkit

// crc16Table is the CRC-16/XMODEM table (polynomial 0x1021, not reflected).
var crc16Table = makeCRC16Table()

func makeCRC16Table() [256]uint16 {
	var t [256]uint16
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}

// CRC16 is twemproxy's "crc16": CRC-16/XMODEM over a 32-bit register that is
// never masked, so the low 16 bits equal the XMODEM CRC and the high 16 bits
// carry shifted-out history. The whole 32-bit value is returned.
func CRC16(key []byte) uint32 {
	var c uint32
	for _, b := range key {
		c = c<<8 ^ uint32(crc16Table[byte(c>>8)^b])
	}
	return c
}

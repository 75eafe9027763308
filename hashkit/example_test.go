package hashkit_test

import (
	"errors"
	"fmt"

	"github.com/walnutproxy/walnut/hashkit"
)

func ExampleByName() {
	fn, err := hashkit.ByName("fnv1a_64") // twemproxy's default "hash:"
	if err != nil {
		panic(err)
	}
	fmt.Printf("%#08x\n", fn([]byte("foo")))

	_, err = hashkit.ByName("sha1")
	fmt.Println(errors.Is(err, hashkit.ErrUnknown), err)
	// Output:
	// 0xfed9d577
	// true hashkit: unknown hash name "sha1"
}

func ExampleCRC32() {
	// libmemcached's crc32 keeps 15 bits; crc32a is the standard CRC-32.
	key := []byte("123456789")
	fmt.Printf("crc32=%#04x crc32a=%#08x\n", hashkit.CRC32(key), hashkit.CRC32a(key))
	// Output:
	// crc32=0x4bf4 crc32a=0xcbf43926
}

func ExampleFNV64a() {
	// Bytes ≥ 0x80 are sign-extended, as in twemproxy's C code on x86-64.
	fmt.Printf("%#08x\n", hashkit.FNV64a([]byte("été")))
	// Output:
	// 0xea769c57
}

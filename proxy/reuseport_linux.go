//go:build linux && !mips && !mipsle && !mips64 && !mips64le && !sparc64 && !ppc64 && !ppc64le

package proxy

// soReusePort is Linux's SO_REUSEPORT (15 on these architectures), which
// package syscall does not name.
const soReusePort = 0xf

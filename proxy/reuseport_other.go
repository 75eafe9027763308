//go:build !linux || mips || mipsle || mips64 || mips64le || sparc64 || ppc64 || ppc64le

package proxy

// soReusePort is unknown here: Config.ReusePort makes Listen fail.
const soReusePort = -1

//go:build !linux

package evloop

// Supported reports whether this platform has the event loop.
const Supported = false

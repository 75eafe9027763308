package proxy

import (
	"runtime/debug"
	"sync"
	"time"
)

// Large values pass through the proxy in buffers of their own size. Once
// they are gone, the Go runtime keeps the memory for reuse and returns it
// to the system only slowly, and not at all while the proxy is idle (no
// garbage collection runs then). freeLater makes it return it soon after a
// burst of large values: when at least freeThreshold bytes of them have
// been let go, it schedules one collection that gives the free memory
// back (debug.FreeOSMemory), freeDelay later, so that a steady stream of
// large values costs at most one such collection per freeDelay.
const (
	freeThreshold = 32 << 20
	freeDelay     = time.Second
)

var freeing struct {
	sync.Mutex
	bytes     int
	scheduled bool
}

// freeLater records that n bytes of large buffers have been let go.
func freeLater(n int) {
	freeing.Lock()
	defer freeing.Unlock()
	freeing.bytes += n
	if freeing.bytes < freeThreshold || freeing.scheduled {
		return
	}
	freeing.scheduled = true
	time.AfterFunc(freeDelay, func() {
		freeing.Lock()
		freeing.bytes, freeing.scheduled = 0, false
		freeing.Unlock()
		debug.FreeOSMemory()
	})
}

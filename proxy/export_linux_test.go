package proxy

// PostToLoops runs f on every loop of e (tests: to hold a loop busy while
// events pile up).
func PostToLoops(e *Engine, f func()) {
	for _, l := range e.loops {
		l.post(f)
	}
}

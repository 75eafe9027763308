package proxy

import (
	"os"
	"strconv"
)

// WALNUT_TEST_LOOPS=N runs every Server the tests make with an Engine of N
// event loops, unless the test sets Config.Engine itself, so that the
// whole suite can be run against the event-loop engine.
func init() {
	v := os.Getenv("WALNUT_TEST_LOOPS")
	if v == "" || v == "0" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		panic("WALNUT_TEST_LOOPS: want a number of loops, got " + strconv.Quote(v))
	}
	e, err := NewEngine(n)
	if err != nil {
		panic("WALNUT_TEST_LOOPS: " + err.Error())
	}
	defaultEngine = e
}

// CloseTestEngine closes the Engine WALNUT_TEST_LOOPS made, if any, once
// every test has shut its Servers down.
func CloseTestEngine() {
	if defaultEngine != nil {
		defaultEngine.Close()
	}
}

// EngineLoopsForTest returns the loops of the engine WALNUT_TEST_LOOPS made;
// 0 without.
func EngineLoopsForTest() int {
	if defaultEngine == nil {
		return 0
	}
	return defaultEngine.Loops()
}

//go:build race

package proxy_test

// raceEnabled is true when the tests are built with -race, whose runtime
// allows at most 8128 live goroutines and multiplies memory use.
const raceEnabled = true

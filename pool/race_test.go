//go:build race

package pool_test

// raceEnabled reports a -race build, under which sync.Pool drops a quarter
// of what it is given, so allocation counts are higher.
const raceEnabled = true

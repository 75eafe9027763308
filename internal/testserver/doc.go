// Package testserver starts real redis-server, memcached and nutcracker
// processes for tests, on free loopback ports with generated
// configuration, and stops them when the test ends.
//
// It is for tests only: nothing outside _test.go files, examples and
// benchmarks may import it.
//
// The binaries are looked up in PATH and in /usr/sbin, /usr/local/sbin and
// /sbin. When one is missing the test is skipped, unless the environment
// variable CI is true, in which case the test fails: CI must install
// redis-server, memcached and nutcracker.
//
// Every helper that takes a testing.TB reports failures with t.Fatalf and
// must therefore be called from the goroutine running the test. Processes
// are started with exec.Command, not tied to a context, and are stopped by
// PID from t.Cleanup, so they are gone when the test ends even if it
// fails. Only 127.0.0.0/8 addresses are used.
package testserver

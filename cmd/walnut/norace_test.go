//go:build !race

package main

// raceEnabled builds the walnut binary of the tests with -race too.
const raceEnabled = false

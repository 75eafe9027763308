package config

import "context"

// ParseWithLookup is Parse with the host resolver chosen by the test, so
// that tests can resolve names without leaving the machine.
func ParseWithLookup(filename string, data []byte, lookup func(ctx context.Context, host string) ([]string, error)) ([]Pool, error) {
	return parse(filename, data, lookup)
}

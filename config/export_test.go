package config

import "context"

// ParseWithLookup is Parse with the host resolver chosen by the test, so
// that tests can resolve names without leaving the machine. It returns the
// file's pools.
func ParseWithLookup(filename string, data []byte, lookup func(ctx context.Context, host string) ([]string, error)) ([]Pool, error) {
	f, err := Loader{lookup: lookup}.Parse(filename, data)
	if err != nil {
		return nil, err
	}
	return f.Pools, nil
}

// WithLookup returns l resolving listen host names with lookup.
func WithLookup(l Loader, lookup func(ctx context.Context, host string) ([]string, error)) Loader {
	l.lookup = lookup
	return l
}

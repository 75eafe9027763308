package shard

import (
	"fmt"
	"slices"
)

// ParseServers parses the entries of a twemproxy "servers:" list (each
// "host:port:weight [name]" or "/path/to/unix.sock:weight [name]", as
// ParseServer reads them) and returns the servers in ring order: sorted by
// ID as twemproxy sorts them, the order of Ring.Servers and of nutcracker's
// stats, whatever order the entries are in. An entry that does not parse
// yields ParseServer's error (wrapping ErrInvalidServer); two entries that
// give the same ID yield a *DuplicateNameError (matching ErrDuplicateName);
// no entries yield ErrNoServers.
//
// This is how package config reads a pool's servers, so the result is what
// config.Pool.Servers holds for the same list.
func ParseServers(entries ...string) ([]Server, error) {
	if len(entries) == 0 {
		return nil, ErrNoServers
	}
	servers := make([]Server, len(entries))
	for i, e := range entries {
		s, err := ParseServer(e)
		if err != nil {
			return nil, err
		}
		servers[i] = s
	}
	order, err := RingOrder(servers)
	if err != nil {
		return nil, err
	}
	sorted := make([]Server, len(servers))
	for j, i := range order {
		sorted[j] = servers[i]
	}
	return sorted, nil
}

// RingOrder returns the order a Ring built over servers holds them in:
// order[j] is the index in servers of the server at ring index j (so
// ring.Server(j) is servers[order[j]]). Servers are sorted by ID, shorter
// first, then bytewise, as twemproxy sorts them. Two servers with the same
// ID yield a *DuplicateNameError.
//
// Use it to line up data kept beside servers, in the caller's order, with
// the indexes Ring.Pick returns.
func RingOrder(servers []Server) ([]int, error) {
	ids := make([]string, len(servers))
	order := make([]int, len(servers))
	for i, s := range servers {
		ids[i] = s.ID()
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareNames(ids[a], ids[b]) })
	for j := 1; j < len(order); j++ {
		if a, b := order[j-1], order[j]; ids[a] == ids[b] {
			return nil, &DuplicateNameError{ID: ids[a], First: a, Second: b}
		}
	}
	return order, nil
}

// A DuplicateNameError reports two servers with the same ID, which
// twemproxy rejects: they would share their points on the continuum and
// their stats. errors.Is(err, ErrDuplicateName) is true for it.
type DuplicateNameError struct {
	// ID is the name both servers have (see Server.ID).
	ID string
	// First and Second are the indexes of the two servers in the list
	// given (the entries of ParseServers, the servers of NewRing or
	// RingOrder); First < Second. With more than two, these are the first
	// two of them in ring order.
	First, Second int
}

func (e *DuplicateNameError) Error() string {
	return fmt.Sprintf("%v %q (entries %d and %d)", ErrDuplicateName, e.ID, e.First, e.Second)
}

// Is reports whether target is ErrDuplicateName.
func (e *DuplicateNameError) Is(target error) bool { return target == ErrDuplicateName }

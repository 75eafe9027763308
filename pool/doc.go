// Package pool will own the pipelined connections from walnut to the
// backends of one server group, with twemproxy's timeout and auto-ejection
// semantics.
//
// Not implemented yet: tracked by the issue "pool: pipelined backend
// connections". Nothing here is usable today.
package pool

// Package proxy will compose hashkit, shard, protocol and pool into
// twemproxy-compatible listeners.
//
// Not implemented yet: tracked by the issue "proxy and cmd/walnut". Nothing
// here is usable today; key placement is available now through package
// shard.
package proxy

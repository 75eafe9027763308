// Package protocol will hold the vocabulary shared by walnut's wire codecs
// (protocol/resp for Redis, protocol/memcache for memcached ASCII): the
// protocol kinds, size limits and sentinel errors.
//
// Not implemented yet: the codecs are tracked by the issue "protocol:
// zero-copy RESP and memcached ASCII codecs". Nothing here is usable today.
package protocol

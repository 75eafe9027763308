// Package protocol holds the vocabulary shared by walnut's wire codecs,
// protocol/resp (Redis RESP2/RESP3) and protocol/memcache (memcached ASCII):
// the protocol kinds, the size limits every parser enforces before it
// allocates, and the errors a caller matches with errors.Is whatever the
// codec.
//
// A malformed frame is reported as an *Error that carries the reply to send
// the client ("ERR Protocol error: …" for Redis, "CLIENT_ERROR …" for
// memcached). An incomplete frame is not an error: parsers report it by
// consuming nothing.
package protocol

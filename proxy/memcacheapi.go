package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/walnutproxy/walnut/internal/bytesconv"
	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
	"github.com/walnutproxy/walnut/shard"
)

// The errors of the typed memcached calls (Memcache), with the meaning
// gomemcache gives its errors of the same names. Match them with
// errors.Is.
var (
	// ErrCacheMiss: the key is not stored (a Get that found nothing; a
	// Delete, Touch, Increment, Decrement or CompareAndSwap of a key
	// memcached answered NOT_FOUND to).
	ErrCacheMiss = errors.New("proxy: memcached cache miss")
	// ErrNotStored: a conditional store did not happen (NOT_STORED): Add
	// of a key that exists, Replace, Append or Prepend of one that does
	// not.
	ErrNotStored = errors.New("proxy: memcached item not stored")
	// ErrCASConflict: CompareAndSwap found the item changed since the Get
	// that returned its CasID (EXISTS).
	ErrCASConflict = errors.New("proxy: memcached compare-and-swap conflict")
	// ErrMalformedKey: a key is empty, longer than 250 bytes, or holds a
	// space or a control byte (0x00-0x20, 0x7F). Nothing is sent.
	ErrMalformedKey = errors.New("proxy: malformed memcached key: empty, longer than 250 bytes, or with a space or control byte")
	// ErrServerError is matched by every *MemcacheError whose reply is a
	// SERVER_ERROR line: one from memcached ("SERVER_ERROR out of memory
	// storing object") and the one a call gets when its server cannot be
	// reached ("SERVER_ERROR Connection refused").
	ErrServerError = errors.New("proxy: memcached server error")
	// ErrNotMemcache is matched by the error every typed memcached call
	// returns on a Client of a Redis pool. Nothing is sent.
	ErrNotMemcache = errors.New("proxy: typed memcached call on a redis pool")
)

// A MemcacheError is an error line a typed memcached call was answered
// with: ERROR, "CLIENT_ERROR <message>" or "SERVER_ERROR <message>", from
// memcached or, for a server that failed, from the Client in twemproxy's
// words ("SERVER_ERROR Connection refused", "SERVER_ERROR Connection timed
// out", …). It matches ErrServerError when the line is a SERVER_ERROR.
type MemcacheError struct {
	Reply string // the line without its CRLF
}

// Error implements error.
func (e *MemcacheError) Error() string { return "proxy: memcached replied " + e.Reply }

// Is reports whether target is ErrServerError and the reply a
// SERVER_ERROR line.
func (e *MemcacheError) Is(target error) bool {
	return target == ErrServerError && strings.HasPrefix(e.Reply, "SERVER_ERROR")
}

// A MemcacheItem is an item to store in memcached or one read from it, as
// gomemcache's Item.
type MemcacheItem struct {
	// Key is at most 250 bytes, without spaces or control bytes.
	Key string
	// Value is the item's data. In an item returned by Get or GetMulti
	// it is the caller's to keep and modify.
	Value []byte
	// Flags are opaque to memcached, stored and returned with the value.
	Flags uint32
	// Expiration is the item's expiry time in seconds: 0 for none, up to
	// 30 days (2592000) a time relative to now, above that an absolute
	// Unix time. A negative value expires the item at once. Get and
	// GetMulti leave it 0 (memcached does not return it).
	Expiration int32
	// CasID is the item's compare-and-swap unique, set by Get and
	// GetMulti, and sent by CompareAndSwap; the other stores ignore it.
	CasID uint64
}

// Memcache is the typed memcached API of a Client: gomemcache's calls, with
// a context, over the Client's routing and connections. Each call is one
// request sent to the server its key belongs to, as a proxy would send it;
// GetMulti sends one request per server. Get it from Client.Memcache; it
// is a small value, cheap to copy and safe for concurrent use, and valid
// as long as the Client.
//
// Every call returns ErrMalformedKey for a bad key, an error matching
// ErrNotMemcache on a Client of a Redis pool, ErrClientClosed after Close,
// and ctx.Err() when ctx ends first (the request may still be carried
// out); otherwise the errors each call documents, a *MemcacheError for an
// error line, or an error describing a reply memcached does not send.
type Memcache struct {
	c *Client
}

// Memcache returns the Client's typed memcached API. It may be called on a
// Client of a Redis pool, but then every call fails with an error
// matching ErrNotMemcache.
func (c *Client) Memcache() Memcache { return Memcache{c: c} }

// Get returns the item stored under key, with its CasID (it sends gets).
// A key not stored is ErrCacheMiss.
func (m Memcache) Get(ctx context.Context, key string) (*MemcacheItem, error) {
	if err := m.check(key); err != nil {
		return nil, err
	}
	reply, err := m.call(ctx, func(b []byte) []byte {
		return memcache.AppendGet(b, memcache.Gets, bytesconv.StringToBytes(key))
	})
	if err != nil {
		return nil, err
	}
	return m.single("gets", reply, key)
}

// GetAndTouch returns the item stored under key, as Get, and sets its
// expiration to seconds (it sends gats). A key not stored is
// ErrCacheMiss.
func (m Memcache) GetAndTouch(ctx context.Context, key string, seconds int32) (*MemcacheItem, error) {
	if err := m.check(key); err != nil {
		return nil, err
	}
	reply, err := m.call(ctx, func(b []byte) []byte {
		return memcache.AppendGat(b, memcache.Gats, int64(seconds), bytesconv.StringToBytes(key))
	})
	if err != nil {
		return nil, err
	}
	return m.single("gats", reply, key)
}

// single returns the one item of a get reply for key.
func (m Memcache) single(cmd string, reply []byte, key string) (*MemcacheItem, error) {
	if memcache.ClassifyResponse(reply) != memcache.RespValue {
		// END, an error line, or something else.
		err := m.values(cmd, reply, nil)
		if err == nil {
			return nil, ErrCacheMiss
		}
		return nil, err
	}
	var v memcache.Value
	n, err := memcache.ParseValue(reply, m.c.s.gen.Load().lim, &v)
	if err != nil || n == 0 || string(v.Key) != key || string(reply[n:]) != "END\r\n" {
		return nil, mcUnexpected(cmd, reply)
	}
	return &MemcacheItem{Key: key, Value: v.Data, Flags: v.Flags, CasID: v.Cas}, nil
}

// GetMulti returns the items stored under keys, keyed by key; a key not
// stored is absent from the map, and a key given twice is read once. Its
// keys are sent as one gets request per server, all at once (a server
// with many keys gets several requests of at most 1024 keys).
//
// When some servers fail and others answer, GetMulti returns what the
// others answered together with a *GetMultiError that names each failed
// server and the keys it was asked for: a key in the map was found, a key
// named by the error is unknown, and any other key is a cache miss. Errors
// that stop every request (a malformed key, ctx, Close, a Redis pool)
// return a nil map. With no keys it returns an empty map.
func (m Memcache) GetMulti(ctx context.Context, keys []string) (map[string]*MemcacheItem, error) {
	if err := m.check(keys...); err != nil {
		return nil, err
	}
	items := make(map[string]*MemcacheItem, len(keys))
	if len(keys) == 0 {
		return items, nil
	}
	// Group the keys by server with the ring the requests will be routed
	// with (should it change in between, the proxy splits a request by
	// the new ring: still exact, in more parts).
	ring := m.c.Ring()
	type part struct {
		srv  int
		keys []string
	}
	var parts []part
	size := 0                             // of all the requests
	open := make(map[int]int, ring.Len()) // server -> its last part
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		srv := ring.PickString(k)
		p, ok := open[srv]
		if !ok || len(parts[p].keys) == mcGetMultiBatch {
			parts = append(parts, part{srv: srv})
			p = len(parts) - 1
			open[srv] = p
			size += len("gets\r\n")
		}
		parts[p].keys = append(parts[p].keys, k)
		size += 1 + len(k)
	}
	reqs := make([][]byte, len(parts))
	buf := make([]byte, 0, size)
	for i, p := range parts {
		start := len(buf)
		buf = append(buf, "gets"...)
		for _, k := range p.keys {
			buf = append(buf, ' ')
			buf = append(buf, k...)
		}
		buf = append(buf, '\r', '\n')
		reqs[i] = buf[start:len(buf):len(buf)]
	}
	replies, err := m.c.DoMulti(ctx, reqs...)
	if err != nil {
		return nil, m.requestError(err)
	}
	var failures []GetMultiFailure
	for i, p := range parts {
		err := m.values("gets", replies[i], func(v *memcache.Value) {
			it := &MemcacheItem{Key: string(v.Key), Value: v.Data, Flags: v.Flags, CasID: v.Cas}
			items[it.Key] = it
		})
		if err == nil {
			continue
		}
		// One failure per server: the first error, the keys of all its
		// failed requests.
		j := slices.IndexFunc(failures, func(f GetMultiFailure) bool { return f.Server == ring.Server(p.srv) })
		if j < 0 {
			failures = append(failures, GetMultiFailure{Server: ring.Server(p.srv), Err: err})
			j = len(failures) - 1
		}
		f := &failures[j]
		for _, k := range p.keys {
			if items[k] == nil { // each key is in one part only
				f.Keys = append(f.Keys, k)
			}
		}
	}
	// A request that failed after returning all its keys fails none.
	failures = slices.DeleteFunc(failures, func(f GetMultiFailure) bool { return len(f.Keys) == 0 })
	if len(failures) > 0 {
		return items, &GetMultiError{Failures: failures}
	}
	return items, nil
}

// mcGetMultiBatch is the most keys GetMulti puts in one request.
const mcGetMultiBatch = 1024

// A GetMultiError reports the servers GetMulti got no answer from (or an
// error line), and the keys it asked each of them for. The map GetMulti
// returns with it holds the items of the other servers.
type GetMultiError struct {
	Failures []GetMultiFailure // one per failed server, in the order of their first key
}

// A GetMultiFailure is one server's part of a GetMultiError.
type GetMultiFailure struct {
	Server shard.Server // the server the keys were routed to when GetMulti was called (Addr, Name)
	Keys   []string     // the keys that server was asked for and did not return
	Err    error        // why: a *MemcacheError ("SERVER_ERROR Connection refused"), or an unexpected reply
}

// Error implements error: it names each server, its error and up to five
// of its keys.
func (e *GetMultiError) Error() string {
	var b strings.Builder
	n := 0
	for _, f := range e.Failures {
		n += len(f.Keys)
	}
	servers := "servers"
	if len(e.Failures) == 1 {
		servers = "server"
	}
	fmt.Fprintf(&b, "proxy: GetMulti: %d keys on %d %s failed", n, len(e.Failures), servers)
	for _, f := range e.Failures {
		fmt.Fprintf(&b, "; server %s", f.Server.Addr)
		if f.Server.Name != "" {
			fmt.Fprintf(&b, " (%s)", f.Server.Name)
		}
		fmt.Fprintf(&b, ": %v (keys %s", f.Err, strings.Join(f.Keys[:min(len(f.Keys), 5)], " "))
		if len(f.Keys) > 5 {
			fmt.Fprintf(&b, " and %d more", len(f.Keys)-5)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the Err of each failure, so that errors.Is and errors.As
// look into them (errors.Is(err, ErrServerError) for an unreachable
// server).
func (e *GetMultiError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}

// Keys returns the keys of all the failures.
func (e *GetMultiError) Keys() []string {
	var keys []string
	for _, f := range e.Failures {
		keys = append(keys, f.Keys...)
	}
	return keys
}

// Set stores item unconditionally.
func (m Memcache) Set(ctx context.Context, item *MemcacheItem) error {
	return m.store(ctx, memcache.Set, item)
}

// Add stores item only if its key is not stored; otherwise ErrNotStored.
func (m Memcache) Add(ctx context.Context, item *MemcacheItem) error {
	return m.store(ctx, memcache.Add, item)
}

// Replace stores item only if its key is stored; otherwise ErrNotStored.
func (m Memcache) Replace(ctx context.Context, item *MemcacheItem) error {
	return m.store(ctx, memcache.Replace, item)
}

// Append appends item.Value to the value stored under item.Key, whose
// flags and expiration stay as they are; ErrNotStored if the key is not
// stored.
func (m Memcache) Append(ctx context.Context, item *MemcacheItem) error {
	return m.store(ctx, memcache.Append, item)
}

// Prepend puts item.Value before the value stored under item.Key, as
// Append; ErrNotStored if the key is not stored.
func (m Memcache) Prepend(ctx context.Context, item *MemcacheItem) error {
	return m.store(ctx, memcache.Prepend, item)
}

// CompareAndSwap stores item if the value stored under item.Key has not
// changed since the Get that returned item.CasID: ErrCASConflict if it
// has, ErrCacheMiss if the key is no longer stored (memcached answers
// NOT_FOUND; gomemcache returns ErrCacheMiss there too).
func (m Memcache) CompareAndSwap(ctx context.Context, item *MemcacheItem) error {
	return m.store(ctx, memcache.Cas, item)
}

// store sends one storage request for item.
func (m Memcache) store(ctx context.Context, cmd memcache.Command, item *MemcacheItem) error {
	if err := m.check(item.Key); err != nil {
		return err
	}
	reply, err := m.call(ctx, func(b []byte) []byte {
		return memcache.AppendStorage(b, cmd, bytesconv.StringToBytes(item.Key), item.Flags, int64(item.Expiration), item.CasID, item.Value, false)
	})
	if err != nil {
		return err
	}
	return mcStatus(cmd.String(), reply, memcache.RespStored)
}

// Delete deletes the item stored under key; ErrCacheMiss if there is
// none.
func (m Memcache) Delete(ctx context.Context, key string) error {
	if err := m.check(key); err != nil {
		return err
	}
	reply, err := m.call(ctx, func(b []byte) []byte {
		return memcache.AppendDelete(b, bytesconv.StringToBytes(key), false)
	})
	if err != nil {
		return err
	}
	return mcStatus("delete", reply, memcache.RespDeleted)
}

// Touch sets the expiration of the item stored under key to seconds (see
// MemcacheItem.Expiration); ErrCacheMiss if there is none.
func (m Memcache) Touch(ctx context.Context, key string, seconds int32) error {
	if err := m.check(key); err != nil {
		return err
	}
	reply, err := m.call(ctx, func(b []byte) []byte {
		return memcache.AppendTouch(b, bytesconv.StringToBytes(key), int64(seconds), false)
	})
	if err != nil {
		return err
	}
	return mcStatus("touch", reply, memcache.RespTouched)
}

// Increment adds delta to the decimal number stored under key and returns
// the result, which wraps around at 2^64; ErrCacheMiss if the key is not
// stored, and a *MemcacheError (CLIENT_ERROR) if its value is not a
// number.
func (m Memcache) Increment(ctx context.Context, key string, delta uint64) (uint64, error) {
	return m.arith(ctx, memcache.Incr, key, delta)
}

// Decrement subtracts delta from the decimal number stored under key and
// returns the result, which stops at 0; otherwise as Increment.
func (m Memcache) Decrement(ctx context.Context, key string, delta uint64) (uint64, error) {
	return m.arith(ctx, memcache.Decr, key, delta)
}

func (m Memcache) arith(ctx context.Context, cmd memcache.Command, key string, delta uint64) (uint64, error) {
	if err := m.check(key); err != nil {
		return 0, err
	}
	reply, err := m.call(ctx, func(b []byte) []byte {
		if cmd == memcache.Incr {
			return memcache.AppendIncr(b, bytesconv.StringToBytes(key), delta, false)
		}
		return memcache.AppendDecr(b, bytesconv.StringToBytes(key), delta, false)
	})
	if err != nil {
		return 0, err
	}
	if line, ok := mcLine(reply); ok && memcache.ClassifyResponse(line) == memcache.RespNumber {
		if n, err := strconv.ParseUint(bytesconv.BytesToString(line), 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, mcFailure(cmd.String(), reply)
}

// check returns the error of a call on a Redis pool or with a bad key.
func (m Memcache) check(keys ...string) error {
	if m.c.s.proto != protocol.Memcache {
		return fmt.Errorf("%w (pool %q)", ErrNotMemcache, m.c.s.name)
	}
	for _, k := range keys {
		if !mcLegalKey(k) {
			return ErrMalformedKey
		}
	}
	return nil
}

// mcLegalKey reports whether key can be sent: gomemcache's rule
// (at most 250 bytes, nothing at or below a space, no DEL), and not empty.
func mcLegalKey(key string) bool {
	if key == "" || len(key) > memcache.MaxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// call sends the request build appends to a buffer and returns its reply.
func (m Memcache) call(ctx context.Context, build func([]byte) []byte) ([]byte, error) {
	c := m.c
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	req := build((*bp)[:0])
	var reply []byte
	var err error
	if cap(req) <= maxKeptBuffer {
		reply, err = c.Do(ctx, req) // Do copies req
		*bp = req[:0]
		c.bufs.Put(bp)
	} else {
		// A large value: the request is sent from where it lies, not
		// copied, and the session lets it go after (trim).
		reply, err = c.doOwned(ctx, req)
		c.bufs.Put(bp)
	}
	if err != nil {
		return nil, m.requestError(err)
	}
	return reply, nil
}

// requestError turns the parse error of a request the Client refused
// (such as a value above the pool's limit) into the error line a proxy
// would have answered it with.
func (m Memcache) requestError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return &MemcacheError{Reply: pe.Reply}
	}
	return err
}

// values calls fn for each VALUE block of a get reply and returns nil if
// it ends with END, a *MemcacheError for an error line (after any values),
// and an error for anything else, including a VALUE block if fn is nil.
func (m Memcache) values(cmd string, reply []byte, fn func(*memcache.Value)) error {
	lim := m.c.s.gen.Load().lim
	b := reply
	for {
		switch r := memcache.ClassifyResponse(b); {
		case r == memcache.RespValue:
			var v memcache.Value
			n, err := memcache.ParseValue(b, lim, &v)
			if err != nil || n == 0 || fn == nil {
				return mcUnexpected(cmd, reply)
			}
			fn(&v)
			b = b[n:]
		case r == memcache.RespEnd && string(b) == "END\r\n":
			return nil
		case r.IsError():
			if line, ok := mcLine(b); ok {
				return &MemcacheError{Reply: string(line)}
			}
			return mcUnexpected(cmd, reply)
		default:
			return mcUnexpected(cmd, reply)
		}
	}
}

// mcStatus returns nil if reply is the line want, and otherwise
// mcFailure's error.
func mcStatus(cmd string, reply []byte, want memcache.Response) error {
	if _, ok := mcLine(reply); ok && memcache.ClassifyResponse(reply) == want {
		return nil
	}
	return mcFailure(cmd, reply)
}

// mcFailure returns the error of a reply that is not a success:
// ErrNotStored, ErrCASConflict, ErrCacheMiss, a *MemcacheError for an
// error line, or an unexpected reply.
func mcFailure(cmd string, reply []byte) error {
	line, ok := mcLine(reply)
	if !ok {
		return mcUnexpected(cmd, reply)
	}
	switch r := memcache.ClassifyResponse(reply); {
	case r == memcache.RespNotStored:
		return ErrNotStored
	case r == memcache.RespExists:
		return ErrCASConflict
	case r == memcache.RespNotFound:
		return ErrCacheMiss
	case r.IsError():
		return &MemcacheError{Reply: string(line)}
	}
	return mcUnexpected(cmd, reply)
}

// mcLine returns reply without its CRLF if it is exactly one line.
func mcLine(reply []byte) ([]byte, bool) {
	i := bytes.IndexByte(reply, '\n')
	if i != len(reply)-1 || i < 1 || reply[i-1] != '\r' {
		return nil, false
	}
	return reply[:i-1], true
}

// mcUnexpected reports a reply memcached does not send to cmd.
func mcUnexpected(cmd string, reply []byte) error {
	const show = 64
	if len(reply) > show {
		return fmt.Errorf("proxy: unexpected memcached reply to %s: %q…", cmd, reply[:show])
	}
	return fmt.Errorf("proxy: unexpected memcached reply to %s: %q", cmd, reply)
}

package proxy

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// ErrNil is the error of a typed Redis call whose reply is a nil: Get or
// HGet of a key or field that does not exist, a SetArgs whose NX or XX
// condition did not hold, TTL of a missing key, Do of a command that
// answered nil, and, in MGet's replies, each key that does not exist. It is
// what go-redis calls redis.Nil; test for it with errors.Is.
var ErrNil = errors.New("proxy: nil reply")

// ErrNotRedis is returned (wrapped) by Client.Redis for a memcached pool.
var ErrNotRedis = errors.New("proxy: not a redis pool")

// A RedisError is an error reply: what a redis-server, or walnut itself,
// answered instead of a result ("WRONGTYPE Operation against a key holding
// the wrong kind of value", "ERR value is not an integer or out of range",
// "CROSSSLOT …"). The typed calls of Redis return it as their error, so
// that a failed write is caught by err != nil. A request that failed on
// its way to or from a server (refused connection, timeout, ejected
// server) is not a RedisError: it fails with the pool's error (package
// pool's ErrConnRefused, ErrTimedOut, …), which errors.Is finds.
type RedisError struct {
	// Message is the reply's text, as sent, without the leading '-'.
	Message string
}

func (e *RedisError) Error() string { return e.Message }

// Prefix returns the reply's error code, its first word: "ERR",
// "WRONGTYPE", "NOAUTH", ….
func (e *RedisError) Prefix() string {
	for i := 0; i < len(e.Message); i++ {
		if e.Message[i] == ' ' {
			return e.Message[:i]
		}
	}
	return e.Message
}

// Redis is the typed Redis API of a Client: each method sends one command
// (or, for a Pipeline, several) through the Client, routed, split and
// merged as Client.Do does it, and returns its reply as Go values. Error
// replies are returned as *RedisError, a nil reply as ErrNil, and a
// failure to reach a server as the pool's error. Obtain it with
// Client.Redis; it is safe for concurrent use and has nothing to close
// (close the Client).
//
// Values (Set's value, MSet's and HSet's, Do's arguments) may be a string,
// a []byte, an integer or float type, a bool (sent as 1 or 0), nil (sent
// as an empty string) or an encoding.BinaryMarshaler; other types are an
// error, and nothing is sent.
type Redis struct {
	c *Client
}

// Redis returns the Client's typed Redis API. It fails, with an error that
// wraps ErrNotRedis, when the Client's pool is a memcached pool.
func (c *Client) Redis() (*Redis, error) {
	if c.s.proto != protocol.Redis {
		return nil, fmt.Errorf("%w: pool %q speaks memcached; the typed Redis API (Client.Redis) needs a pool with redis: true", ErrNotRedis, c.s.name)
	}
	return &Redis{c: c}, nil
}

// KeepTTL is the ttl of Set (and its kin) that keeps the key's time to
// live (SET … KEEPTTL).
const KeepTTL time.Duration = -1

// Get returns the value of key (GET), or ErrNil if key does not exist.
func (r *Redis) Get(ctx context.Context, key string) (string, error) {
	cc, err := r.c.begin()
	if err != nil {
		return "", err
	}
	cc.in = appendCommand1(cc.in, "GET", key)
	v, err := r.c.execOne(ctx, cc)
	if err != nil {
		return "", err
	}
	if v.Type != resp.TypeBulk {
		r.c.release(cc)
		return "", unexpected("GET", v)
	}
	s := string(v.Str)
	r.c.release(cc)
	return s, nil
}

// GetBytes is Get returning the value as a new []byte.
func (r *Redis) GetBytes(ctx context.Context, key string) ([]byte, error) {
	cc, err := r.c.begin()
	if err != nil {
		return nil, err
	}
	cc.in = appendCommand1(cc.in, "GET", key)
	v, err := r.c.execOne(ctx, cc)
	if err != nil {
		return nil, err
	}
	if v.Type != resp.TypeBulk {
		r.c.release(cc)
		return nil, unexpected("GET", v)
	}
	b := append([]byte(nil), v.Str...)
	r.c.release(cc)
	return b, nil
}

// Set sets key to value (SET). A ttl > 0 sets its time to live (EX in
// whole seconds, PX when ttl is not a whole number of seconds); 0 sets
// none and KeepTTL keeps the key's current one.
func (r *Redis) Set(ctx context.Context, key string, value any, ttl time.Duration) error {
	return r.SetArgs(ctx, key, value, SetArgs{TTL: ttl, KeepTTL: ttl == KeepTTL})
}

// SetNX sets key to value only if key does not exist (SET … NX) and
// reports whether it did. ttl is as for Set.
func (r *Redis) SetNX(ctx context.Context, key string, value any, ttl time.Duration) (bool, error) {
	return setOK(r.SetArgs(ctx, key, value, SetArgs{Mode: SetIfAbsent, TTL: ttl, KeepTTL: ttl == KeepTTL}))
}

// SetXX sets key to value only if key exists (SET … XX) and reports
// whether it did. ttl is as for Set.
func (r *Redis) SetXX(ctx context.Context, key string, value any, ttl time.Duration) (bool, error) {
	return setOK(r.SetArgs(ctx, key, value, SetArgs{Mode: SetIfPresent, TTL: ttl, KeepTTL: ttl == KeepTTL}))
}

func setOK(err error) (bool, error) {
	if err == ErrNil {
		return false, nil
	}
	return err == nil, err
}

// SetMode is the condition of a SET: SetAlways, SetIfAbsent (NX) or
// SetIfPresent (XX).
type SetMode uint8

const (
	SetAlways    SetMode = iota // no condition
	SetIfAbsent                 // NX: only if the key does not exist
	SetIfPresent                // XX: only if the key exists
)

// SetArgs are the options of a SET (Redis.SetArgs).
type SetArgs struct {
	// Mode is the condition: SetAlways, SetIfAbsent (NX) or SetIfPresent
	// (XX).
	Mode SetMode
	// TTL > 0 sets the key's time to live: EX in seconds when it is a
	// whole number of seconds, otherwise PX in milliseconds (rounded
	// down, at least 1).
	TTL time.Duration
	// KeepTTL keeps the key's time to live (KEEPTTL); TTL must then be 0
	// or KeepTTL.
	KeepTTL bool
}

// SetArgs sets key to value with the options of a; it returns ErrNil when
// a.Mode's condition did not hold and nothing was set.
func (r *Redis) SetArgs(ctx context.Context, key string, value any, a SetArgs) error {
	cc, err := r.c.begin()
	if err != nil {
		return err
	}
	cc.in, err = appendSet(cc.in, key, value, a)
	if err != nil {
		r.c.release(cc)
		return err
	}
	v, err := r.c.execOne(ctx, cc)
	if err != nil {
		return err
	}
	r.c.release(cc)
	if v.Type != resp.TypeSimple {
		return unexpected("SET", v)
	}
	return nil
}

// Del deletes keys (DEL), on whichever servers they live, and returns how
// many existed.
func (r *Redis) Del(ctx context.Context, keys ...string) (int64, error) {
	return r.keysInt(ctx, "DEL", keys)
}

// Exists returns how many of keys exist (EXISTS; a key named twice counts
// twice), on whichever servers they live.
func (r *Redis) Exists(ctx context.Context, keys ...string) (int64, error) {
	return r.keysInt(ctx, "EXISTS", keys)
}

func (r *Redis) keysInt(ctx context.Context, cmd string, keys []string) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendKeys(cc.in, cmd, keys)
	return r.c.intReply(ctx, cc, cmd)
}

// Expire sets the time to live of key (EXPIRE in whole seconds, PEXPIRE
// when ttl is not a whole number of seconds) and reports whether key
// exists. A ttl <= 0 deletes the key, as Redis does.
func (r *Redis) Expire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	cc, err := r.c.begin()
	if err != nil {
		return false, err
	}
	cc.in = appendExpire(cc.in, key, ttl)
	n, err := r.c.intReply(ctx, cc, "EXPIRE")
	return n == 1, err
}

// TTL returns the time to live of key (PTTL, so to the millisecond): a
// negative duration (-1ns, as go-redis returns it) for a key without
// one, and ErrNil if key does not exist.
func (r *Redis) TTL(ctx context.Context, key string) (time.Duration, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendCommand1(cc.in, "PTTL", key)
	n, err := r.c.intReply(ctx, cc, "PTTL")
	switch {
	case err != nil:
		return 0, err
	case n == -2:
		return 0, ErrNil
	case n < 0:
		return -1, nil
	}
	return time.Duration(n) * time.Millisecond, nil
}

// Incr adds 1 to the integer value of key (INCR) and returns the result.
func (r *Redis) Incr(ctx context.Context, key string) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendCommand1(cc.in, "INCR", key)
	return r.c.intReply(ctx, cc, "INCR")
}

// Decr subtracts 1 from the integer value of key (DECR) and returns the
// result.
func (r *Redis) Decr(ctx context.Context, key string) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendCommand1(cc.in, "DECR", key)
	return r.c.intReply(ctx, cc, "DECR")
}

// IncrBy adds n to the integer value of key (INCRBY) and returns the
// result.
func (r *Redis) IncrBy(ctx context.Context, key string, n int64) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendIncrBy(cc.in, key, n)
	return r.c.intReply(ctx, cc, "INCRBY")
}

// DecrBy subtracts n from the integer value of key (DECRBY) and returns
// the result.
func (r *Redis) DecrBy(ctx context.Context, key string, n int64) (int64, error) {
	return r.IncrBy(ctx, key, -n)
}

// MGet returns the values of keys (MGET), in order, on whichever servers
// they live: one Reply per key, whose Text or Bytes is the value, and
// whose Err is ErrNil for a key that does not exist.
func (r *Redis) MGet(ctx context.Context, keys ...string) ([]Reply, error) {
	cc, err := r.c.begin()
	if err != nil {
		return nil, err
	}
	cc.in = appendKeys(cc.in, "MGET", keys)
	b, err := r.c.execRaw(ctx, cc)
	if err != nil {
		return nil, err
	}
	defer r.c.release(cc)
	n, hdr := parseHeader(b, resp.TypeArray)
	if hdr == 0 || n != int64(len(keys)) {
		_, err := replyOf(b, r.c.s.gen.Load().lim)
		if err == nil {
			err = fmt.Errorf("proxy: MGET of %d keys: unexpected reply %.40q", len(keys), b)
		}
		return nil, err
	}
	// One buffer for the values, which the replies alias.
	buf := append([]byte(nil), b[hdr:]...)
	out := make([]Reply, n)
	lim := r.c.s.gen.Load().lim
	p := 0
	for i := range out {
		m, err := resp.ParseReply(buf[p:], lim, &out[i].v)
		if err != nil || m == 0 {
			return nil, fmt.Errorf("proxy: MGET: malformed element %d", i)
		}
		out[i].err = valueErr(&out[i].v)
		p += m
	}
	return out, nil
}

// MSet sets several keys (MSET), on whichever servers they live: pairs is
// key, value, key, value, …, or one map[string]string or map[string]any.
// The servers are written in parallel, and each one's part is atomic on
// that server only.
func (r *Redis) MSet(ctx context.Context, pairs ...any) error {
	cc, err := r.c.begin()
	if err != nil {
		return err
	}
	cc.in, err = appendPairs(cc.in, "MSET", false, "", pairs)
	if err != nil {
		r.c.release(cc)
		return err
	}
	v, err := r.c.execOne(ctx, cc)
	if err != nil {
		return err
	}
	r.c.release(cc)
	if v.Type != resp.TypeSimple {
		return unexpected("MSET", v)
	}
	return nil
}

// HGet returns the value of field in the hash key (HGET), or ErrNil if
// either does not exist.
func (r *Redis) HGet(ctx context.Context, key, field string) (string, error) {
	cc, err := r.c.begin()
	if err != nil {
		return "", err
	}
	cc.in = appendCommand2(cc.in, "HGET", key, field)
	v, err := r.c.execOne(ctx, cc)
	if err != nil {
		return "", err
	}
	if v.Type != resp.TypeBulk {
		r.c.release(cc)
		return "", unexpected("HGET", v)
	}
	s := string(v.Str)
	r.c.release(cc)
	return s, nil
}

// HSet sets fields of the hash key (HSET) and returns how many were new:
// fieldsValues is field, value, field, value, …, or one map[string]string
// or map[string]any.
func (r *Redis) HSet(ctx context.Context, key string, fieldsValues ...any) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in, err = appendPairs(cc.in, "HSET", true, key, fieldsValues)
	if err != nil {
		r.c.release(cc)
		return 0, err
	}
	return r.c.intReply(ctx, cc, "HSET")
}

// HGetAll returns the fields and values of the hash key (HGETALL): an
// empty map if key does not exist.
func (r *Redis) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	cc, err := r.c.begin()
	if err != nil {
		return nil, err
	}
	cc.in = appendCommand1(cc.in, "HGETALL", key)
	v, err := r.c.execOne(ctx, cc)
	if err == ErrNil {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.c.release(cc)
	return Reply{v: v}.StringMap()
}

// HDel deletes fields of the hash key (HDEL) and returns how many
// existed.
func (r *Redis) HDel(ctx context.Context, key string, fields ...string) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendKeyFields(cc.in, "HDEL", key, fields)
	return r.c.intReply(ctx, cc, "HDEL")
}

// HIncrBy adds n to the integer value of field in the hash key (HINCRBY)
// and returns the result.
func (r *Redis) HIncrBy(ctx context.Context, key, field string, n int64) (int64, error) {
	cc, err := r.c.begin()
	if err != nil {
		return 0, err
	}
	cc.in = appendHIncrBy(cc.in, key, field, n)
	return r.c.intReply(ctx, cc, "HINCRBY")
}

// Do sends any command, args being its name and arguments (see Redis for
// the types they may have), and returns its reply. The command is routed
// as Client.Do routes it: commands of several keys are split over the
// servers where walnut can split them, and refused with an error reply
// where it cannot (see the package documentation). The returned error is
// the reply's Err: a *RedisError, ErrNil for a nil reply, or a failure.
func (r *Redis) Do(ctx context.Context, args ...any) (Reply, error) {
	if len(args) == 0 {
		return Reply{}, errors.New("proxy: Do needs a command")
	}
	cc, err := r.c.begin()
	if err != nil {
		return Reply{}, err
	}
	cc.in, err = appendArgs(cc.in, args)
	if err != nil {
		r.c.release(cc)
		return Reply{}, err
	}
	b, err := r.c.execRaw(ctx, cc)
	if err != nil {
		return Reply{err: err}, err
	}
	rep := Reply{}
	buf := append([]byte(nil), b...)
	rep.v, rep.err = replyOf(buf, r.c.s.gen.Load().lim)
	r.c.release(cc)
	return rep, rep.err
}

// A Reply is the reply to one command of Redis.Do, MGet or a Pipeline,
// with typed accessors. Each accessor returns Err first if it is set, and
// an error if the reply has another type than it converts. A Reply owns
// its memory: Bytes returns it, not a copy.
type Reply struct {
	v   resp.Value
	err error
}

// Err returns the command's error: a *RedisError for an error reply,
// ErrNil for a nil reply, the pool's error when its server could not be
// reached, or the error that kept a pipeline from being sent; nil for a
// result.
func (r Reply) Err() error { return r.err }

// IsNil reports whether the reply is a nil (a missing key).
func (r Reply) IsNil() bool { return r.err == ErrNil }

// Value returns the reply as parsed (nothing for a command that failed),
// for the types the accessors do not cover.
func (r Reply) Value() resp.Value { return r.v }

// Text returns a string reply (bulk or simple string, verbatim string,
// double, big number) or an integer, in decimal.
func (r Reply) Text() (string, error) {
	if r.err != nil {
		return "", r.err
	}
	switch r.v.Type {
	case resp.TypeBulk, resp.TypeSimple, resp.TypeVerbatim, resp.TypeDouble, resp.TypeBigInt:
		return string(r.v.Str), nil
	case resp.TypeInt:
		return strconv.FormatInt(r.v.Int, 10), nil
	}
	return "", typeError(r.v, "a string")
}

// Bytes is Text returning a []byte, which aliases the Reply.
func (r Reply) Bytes() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	switch r.v.Type {
	case resp.TypeBulk, resp.TypeSimple, resp.TypeVerbatim, resp.TypeDouble, resp.TypeBigInt:
		return r.v.Str, nil
	case resp.TypeInt:
		return strconv.AppendInt(nil, r.v.Int, 10), nil
	}
	return nil, typeError(r.v, "a string")
}

// Int returns an integer reply, or a string reply that holds a decimal
// integer (as GET of a counter does).
func (r Reply) Int() (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	switch r.v.Type {
	case resp.TypeInt, resp.TypeBool:
		return r.v.Int, nil
	case resp.TypeBulk, resp.TypeSimple, resp.TypeBigInt:
		n, err := strconv.ParseInt(string(r.v.Str), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proxy: reply %.40q is not an integer", r.v.Str)
		}
		return n, nil
	}
	return 0, typeError(r.v, "an integer")
}

// Float returns a double, an integer, or a string that holds a number.
func (r Reply) Float() (float64, error) {
	if r.err != nil {
		return 0, r.err
	}
	switch r.v.Type {
	case resp.TypeInt:
		return float64(r.v.Int), nil
	case resp.TypeBulk, resp.TypeSimple, resp.TypeDouble, resp.TypeBigInt:
		f, err := strconv.ParseFloat(string(r.v.Str), 64)
		if err != nil {
			return 0, fmt.Errorf("proxy: reply %.40q is not a number", r.v.Str)
		}
		return f, nil
	}
	return 0, typeError(r.v, "a number")
}

// Bool returns true for a non-zero integer, a RESP3 true or the status
// OK, false for 0 or a RESP3 false; a string is parsed by
// strconv.ParseBool.
func (r Reply) Bool() (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	switch r.v.Type {
	case resp.TypeInt, resp.TypeBool:
		return r.v.Int != 0, nil
	case resp.TypeSimple:
		if string(r.v.Str) == "OK" {
			return true, nil
		}
	}
	if r.v.Type == resp.TypeBulk || r.v.Type == resp.TypeSimple {
		b, err := strconv.ParseBool(string(r.v.Str))
		if err != nil {
			return false, fmt.Errorf("proxy: reply %.40q is not a boolean", r.v.Str)
		}
		return b, nil
	}
	return false, typeError(r.v, "a boolean")
}

// Slice returns the elements of an array, set or push reply (a map's
// keys and values in turn), each a Reply whose Err is ErrNil for a nil
// element and a *RedisError for an error.
func (r Reply) Slice() ([]Reply, error) {
	if r.err != nil {
		return nil, r.err
	}
	switch r.v.Type {
	case resp.TypeArray, resp.TypeSet, resp.TypePush, resp.TypeMap:
	default:
		return nil, typeError(r.v, "an array")
	}
	out := make([]Reply, len(r.v.Elems))
	for i := range r.v.Elems {
		out[i] = Reply{v: r.v.Elems[i], err: valueErr(&r.v.Elems[i])}
	}
	return out, nil
}

// Strings returns the elements of an array, set or push reply as strings
// (each as Text converts it); a nil element is "".
func (r Reply) Strings() ([]string, error) {
	elems, err := r.Slice()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if e.err == ErrNil {
			continue
		}
		if out[i], err = e.Text(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// StringMap returns a map reply, or an array of keys and values in turn
// (HGETALL's RESP2 reply), as a map of strings.
func (r Reply) StringMap() (map[string]string, error) {
	elems, err := r.Slice()
	if err != nil {
		return nil, err
	}
	if len(elems)%2 != 0 {
		return nil, fmt.Errorf("proxy: reply of %d elements is not keys and values", len(elems))
	}
	m := make(map[string]string, len(elems)/2)
	for i := 0; i < len(elems); i += 2 {
		k, err := elems[i].Text()
		if err != nil {
			return nil, err
		}
		v, err := elems[i+1].Text()
		if err != nil && err != ErrNil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// replyOf parses the one reply b holds and returns it with its error
// (valueErr); its strings alias b.
func replyOf(b []byte, lim protocol.Limits) (resp.Value, error) {
	var v resp.Value
	n, err := resp.ParseReply(b, lim, &v)
	if err != nil {
		return resp.Value{}, err
	}
	if n != len(b) {
		return resp.Value{}, fmt.Errorf("proxy: malformed reply %.40q", b)
	}
	return v, valueErr(&v)
}

// valueErr returns the error a parsed reply stands for: a *RedisError for
// an error reply, ErrNil for a nil.
func valueErr(v *resp.Value) error {
	switch {
	case v.Type == resp.TypeError || v.Type == resp.TypeBlobError:
		return &RedisError{Message: string(v.Str)}
	case v.Null:
		return ErrNil
	}
	return nil
}

func typeError(v resp.Value, want string) error {
	return fmt.Errorf("proxy: reply of type %q is not %s", v.Type, want)
}

func unexpected(cmd string, v resp.Value) error {
	return fmt.Errorf("proxy: unexpected reply of type %q to %s", v.Type, cmd)
}

// The in-process path of the typed calls: begin takes a session, the
// caller appends its request(s) to the session's in (and their ends to
// pos, for more than one), execRaw runs them and returns the replies'
// bytes, which alias the session until release gives it back. execRaw and
// execOne release the session themselves when they fail.

// begin returns a session for one call, or ErrClientClosed.
func (c *Client) begin() (*session, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClientClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	cc := c.conns.Get().(*session)
	cc.in = cc.in[:0]
	cc.pos = cc.pos[:0]
	return cc, nil
}

// release returns cc to the Client once its replies have been read.
func (c *Client) release(cc *session) {
	cc.h.reset()
	cc.trim()
	c.conns.Put(cc)
	c.wg.Done()
}

// execRaw runs the requests of cc.in (one, ending at len(cc.in), if
// cc.pos is empty) and returns the bytes of their replies, in order; with
// a pool error, for a request that failed on its way to or from a server,
// in place of that reply when there is one request. cc.marks says where
// each reply ends.
func (c *Client) execRaw(ctx context.Context, cc *session) ([]byte, error) {
	if len(cc.pos) == 0 {
		cc.pos = append(cc.pos, len(cc.in))
	}
	if err := ctx.Err(); err != nil {
		c.release(cc)
		return nil, err
	}
	if err := cc.h.parse(cc, cc.in, cc.pos); err != nil {
		c.release(cc)
		return nil, err
	}
	if _, ok := cc.run(0, len(cc.pos), ctx.Done()); !ok {
		c.wg.Done() // the session is recycled when the batch completes
		return nil, ctx.Err()
	}
	out := cc.appendReplies(cc.out[:0], true)
	cc.out = out[:0]
	if len(cc.big) > 0 {
		out = cc.assemble(out)
		clear(cc.big)
		cc.big, cc.bigLen = cc.big[:0], 0
	}
	if len(cc.slots) == 1 {
		if err := cc.slotErr(0); err != nil {
			c.release(cc)
			return nil, err
		}
	}
	return out, nil
}

// execOne runs the one request of cc.in and returns its reply, parsed
// (aliasing the session), or its error: a pool error, a *RedisError, or
// ErrNil for a nil reply. On error (ErrNil too) the session has been
// released.
func (c *Client) execOne(ctx context.Context, cc *session) (resp.Value, error) {
	b, err := c.execRaw(ctx, cc)
	if err != nil {
		return resp.Value{}, err
	}
	v, err := replyOf(b, cc.g.lim)
	if err != nil {
		c.release(cc)
		return v, err
	}
	return v, nil
}

// intReply runs the one request of cc.in, whose reply is an integer, and
// releases the session.
func (c *Client) intReply(ctx context.Context, cc *session, cmd string) (int64, error) {
	v, err := c.execOne(ctx, cc)
	if err == ErrNil {
		return 0, unexpected(cmd, v)
	}
	if err != nil {
		return 0, err
	}
	c.release(cc)
	if v.Type != resp.TypeInt {
		return 0, unexpected(cmd, v)
	}
	return v.Int, nil
}

// slotErr returns the error of request i of the finished batch when it
// failed on its way to or from a server (a call with a pool error), wrapped
// with the server's name; nil otherwise.
func (c *session) slotErr(i int) error {
	sl := &c.slots[i]
	switch sl.kind {
	case slotSingle, slotMGet, slotSum, slotMSet, slotFan:
	default:
		return nil
	}
	n := sl.ncall
	if sl.kind == slotSingle {
		n = 1
	}
	for _, cl := range c.calls[sl.call : sl.call+n] {
		if cl.err != nil {
			if sl.kind == slotFan && sl.fan.everyServer() {
				return fmt.Errorf("proxy: server %s (the command was sent to every server): %w", c.g.backends[cl.server].name, cl.err)
			}
			return fmt.Errorf("proxy: server %s: %w", c.g.backends[cl.server].name, cl.err)
		}
	}
	return nil
}

// Request builders. They append one command in RESP to dst without
// allocating.

func appendCommand1(dst []byte, cmd, key string) []byte {
	dst = resp.AppendArrayHeader(dst, 2)
	dst = resp.AppendBulkString(dst, cmd)
	return resp.AppendBulkString(dst, key)
}

func appendCommand2(dst []byte, cmd, key, arg string) []byte {
	dst = resp.AppendArrayHeader(dst, 3)
	dst = resp.AppendBulkString(dst, cmd)
	dst = resp.AppendBulkString(dst, key)
	return resp.AppendBulkString(dst, arg)
}

func appendKeys(dst []byte, cmd string, keys []string) []byte {
	dst = resp.AppendArrayHeader(dst, 1+len(keys))
	dst = resp.AppendBulkString(dst, cmd)
	for _, k := range keys {
		dst = resp.AppendBulkString(dst, k)
	}
	return dst
}

func appendKeyFields(dst []byte, cmd, key string, fields []string) []byte {
	dst = resp.AppendArrayHeader(dst, 2+len(fields))
	dst = resp.AppendBulkString(dst, cmd)
	dst = resp.AppendBulkString(dst, key)
	for _, f := range fields {
		dst = resp.AppendBulkString(dst, f)
	}
	return dst
}

func appendIntBulk(dst []byte, n int64) []byte {
	var b [20]byte
	return resp.AppendBulk(dst, strconv.AppendInt(b[:0], n, 10))
}

func appendIncrBy(dst []byte, key string, n int64) []byte {
	dst = resp.AppendArrayHeader(dst, 3)
	dst = resp.AppendBulkString(dst, "INCRBY")
	dst = resp.AppendBulkString(dst, key)
	return appendIntBulk(dst, n)
}

func appendHIncrBy(dst []byte, key, field string, n int64) []byte {
	dst = resp.AppendArrayHeader(dst, 4)
	dst = resp.AppendBulkString(dst, "HINCRBY")
	dst = resp.AppendBulkString(dst, key)
	dst = resp.AppendBulkString(dst, field)
	return appendIntBulk(dst, n)
}

func appendExpire(dst []byte, key string, ttl time.Duration) []byte {
	dst = resp.AppendArrayHeader(dst, 3)
	if ttl%time.Second == 0 {
		dst = resp.AppendBulkString(dst, "EXPIRE")
		dst = resp.AppendBulkString(dst, key)
		return appendIntBulk(dst, int64(ttl/time.Second))
	}
	dst = resp.AppendBulkString(dst, "PEXPIRE")
	dst = resp.AppendBulkString(dst, key)
	return appendIntBulk(dst, int64(ttl/time.Millisecond))
}

func appendSet(dst []byte, key string, value any, a SetArgs) ([]byte, error) {
	if a.KeepTTL && a.TTL != 0 && a.TTL != KeepTTL {
		return dst, errors.New("proxy: SET: KeepTTL with a TTL")
	}
	if a.TTL < 0 && a.TTL != KeepTTL {
		return dst, fmt.Errorf("proxy: SET: negative TTL %v", a.TTL)
	}
	if a.Mode > SetIfPresent {
		return dst, fmt.Errorf("proxy: SET: unknown mode %d", a.Mode)
	}
	n := 3
	if a.TTL > 0 {
		n += 2
	} else if a.KeepTTL {
		n++
	}
	if a.Mode != SetAlways {
		n++
	}
	start := len(dst)
	dst = resp.AppendArrayHeader(dst, n)
	dst = resp.AppendBulkString(dst, "SET")
	dst = resp.AppendBulkString(dst, key)
	dst, err := appendArg(dst, value)
	if err != nil {
		return dst[:start], err
	}
	switch {
	case a.TTL > 0 && a.TTL%time.Second == 0:
		dst = resp.AppendBulkString(dst, "EX")
		dst = appendIntBulk(dst, int64(a.TTL/time.Second))
	case a.TTL > 0:
		dst = resp.AppendBulkString(dst, "PX")
		dst = appendIntBulk(dst, max(1, int64(a.TTL/time.Millisecond)))
	case a.KeepTTL:
		dst = resp.AppendBulkString(dst, "KEEPTTL")
	}
	switch a.Mode {
	case SetIfAbsent:
		dst = resp.AppendBulkString(dst, "NX")
	case SetIfPresent:
		dst = resp.AppendBulkString(dst, "XX")
	}
	return dst, nil
}

// appendPairs appends cmd, then key if withKey, then k1 v1 k2 v2 … from
// pairs: names and values in turn, or one map.
func appendPairs(dst []byte, cmd string, withKey bool, key string, pairs []any) ([]byte, error) {
	n := len(pairs)
	if len(pairs) == 1 {
		switch m := pairs[0].(type) {
		case map[string]string:
			n = 2 * len(m)
		case map[string]any:
			n = 2 * len(m)
		}
	}
	if n == 0 || n%2 != 0 {
		return dst, fmt.Errorf("proxy: %s needs names and values in pairs, or one map; got %d arguments", cmd, len(pairs))
	}
	start := len(dst)
	if withKey {
		dst = resp.AppendArrayHeader(dst, 2+n)
		dst = resp.AppendBulkString(dst, cmd)
		dst = resp.AppendBulkString(dst, key)
	} else {
		dst = resp.AppendArrayHeader(dst, 1+n)
		dst = resp.AppendBulkString(dst, cmd)
	}
	var err error
	if n != len(pairs) {
		switch m := pairs[0].(type) {
		case map[string]string:
			for k, v := range m {
				dst = resp.AppendBulkString(dst, k)
				dst = resp.AppendBulkString(dst, v)
			}
		case map[string]any:
			for k, v := range m {
				dst = resp.AppendBulkString(dst, k)
				if dst, err = appendArg(dst, v); err != nil {
					return dst[:start], err
				}
			}
		}
		return dst, nil
	}
	for _, a := range pairs {
		if dst, err = appendArg(dst, a); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// appendArgs appends a whole command.
func appendArgs(dst []byte, args []any) ([]byte, error) {
	start := len(dst)
	dst = resp.AppendArrayHeader(dst, len(args))
	var err error
	for _, a := range args {
		if dst, err = appendArg(dst, a); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// appendArg appends one argument as a bulk string.
func appendArg(dst []byte, a any) ([]byte, error) {
	var b [32]byte
	switch v := a.(type) {
	case string:
		return resp.AppendBulkString(dst, v), nil
	case []byte:
		return resp.AppendBulk(dst, v), nil
	case nil:
		return resp.AppendBulkString(dst, ""), nil
	case int:
		return resp.AppendBulk(dst, strconv.AppendInt(b[:0], int64(v), 10)), nil
	case int8:
		return resp.AppendBulk(dst, strconv.AppendInt(b[:0], int64(v), 10)), nil
	case int16:
		return resp.AppendBulk(dst, strconv.AppendInt(b[:0], int64(v), 10)), nil
	case int32:
		return resp.AppendBulk(dst, strconv.AppendInt(b[:0], int64(v), 10)), nil
	case int64:
		return resp.AppendBulk(dst, strconv.AppendInt(b[:0], v, 10)), nil
	case uint:
		return resp.AppendBulk(dst, strconv.AppendUint(b[:0], uint64(v), 10)), nil
	case uint8:
		return resp.AppendBulk(dst, strconv.AppendUint(b[:0], uint64(v), 10)), nil
	case uint16:
		return resp.AppendBulk(dst, strconv.AppendUint(b[:0], uint64(v), 10)), nil
	case uint32:
		return resp.AppendBulk(dst, strconv.AppendUint(b[:0], uint64(v), 10)), nil
	case uint64:
		return resp.AppendBulk(dst, strconv.AppendUint(b[:0], v, 10)), nil
	case float32:
		return resp.AppendBulk(dst, strconv.AppendFloat(b[:0], float64(v), 'f', -1, 32)), nil
	case float64:
		return resp.AppendBulk(dst, strconv.AppendFloat(b[:0], v, 'f', -1, 64)), nil
	case bool:
		if v {
			return resp.AppendBulkString(dst, "1"), nil
		}
		return resp.AppendBulkString(dst, "0"), nil
	case encoding.BinaryMarshaler:
		m, err := v.MarshalBinary()
		if err != nil {
			return dst, err
		}
		return resp.AppendBulk(dst, m), nil
	}
	return dst, fmt.Errorf("proxy: cannot send an argument of type %T: pass a string, []byte, number, bool or encoding.BinaryMarshaler", a)
}

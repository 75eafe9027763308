package proxy

import (
	"context"
	"errors"
	"time"
)

// A Pipeline queues commands and sends them together with Exec: one batch
// through the Client, as Client.DoMulti sends it, in one round trip per
// server involved. Each queued command returns its *Reply, which Exec
// fills in; read it after Exec with its accessors (Text, Int, Slice, …).
// Commands on several servers run in parallel, and their replies come
// back in the order they were queued. A Pipeline is not a transaction:
// other callers' commands may run between its commands.
//
// A Pipeline is reusable after Exec (or Discard) and is not safe for
// concurrent use.
type Pipeline struct {
	r       *Redis
	buf     []byte   // the queued commands in RESP
	ends    []int    // where each ends in buf
	replies []*Reply // one per queued command
	err     error    // the first argument that could not be encoded
}

// Pipeline returns a new, empty Pipeline.
func (r *Redis) Pipeline() *Pipeline { return &Pipeline{r: r} }

// Pipelined queues commands with fn and runs them with Exec, unless fn
// fails: it returns fn's error or Exec's.
func (r *Redis) Pipelined(ctx context.Context, fn func(*Pipeline) error) error {
	p := r.Pipeline()
	if err := fn(p); err != nil {
		return err
	}
	return p.Exec(ctx)
}

// Len returns how many commands are queued.
func (p *Pipeline) Len() int { return len(p.replies) }

// Discard drops the queued commands.
func (p *Pipeline) Discard() {
	clear(p.replies)
	p.buf, p.ends, p.replies, p.err = p.buf[:0], p.ends[:0], p.replies[:0], nil
}

// add queues the command appended to p.buf (or records err, the reason it
// could not be) and returns its Reply.
func (p *Pipeline) add(b []byte, err error) *Reply {
	rep := &Reply{}
	if err != nil {
		rep.err = err
		if p.err == nil {
			p.err = err
		}
		if len(p.ends) > 0 {
			b = b[:p.ends[len(p.ends)-1]]
		} else {
			b = b[:0]
		}
	}
	p.buf = b
	p.ends = append(p.ends, len(b))
	p.replies = append(p.replies, rep)
	return rep
}

// Exec sends the queued commands and fills in their Replies, then empties
// the Pipeline. It returns the first error of a command other than ErrNil
// (a *RedisError, a server's failure), so that a failed write is not
// missed; every command's own error is its Reply's Err. If a command could
// not be encoded, if ctx ends first, or if the Client is closed, no reply
// is filled in and every Reply's Err is that error (after ctx ends the
// commands may still be carried out).
func (p *Pipeline) Exec(ctx context.Context) error {
	defer p.Discard()
	if p.err != nil {
		return p.failAll(p.err)
	}
	if len(p.replies) == 0 {
		return nil
	}
	c := p.r.c
	cc, err := c.begin()
	if err != nil {
		return p.failAll(err)
	}
	cc.in = append(cc.in, p.buf...)
	cc.pos = append(cc.pos, p.ends...)
	out, err := c.execRaw(ctx, cc)
	if err != nil {
		return p.failAll(err)
	}
	// One buffer for all the replies, which alias it.
	buf := append([]byte(nil), out...)
	lim := cc.g.lim
	var first error
	start := 0
	for i, rep := range p.replies {
		end := cc.marks[i]
		if rep.err = cc.slotErr(i); rep.err == nil {
			rep.v, rep.err = replyOf(buf[start:end], lim)
		}
		if first == nil && rep.err != nil && rep.err != ErrNil {
			first = rep.err
		}
		start = end
	}
	c.release(cc)
	return first
}

func (p *Pipeline) failAll(err error) error {
	for _, rep := range p.replies {
		rep.err = err
	}
	return err
}

// Do queues any command (see Redis.Do).
func (p *Pipeline) Do(args ...any) *Reply {
	if len(args) == 0 {
		return p.add(p.buf, errors.New("proxy: Do needs a command"))
	}
	return p.add(appendArgs(p.buf, args))
}

// Get queues a GET; its Reply's Text is the value, its Err ErrNil for a
// missing key.
func (p *Pipeline) Get(key string) *Reply {
	return p.add(appendCommand1(p.buf, "GET", key), nil)
}

// Set queues a SET, as Redis.Set sends it.
func (p *Pipeline) Set(key string, value any, ttl time.Duration) *Reply {
	return p.add(appendSet(p.buf, key, value, SetArgs{TTL: ttl, KeepTTL: ttl == KeepTTL}))
}

// SetArgs queues a SET with options, as Redis.SetArgs sends it; its
// Reply's Err is ErrNil when the condition did not hold.
func (p *Pipeline) SetArgs(key string, value any, a SetArgs) *Reply {
	return p.add(appendSet(p.buf, key, value, a))
}

// Del queues a DEL; its Reply's Int is how many keys existed.
func (p *Pipeline) Del(keys ...string) *Reply {
	return p.add(appendKeys(p.buf, "DEL", keys), nil)
}

// Exists queues an EXISTS; its Reply's Int is how many keys exist.
func (p *Pipeline) Exists(keys ...string) *Reply {
	return p.add(appendKeys(p.buf, "EXISTS", keys), nil)
}

// Expire queues an EXPIRE (PEXPIRE for a ttl that is not whole seconds);
// its Reply's Bool reports whether the key exists.
func (p *Pipeline) Expire(key string, ttl time.Duration) *Reply {
	return p.add(appendExpire(p.buf, key, ttl), nil)
}

// Incr queues an INCR; its Reply's Int is the result.
func (p *Pipeline) Incr(key string) *Reply {
	return p.add(appendCommand1(p.buf, "INCR", key), nil)
}

// Decr queues a DECR; its Reply's Int is the result.
func (p *Pipeline) Decr(key string) *Reply {
	return p.add(appendCommand1(p.buf, "DECR", key), nil)
}

// IncrBy queues an INCRBY; its Reply's Int is the result.
func (p *Pipeline) IncrBy(key string, n int64) *Reply {
	return p.add(appendIncrBy(p.buf, key, n), nil)
}

// MGet queues an MGET; its Reply's Slice has one Reply per key (Err
// ErrNil for a missing one).
func (p *Pipeline) MGet(keys ...string) *Reply {
	return p.add(appendKeys(p.buf, "MGET", keys), nil)
}

// MSet queues an MSET of pairs, as Redis.MSet takes them.
func (p *Pipeline) MSet(pairs ...any) *Reply {
	return p.add(appendPairs(p.buf, "MSET", false, "", pairs))
}

// HGet queues an HGET; its Reply's Text is the value, its Err ErrNil for a
// missing key or field.
func (p *Pipeline) HGet(key, field string) *Reply {
	return p.add(appendCommand2(p.buf, "HGET", key, field), nil)
}

// HSet queues an HSET of fieldsValues, as Redis.HSet takes them; its
// Reply's Int is how many fields were new.
func (p *Pipeline) HSet(key string, fieldsValues ...any) *Reply {
	return p.add(appendPairs(p.buf, "HSET", true, key, fieldsValues))
}

// HGetAll queues an HGETALL; its Reply's StringMap is the hash.
func (p *Pipeline) HGetAll(key string) *Reply {
	return p.add(appendCommand1(p.buf, "HGETALL", key), nil)
}

// HDel queues an HDEL; its Reply's Int is how many fields existed.
func (p *Pipeline) HDel(key string, fields ...string) *Reply {
	return p.add(appendKeyFields(p.buf, "HDEL", key, fields), nil)
}

// HIncrBy queues an HINCRBY; its Reply's Int is the result.
func (p *Pipeline) HIncrBy(key, field string, n int64) *Reply {
	return p.add(appendHIncrBy(p.buf, key, field, n), nil)
}

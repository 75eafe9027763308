package memcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// A minimal memcached: read every buffered request, answer from a map,
// flush once per batch.
func Example() {
	in := strings.NewReader("set greeting 0 0 5\r\nhello\r\nget greeting missing\r\n" +
		"bogus\r\nset k 0 0 1 noreply\r\nx\r\ndelete k\r\n")
	var out bytes.Buffer
	r := memcache.NewReader(in, protocol.Limits{})
	w := memcache.NewWriter(&out)
	store := map[string][]byte{}

	var reqs []memcache.Request
	for {
		var err error
		reqs, err = r.ReadRequests(reqs)
		var pe *protocol.Error
		switch {
		case errors.As(err, &pe):
			if !reqs[0].Noreply {
				_, _ = w.Write(append([]byte(pe.Reply), "\r\n"...))
			}
			if len(reqs[0].Raw) == 0 {
				return // out of sync: close
			}
			continue
		case errors.Is(err, io.EOF):
			_ = w.Flush()
			fmt.Print(strings.ReplaceAll(out.String(), "\r\n", "\n"))
			return
		case err != nil:
			return
		}
		for i := range reqs {
			req := &reqs[i]
			switch req.Command {
			case memcache.Set:
				store[string(req.Keys[0])] = bytes.Clone(req.Data)
				if !req.Noreply {
					w.WriteResponse(memcache.RespStored)
				}
			case memcache.Get:
				for _, k := range req.Keys {
					if v, ok := store[string(k)]; ok {
						w.WriteValue(&memcache.Value{Key: k, Data: v})
					}
				}
				w.WriteResponse(memcache.RespEnd)
			case memcache.Delete:
				if _, ok := store[string(req.Keys[0])]; ok {
					delete(store, string(req.Keys[0]))
					w.WriteResponse(memcache.RespDeleted)
				} else {
					w.WriteResponse(memcache.RespNotFound)
				}
			default:
				w.WriteResponse(memcache.RespError)
			}
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
	// Output:
	// STORED
	// VALUE greeting 0 5
	// hello
	// END
	// ERROR
	// DELETED
}

// Framing the fragments of a multi-key get and merging their VALUE blocks
// under one END, as a proxy does.
func ExampleParseValue() {
	fragments := []string{
		"VALUE a 0 1\r\n1\r\nEND\r\n",
		"VALUE b 3 2 77\r\n22\r\nEND\r\n",
	}
	var merged []byte
	for _, f := range fragments {
		b := []byte(f)
		n, err := memcache.FrameResponse(b, memcache.Gets, protocol.Limits{})
		if err != nil || n != len(b) {
			fmt.Println("bad fragment:", err)
			return
		}
		for memcache.ClassifyResponse(b) == memcache.RespValue {
			var v memcache.Value
			n, err := memcache.ParseValue(b, protocol.Limits{}, &v)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("key=%s flags=%d cas=%d/%t data=%q\n", v.Key, v.Flags, v.Cas, v.HasCas, v.Data)
			merged = append(merged, v.Raw...)
			b = b[n:]
		}
	}
	merged = memcache.AppendEnd(merged)
	fmt.Printf("%q\n", merged)
	// Output:
	// key=a flags=0 cas=0/false data="1"
	// key=b flags=3 cas=77/true data="22"
	// "VALUE a 0 1\r\n1\r\nVALUE b 3 2 77\r\n22\r\nEND\r\n"
}

func ExampleParseRequest() {
	in := []byte("get a b\r\nset k 0 0 abc\r\nincr n 5 noreply\r\n")
	var req memcache.Request
	for len(in) > 0 {
		n, err := memcache.ParseRequest(in, protocol.Limits{}, &req)
		if n == 0 {
			break // incomplete, or out of sync if err != nil
		}
		if err != nil {
			fmt.Printf("%q -> %v\n", req.Raw, err)
		} else {
			fmt.Printf("%s %q noreply=%t\n", req.Command, req.Keys, req.Noreply)
		}
		in = in[n:]
	}
	// Output:
	// get ["a" "b"] noreply=false
	// "set k 0 0 abc\r\n" -> protocol: memcache: CLIENT_ERROR bad command line format
	// incr ["n"] noreply=true
}

package memcache_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

// fuzzLimits are the limits the fuzz targets parse with: the defaults, and
// small ones so that every limit is reached (the last lets get lines run
// past MaxLine up to MaxRequest).
var fuzzLimits = []protocol.Limits{{}, {MaxArgs: 4, MaxBulk: 16, MaxLine: 64}, {MaxLine: 16, MaxRequest: 96}}

// maxPrefixCheck bounds the frames whose every strict prefix is checked.
const maxPrefixCheck = 2048

// checkError checks that err is a memcache *protocol.Error with a reply
// memcached could send.
func checkError(t *testing.T, err error) *protocol.Error {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *protocol.Error", err)
	}
	if pe.Kind != protocol.Memcache {
		t.Fatalf("error kind %v", pe.Kind)
	}
	if !strings.HasPrefix(pe.Reply, "ERROR") && !strings.HasPrefix(pe.Reply, "CLIENT_ERROR ") && !strings.HasPrefix(pe.Reply, "SERVER_ERROR ") {
		t.Fatalf("reply %q", pe.Reply)
	}
	if strings.ContainsAny(pe.Reply, "\r\n") {
		t.Fatalf("reply %q spans lines", pe.Reply)
	}
	return pe
}

// outcomes parses b with ParseRequest as a server reads a stream,
// skipping rejected input as ParseRequest directs, and describes each
// result; the last element describes how the stream ends.
func outcomes(t *testing.T, b []byte, lim protocol.Limits) []string {
	var out []string
	var req memcache.Request
	for {
		n, err := memcache.ParseRequest(b, lim, &req)
		switch {
		case n == 0 && err == nil && len(b) == 0:
			return append(out, "EOF")
		case n == 0 && err == nil:
			return append(out, "unexpected EOF")
		case n == 0:
			return append(out, "!"+checkError(t, err).Reply)
		case err != nil:
			out = append(out, checkError(t, err).Reply)
		default:
			out = append(out, req.Command.String()+" "+string(req.Raw))
		}
		if req.Discard > len(b)-n {
			return append(out, "unexpected EOF")
		}
		b = b[n+req.Discard:]
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, tt := range validRequests {
		f.Add([]byte(tt.give))
	}
	for _, tt := range badRequests {
		f.Add([]byte(tt.give))
	}
	f.Add([]byte("get a b\r\nset k 0 0 1\r\nx\r\nincr n 1 noreply\r\nmn\r\n"))
	f.Add([]byte("set k 0 0 20\r\n01234567890123456789\r\nget a\r\n"))
	// Multi-gets past MaxLine (and MaxRequest), keys with control bytes.
	f.Add([]byte("get k:1 k:2 k:3 k:4 k:5 k:6 k:7 k:8 k:9 k:10 k:11 k:12 k:13\r\nget a\r\n"))
	f.Add([]byte("  gats 0 " + strings.Repeat("\x01\x7f\t ", 30) + "\r\nset a\x01 0 0 1\r\nx\r\n"))
	f.Add([]byte("gets" + strings.Repeat(" a", 40) + "\r\n"))

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range fuzzLimits {
			var req memcache.Request
			n, err := memcache.ParseRequest(b, lim, &req)
			if n < 0 || n > len(b) {
				t.Fatalf("n = %d for %d bytes", n, len(b))
			}
			if err != nil {
				checkError(t, err)
				if n > 0 && string(req.Raw) != string(b[:n]) {
					t.Fatalf("Raw %q, consumed %q", req.Raw, b[:n])
				}
				if req.Discard != 0 && !errors.Is(err, protocol.ErrTooLarge) {
					t.Fatalf("Discard %d with %v", req.Discard, err)
				}
			} else if n > 0 {
				checkRequest(t, b[:n], lim, &req)
			}

			// A Reader fed one byte at a time sees the same stream.
			want := outcomes(t, b, lim)
			r := memcache.NewReader(oneByteReader(b), lim)
			for i, w := range want {
				err := r.ReadRequest(&req)
				var got string
				var pe *protocol.Error
				switch {
				case errors.As(err, &pe) && len(req.Raw) == 0:
					got = "!" + pe.Reply
				case errors.As(err, &pe):
					got = pe.Reply
				case err != nil:
					got = err.Error()
				default:
					got = req.Command.String() + " " + string(req.Raw)
				}
				if got != w {
					t.Fatalf("outcome %d: Reader %q, ParseRequest %q", i, got, w)
				}
			}
		}
	})
}

// checkRequest checks a request parsed from frame: every strict prefix is
// incomplete, and encoding it gives a request that parses the same.
func checkRequest(t *testing.T, frame []byte, lim protocol.Limits, req *memcache.Request) {
	t.Helper()
	if string(req.Raw) != string(frame) {
		t.Fatalf("Raw %q, frame %q", req.Raw, frame)
	}
	if req.Command.IsStorage() || req.Command == memcache.MetaSet {
		if len(req.Data) != req.Bytes {
			t.Fatalf("Data %q, Bytes %d", req.Data, req.Bytes)
		}
	}
	for _, k := range req.Keys {
		if !memcache.ValidKey(k) {
			t.Fatalf("invalid key %q accepted", k)
		}
	}
	var other memcache.Request
	if len(frame) <= maxPrefixCheck {
		for i := range frame {
			if n, err := memcache.ParseRequest(frame[:i], lim, &other); n != 0 || err != nil {
				t.Fatalf("prefix %q of %q: n=%d err=%v", frame[:i], frame, n, err)
			}
		}
	}
	enc := memcache.AppendRequest(nil, req)
	encLim := lim.WithDefaults()
	encLim.MaxLine++ // a line ended by "\n" alone is re-encoded with "\r\n"
	encLim.MaxRequest++
	n, err := memcache.ParseRequest(enc, encLim, &other)
	if err != nil || n != len(enc) {
		t.Fatalf("re-encoded %q from %q: n=%d err=%v", enc, frame, n, err)
	}
	if got, want := view(&other), view(req); !equalViews(got, want) {
		t.Fatalf("re-encoded %q from %q parses to %+v, want %+v", enc, frame, got, want)
	}
}

func equalViews(a, b reqView) bool {
	return slices.Equal(a.Keys, b.Keys) &&
		a.Command == b.Command && a.Flags == b.Flags && a.Exptime == b.Exptime && a.Bytes == b.Bytes &&
		a.Cas == b.Cas && a.Delta == b.Delta && a.Noreply == b.Noreply && a.Quiet == b.Quiet && a.Data == b.Data
}

func FuzzFrameResponse(f *testing.F) {
	for _, tt := range validResponses {
		f.Add(byte(tt.cmd), []byte(tt.give))
	}
	f.Add(byte(memcache.Gets), []byte("VALUE k 0 1 5\r\nx\r\nVALUE k 0 1 5\r\nx\r\nEND\r\n"))
	f.Add(byte(memcache.Stats), []byte("STAT a 1\r\nSTAT b 2\r\nSTAT c 3\r\nSTAT d 4\r\nSTAT e 5\r\nEND\r\n"))

	f.Fuzz(func(t *testing.T, c byte, b []byte) {
		cmd := memcache.Command(c % 32)
		for _, lim := range fuzzLimits {
			n, err := memcache.FrameResponse(b, cmd, lim)
			if n < 0 || n > len(b) {
				t.Fatalf("n = %d for %d bytes", n, len(b))
			}
			checkHint(t, b, cmd, lim, n, err)
			if err != nil {
				if n != 0 {
					t.Fatalf("n = %d with error %v", n, err)
				}
				pe := checkError(t, err)
				if pe.Reply != "SERVER_ERROR Invalid argument" && pe.Reply != "SERVER_ERROR object too large for cache" {
					t.Fatalf("reply %q", pe.Reply)
				}
			}
			if n > 0 {
				frame := b[:n]
				// A stats response may start with any line (ITEM, PREFIX, …).
				if cmd != memcache.Stats && memcache.ClassifyResponse(frame) == memcache.RespInvalid {
					t.Fatalf("framed %q starts with an invalid line", frame)
				}
				if m, err := memcache.FrameResponse(frame, cmd, lim); m != n || err != nil {
					t.Fatalf("frame %q alone: n=%d err=%v", frame, m, err)
				}
				if len(frame) <= maxPrefixCheck {
					for i := range frame {
						if m, err := memcache.FrameResponse(frame[:i], cmd, lim); m != 0 || err != nil {
							t.Fatalf("prefix %q of %q: n=%d err=%v", frame[:i], frame, m, err)
						}
					}
				}
				// The hint for any prefix is a lower bound of the frame's
				// length.
				for _, i := range prefixLengths(len(frame)) {
					h, err := memcache.FrameResponseHint(frame[:i], cmd, lim)
					if h > 0 || err != nil || -h > len(frame) {
						t.Fatalf("prefix of %d bytes of the %d-byte %q: hint %d, %v", i, len(frame), frame, h, err)
					}
				}
			}

			// A Reader fed one byte at a time agrees.
			r := memcache.NewReader(oneByteReader(b), lim)
			resp, rerr := r.ReadResponse(cmd)
			switch {
			case n > 0:
				if rerr != nil || string(resp) != string(b[:n]) {
					t.Fatalf("Reader: %q %v, FrameResponse: %d", resp, rerr, n)
				}
			case err != nil:
				if !errors.Is(rerr, protocol.ErrProtocol) {
					t.Fatalf("Reader: %v, FrameResponse: %v", rerr, err)
				}
			default:
				if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
					t.Fatalf("Reader: %v, FrameResponse: incomplete", rerr)
				}
			}
		}
	})
}

func FuzzParseValue(f *testing.F) {
	f.Add([]byte("VALUE k 0 1\r\nx\r\nEND\r\n"))
	f.Add([]byte("VALUE k 4294967295 2 18446744073709551615\r\n\r\n\r\n"))
	f.Add([]byte("VALUE \xff  1  0 \r\n\r\n"))
	f.Add([]byte("VALUE k 0 17\r\n0123456789abcdefg\r\n"))
	f.Add([]byte("END\r\n"))

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range fuzzLimits {
			var v memcache.Value
			n, err := memcache.ParseValue(b, lim, &v)
			if n < 0 || n > len(b) {
				t.Fatalf("n = %d for %d bytes", n, len(b))
			}
			if err != nil {
				checkError(t, err)
				if n != 0 {
					t.Fatalf("n = %d with error %v", n, err)
				}
			}
			if n == 0 {
				continue
			}
			if string(v.Raw) != string(b[:n]) || len(v.Data) != v.Bytes || v.Bytes > lim.WithDefaults().MaxBulk {
				t.Fatalf("value %+v from %q", v, b[:n])
			}
			if memcache.ClassifyResponse(b) != memcache.RespValue {
				t.Fatalf("%q parsed but is not classified as VALUE", b[:n])
			}
			if len(b) <= maxPrefixCheck {
				var w memcache.Value
				for i := range n {
					if m, err := memcache.ParseValue(b[:i], lim, &w); m != 0 || err != nil {
						t.Fatalf("prefix %q: n=%d err=%v", b[:i], m, err)
					}
				}
			}
			var enc []byte
			if v.HasCas {
				enc = memcache.AppendValueCas(nil, v.Key, v.Flags, v.Data, v.Cas)
			} else {
				enc = memcache.AppendValue(nil, v.Key, v.Flags, v.Data)
			}
			var w memcache.Value
			m, err := memcache.ParseValue(enc, lim, &w)
			if err != nil || m != len(enc) || string(w.Key) != string(v.Key) || w.Flags != v.Flags ||
				string(w.Data) != string(v.Data) || w.Cas != v.Cas || w.HasCas != v.HasCas {
				t.Fatalf("re-encoded %q from %q: %+v %v", enc, b[:n], w, err)
			}
		}
	})
}

// checkHint checks FrameResponseHint on b against FrameResponse's n and
// err: the same outcome, and a negative hint only for an incomplete frame,
// beyond len(b).
func checkHint(t *testing.T, b []byte, cmd memcache.Command, lim protocol.Limits, n int, err error) {
	t.Helper()
	h, herr := memcache.FrameResponseHint(b, cmd, lim)
	if (err == nil) != (herr == nil) || max(h, 0) != n {
		t.Fatalf("FrameResponseHint = %d, %v; FrameResponse = %d, %v", h, herr, n, err)
	}
	if h < 0 && -h <= len(b) {
		t.Fatalf("hint %d for %d bytes", h, len(b))
	}
}

// prefixLengths returns the prefix lengths of an n-byte frame to check:
// all of them for short frames, a spread for long ones.
func prefixLengths(n int) []int {
	if n <= maxPrefixCheck {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, 0, 70)
	for i := range 64 {
		out = append(out, i*n/64)
	}
	return append(out, n-1, n-2, n-3, n-5, n-6, n-7)
}

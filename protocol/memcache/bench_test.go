package memcache_test

import (
	"testing"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/memcache"
)

func benchmarkParse(b *testing.B, in []byte) {
	var req memcache.Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := memcache.ParseRequest(in, protocol.Limits{}, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	b.Run("get", func(b *testing.B) { benchmarkParse(b, getOne) })
	b.Run("get10", func(b *testing.B) { benchmarkParse(b, getTen) })
	b.Run("set100", func(b *testing.B) { benchmarkParse(b, set100) })
}

func BenchmarkReadRequest(b *testing.B) {
	var req memcache.Request
	r := memcache.NewReader(&loopReader{b: getOne}, protocol.Limits{})
	b.ReportAllocs()
	b.SetBytes(int64(len(getOne)))
	for b.Loop() {
		if err := r.ReadRequest(&req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFrameResponse(b *testing.B) {
	b.Run("get10x100", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(getResp)))
		for b.Loop() {
			if _, err := memcache.FrameResponse(getResp, memcache.Get, protocol.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stored", func(b *testing.B) {
		resp := []byte("STORED\r\n")
		b.ReportAllocs()
		b.SetBytes(int64(len(resp)))
		for b.Loop() {
			if _, err := memcache.FrameResponse(resp, memcache.Set, protocol.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseValue(b *testing.B) {
	var v memcache.Value
	b.ReportAllocs()
	b.SetBytes(int64(len(getResp)))
	for b.Loop() {
		in := getResp
		for memcache.ClassifyResponse(in) == memcache.RespValue {
			n, err := memcache.ParseValue(in, protocol.Limits{}, &v)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
		}
	}
}

func BenchmarkAppendGet(b *testing.B) {
	keys := [][]byte{[]byte("user:1000:name")}
	ten := [][]byte{[]byte("k1"), []byte("k2"), []byte("k3"), []byte("k4"), []byte("k5"),
		[]byte("k6"), []byte("k7"), []byte("k8"), []byte("k9"), []byte("k10")}
	for _, tt := range []struct {
		name string
		keys [][]byte
	}{{"1key", keys}, {"10keys", ten}} {
		b.Run(tt.name, func(b *testing.B) {
			buf := memcache.AppendGet(nil, memcache.Get, tt.keys...)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				buf = memcache.AppendGet(buf[:0], memcache.Get, tt.keys...)
			}
		})
	}
}

func BenchmarkAppendStorage(b *testing.B) {
	data := set100[15:115]
	buf := memcache.AppendStorage(nil, memcache.Set, []byte("k"), 0, 0, 0, data, false)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = memcache.AppendStorage(buf[:0], memcache.Set, []byte("k"), 0, 0, 0, data, false)
	}
}

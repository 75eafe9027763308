package resp_test

import (
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// benchCommands are the commands the proxy parses most, plus larger values.
func benchCommands() []struct {
	name string
	give []byte
} {
	mget := []string{"MGET"}
	for i := range 10 {
		mget = append(mget, "key:"+strconv.Itoa(i))
	}
	return []struct {
		name string
		give []byte
	}{
		{name: "SET", give: resp.AppendCommandString(nil, "SET", "key", "value")},
		{name: "GET", give: resp.AppendCommandString(nil, "GET", "key")},
		{name: "MGET-10", give: resp.AppendCommandString(nil, mget...)},
		{name: "SET-1KiB", give: resp.AppendCommandString(nil, "SET", "key", strings.Repeat("v", 1<<10))},
		{name: "SET-64KiB", give: resp.AppendCommandString(nil, "SET", "key", strings.Repeat("v", 64<<10))},
		{name: "inline-GET", give: []byte("GET key\r\n")},
	}
}

func BenchmarkParseCommand(b *testing.B) {
	for _, bc := range benchCommands() {
		b.Run(bc.name, func(b *testing.B) {
			var cmd resp.Command
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.give)))
			for b.Loop() {
				if _, err := resp.ParseCommand(bc.give, protocol.Limits{}, &cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReaderReadCommands measures the proxy's client-side loop: read
// a batch of pipelined commands from a connection. It reports per command.
func BenchmarkReaderReadCommands(b *testing.B) {
	for _, bc := range benchCommands()[:3] {
		b.Run(bc.name, func(b *testing.B) {
			r := resp.NewReader(&loopReader{frame: bc.give}, protocol.Limits{})
			cmds := make([]resp.Command, 0, 4096)
			next := 0
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.give)))
			for b.Loop() {
				if next == len(cmds) {
					var err error
					if cmds, err = r.ReadCommands(cmds); err != nil {
						b.Fatal(err)
					}
					next = 0
				}
				next++ // one command per iteration
			}
		})
	}
}

// arrayOfBulks is the reply to an MGET of n keys.
func arrayOfBulks(n int) []byte {
	b := resp.AppendArrayHeader(nil, n)
	for i := range n {
		b = resp.AppendBulkString(b, "value:"+strconv.Itoa(i))
	}
	return b
}

func BenchmarkFrameReply(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		give := arrayOfBulks(n)
		b.Run("array-"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(give)))
			for b.Loop() {
				if _, err := resp.FrameReply(give, protocol.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	ok := []byte("+OK\r\n")
	b.Run("OK", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ok)))
		for b.Loop() {
			if _, err := resp.FrameReply(ok, protocol.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseReply(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		give := arrayOfBulks(n)
		b.Run("array-"+strconv.Itoa(n), func(b *testing.B) {
			var v resp.Value
			b.ReportAllocs()
			b.SetBytes(int64(len(give)))
			for b.Loop() {
				if _, err := resp.ParseReply(give, protocol.Limits{}, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReaderReadReply reads replies into a reused Value, with the
// Reader's reused element memory.
func BenchmarkReaderReadReply(b *testing.B) {
	give := arrayOfBulks(100)
	r := resp.NewReader(&loopReader{frame: give}, protocol.Limits{})
	var v resp.Value
	b.ReportAllocs()
	b.SetBytes(int64(len(give)))
	for b.Loop() {
		if err := r.ReadReply(&v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendCommand(b *testing.B) {
	args := [][]byte{[]byte("SET"), []byte("key"), []byte("value")}
	dst := resp.AppendCommand(nil, args...)
	b.ReportAllocs()
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		dst = resp.AppendCommand(dst[:0], args...)
	}
}

func BenchmarkWriter(b *testing.B) {
	w := resp.NewWriter(io.Discard)
	value := []byte("value")
	b.ReportAllocs()
	b.SetBytes(int64(len(resp.AppendBulk(nil, value))))
	for b.Loop() {
		w.WriteBulk(value)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

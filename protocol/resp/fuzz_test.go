package resp_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/walnutproxy/walnut/protocol"
	"github.com/walnutproxy/walnut/protocol/resp"
)

// fuzzLimits are the limits each fuzz input is parsed under: the defaults,
// and small ones so that the fuzzer reaches every limit.
var fuzzLimits = []protocol.Limits{
	{},
	{MaxArgs: 4, MaxBulk: 40, MaxLine: 24, MaxDepth: 3},
}

// prefixes returns the prefix lengths of an n-byte frame to check: all of
// them for short frames, a spread for long ones.
func prefixes(n int) []int {
	if n <= 64 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, 0, 32)
	for i := range 32 {
		out = append(out, i*n/32)
	}
	return append(out, n-1, n-2, n-3)
}

// checkProtocolError fails unless err is a *protocol.Error as the parsers
// make them.
func checkProtocolError(t *testing.T, err error) *protocol.Error {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *protocol.Error", err, err)
	}
	if pe.Kind != protocol.Redis || !strings.HasPrefix(pe.Reply, "ERR Protocol error: ") || strings.ContainsAny(pe.Reply, "\r\n") {
		t.Fatalf("bad error %#v", pe)
	}
	return pe
}

func FuzzParseCommand(f *testing.F) {
	for _, tt := range validCommands {
		f.Add([]byte(tt.give))
	}
	for _, tt := range malformedCommands {
		if len(tt.give) < 200 {
			f.Add([]byte(tt.give))
		}
	}
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING\r\n\r\n*0\r\n"))
	f.Add([]byte(`SET "a\x00b" 'c\'d' e"f g"` + "\n" + "*1\r\n$4\r\nPINGxx"))
	f.Add([]byte("*4\r\n$1\r\na\r\n$40\r\n0123456789012345678901234567890123456789\r\n$0\r\n\r\n$1\r\n\x00\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range fuzzLimits {
			checkParseCommand(t, b, lim)
		}
	})
}

func checkParseCommand(t *testing.T, b []byte, lim protocol.Limits) {
	if msg := resp.CheckFastPathsForTest(b, lim); msg != "" {
		t.Fatal(msg)
	}
	var cmd resp.Command
	n, err := resp.ParseCommand(b, lim, &cmd)
	if n < 0 || n > len(b) {
		t.Fatalf("n = %d for %d bytes", n, len(b))
	}
	if err != nil {
		checkProtocolError(t, err)
		if n != 0 {
			t.Fatalf("n = %d with error %v", n, err)
		}
	}
	if n > 0 {
		if !bytes.Equal(cmd.Raw, b[:n]) {
			t.Fatalf("Raw %q is not the %d bytes taken", cmd.Raw, n)
		}
		args := strs(cmd.Args)
		for _, k := range prefixes(n) {
			var c resp.Command
			if n2, err := resp.ParseCommand(b[:k], lim, &c); n2 != 0 || err != nil {
				t.Fatalf("prefix of %d bytes: %d, %v", k, n2, err)
			}
		}
		if len(args) > 0 {
			enc := resp.AppendCommand(nil, cmd.Args...)
			var again resp.Command
			n3, err := resp.ParseCommand(enc, lim, &again)
			if err != nil || n3 != len(enc) || !equalStrings(args, strs(again.Args)) {
				t.Fatalf("re-encoded %q parses as %q, %d, %v; want %q", enc, strs(again.Args), n3, err, args)
			}
		}
	}

	// The Reader, fed a byte at a time through a small buffer, reads the
	// same commands as repeated ParseCommand calls, then the same end.
	var want [][]string
	var wantErr error
	rest := b
	for {
		n, err := resp.ParseCommand(rest, lim, &cmd)
		if err != nil {
			wantErr = err
			break
		}
		if n == 0 {
			wantErr = io.EOF
			if len(rest) > 0 {
				wantErr = io.ErrUnexpectedEOF
			}
			break
		}
		if len(cmd.Args) > 0 {
			want = append(want, strs(cmd.Args))
		}
		rest = rest[n:]
	}
	r := resp.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), lim, 16)
	for i := 0; ; i++ {
		err := r.ReadCommand(&cmd)
		if err != nil {
			if i != len(want) {
				t.Fatalf("Reader stopped after %d commands with %v; want %d", i, err, len(want))
			}
			if err.Error() != wantErr.Error() {
				t.Fatalf("Reader ended with %v; want %v", err, wantErr)
			}
			break
		}
		if i >= len(want) || !equalStrings(want[i], strs(cmd.Args)) {
			t.Fatalf("Reader command %d is %q; want %q", i, strs(cmd.Args), want)
		}
	}

	// A Reader of the default size, as the proxy uses it: batches from
	// ReadCommands over reads of varying sizes, so that it moves between
	// its idle buffer and a pooled one. Each batch is copied before the
	// next call, which may hand the buffer to another Reader.
	r = resp.NewReader(&chunkReader{b: b}, lim)
	var got [][]string
	var cmds []resp.Command
	for {
		cmds, err = r.ReadCommands(cmds)
		if err != nil {
			break
		}
		for _, c := range cmds {
			if len(c.Args) > 0 {
				got = append(got, strs(c.Args))
			}
		}
	}
	if len(got) != len(want) || err.Error() != wantErr.Error() {
		t.Fatalf("ReadCommands: %d commands then %v; want %d then %v", len(got), err, len(want), wantErr)
	}
	for i := range got {
		if !equalStrings(got[i], want[i]) {
			t.Fatalf("ReadCommands command %d is %q; want %q", i, got[i], want[i])
		}
	}
}

// chunkReader returns b in reads of sizes 1, 700, 3, 5000, 60, 17000, ….
type chunkReader struct {
	b []byte
	i int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	sizes := [...]int{1, 700, 3, 5000, 60, 17000, 511, 513}
	n := min(len(p), len(c.b), sizes[c.i%len(sizes)])
	c.i++
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replySeeds are valid and nasty replies for the reply fuzz targets.
func replySeeds() [][]byte {
	var seeds [][]byte
	for _, tt := range validReplies {
		seeds = append(seeds, []byte(tt.give))
	}
	seeds = append(seeds,
		[]byte("*3\r\n$-1\r\n*-1\r\n%1\r\n~1\r\n>1\r\n|1\r\n_\r\n#t\r\n(1\r\n"),
		[]byte("*?\r\n$?\r\n;1\r\nx\r\n;0\r\n*?\r\n.\r\n.\r\n+after\r\n"),
		[]byte(strings.Repeat("*1\r\n", 70)+":1\r\n"),
		[]byte("$999999999\r\n"),
		[]byte("*1073741823\r\n:1\r\n"),
		[]byte("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n:1\r\n"),
		[]byte("+OK\n+OK\r\n"),
		[]byte("$3\r\nabc\n\r"),
		[]byte(":-9223372036854775808\r\n:9223372036854775808\r\n"),
		[]byte("%?\r\n+k\r\n.\r\n"),
		[]byte("%?\r\n+k\r\n|1\r\n+a\r\n+b\r\n%?\r\n.\r\n.\r\n"),
		[]byte("*2\r\n$?\r\n;3\r\nabc\r\n;0\r\n$100\r\n"),
	)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		seeds = append(seeds, resp.AppendValue(nil, randValue(rng, 3)))
	}
	return seeds
}

func FuzzFrameReply(f *testing.F) {
	for _, s := range replySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range fuzzLimits {
			checkFrameReply(t, b, lim)
		}
	})
}

func checkFrameReply(t *testing.T, b []byte, lim protocol.Limits) {
	if msg := resp.CheckFastPathsForTest(b, lim); msg != "" {
		t.Fatal(msg)
	}
	n, err := resp.FrameReply(b, lim)
	if n < 0 || n > len(b) {
		t.Fatalf("n = %d for %d bytes", n, len(b))
	}
	var v resp.Value
	n2, err2 := resp.ParseReply(b, lim, &v)
	if n != n2 || (err == nil) != (err2 == nil) {
		t.Fatalf("FrameReply = %d, %v; ParseReply = %d, %v", n, err, n2, err2)
	}
	if err != nil {
		if n != 0 {
			t.Fatalf("n = %d with error %v", n, err)
		}
		if pe, pe2 := checkProtocolError(t, err), checkProtocolError(t, err2); pe.Reply != pe2.Reply {
			t.Fatalf("FrameReply: %v; ParseReply: %v", err, err2)
		}
	}
	h, herr := resp.FrameReplyHint(b, lim)
	if (err == nil) != (herr == nil) || max(h, 0) != n || h < 0 && -h <= len(b) {
		t.Fatalf("FrameReplyHint = %d, %v; FrameReply = %d, %v", h, herr, n, err)
	}
	if n > 0 {
		for _, k := range prefixes(n) {
			if n, err := resp.FrameReply(b[:k], lim); n != 0 || err != nil {
				t.Fatalf("prefix of %d bytes: %d, %v", k, n, err)
			}
			// The hint for any prefix is a lower bound of the length.
			if h, err := resp.FrameReplyHint(b[:k], lim); h > 0 || err != nil || -h > n || h < 0 && -h <= k {
				t.Fatalf("prefix of %d bytes of a %d-byte reply: hint %d, %v", k, n, h, err)
			}
		}
	}

	// The Reader frames the same replies, fed a byte at a time.
	var want []int
	var wantErr error
	rest := b
	for {
		n, err := resp.FrameReply(rest, lim)
		if err != nil {
			wantErr = err
			break
		}
		if n == 0 {
			wantErr = io.EOF
			if len(rest) > 0 {
				wantErr = io.ErrUnexpectedEOF
			}
			break
		}
		want = append(want, n)
		rest = rest[n:]
	}
	r := resp.NewReaderSize(iotest.OneByteReader(bytes.NewReader(b)), lim, 16)
	for i := 0; ; i++ {
		raw, err := r.ReadRawReply()
		if err != nil {
			if i != len(want) || err.Error() != wantErr.Error() {
				t.Fatalf("Reader: %d replies then %v; want %d then %v", i, err, len(want), wantErr)
			}
			break
		}
		if i >= len(want) || len(raw) != want[i] {
			t.Fatalf("Reader reply %d is %d bytes; want %v", i, len(raw), want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range replySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range fuzzLimits {
			checkParseReply(t, b, lim)
		}
	})
}

func checkParseReply(t *testing.T, b []byte, lim protocol.Limits) {
	// ParseReply reply by reply, against the Reader's ReadReply (which
	// reuses its element memory across replies).
	var want []string
	var wantErr error
	rest := b
	var v resp.Value
	for {
		n, err := resp.ParseReply(rest, lim, &v)
		if n < 0 || n > len(rest) {
			t.Fatalf("n = %d for %d bytes", n, len(rest))
		}
		if err != nil {
			checkProtocolError(t, err)
			wantErr = err
			break
		}
		if n == 0 {
			wantErr = io.EOF
			if len(rest) > 0 {
				wantErr = io.ErrUnexpectedEOF
			}
			break
		}
		want = append(want, show(v))
		checkPairs(t, v)

		// A re-encoded reply frames and parses back to itself.
		enc := resp.AppendValue(nil, v)
		var again resp.Value
		n2, err := resp.ParseReply(enc, lim, &again)
		if err != nil || n2 != len(enc) {
			t.Fatalf("re-encoded %q: %d, %v", enc, n2, err)
		}
		if enc2 := resp.AppendValue(nil, again); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding %q gives %q", enc, enc2)
		}
		if n3, err := resp.FrameReply(enc, lim); err != nil || n3 != len(enc) {
			t.Fatalf("re-encoded %q frames as %d, %v", enc, n3, err)
		}
		rest = rest[n:]
	}
	r := resp.NewReaderSize(iotest.HalfReader(bytes.NewReader(b)), lim, 16)
	for i := 0; ; i++ {
		err := r.ReadReply(&v)
		if err != nil {
			if i != len(want) || err.Error() != wantErr.Error() {
				t.Fatalf("Reader: %d replies then %v; want %d then %v", i, err, len(want), wantErr)
			}
			break
		}
		if i >= len(want) || show(v) != want[i] {
			t.Fatalf("Reader reply %d is %s; want %q", i, show(v), want)
		}
	}
}

package proxy

import (
	"bytes"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecimalSum(t *testing.T) {
	tests := []struct {
		give []string
		want string // "" if not a sum
	}{
		{[]string{"1", "2", "3"}, "6"},
		{[]string{"0"}, "0"},
		{[]string{"0.019099", "1.5"}, "1.519099"},
		{[]string{"0.5", "0.5"}, "1.0"},
		{[]string{"0.000001", "0.999999"}, "1.000000"},
		{[]string{"007", "1"}, "8"},
		{[]string{"0.123456789", "0.000000001"}, "0.123456790"},
		{[]string{"18446744073709551615"}, "18446744073709551615"},
		{[]string{"18446744073709551615", "1"}, ""},
		{[]string{"18446744073709551615", "0.5", "0.5"}, ""},
		{[]string{"1.6.18"}, ""},
		{[]string{"2.1.12-stable"}, ""},
		{[]string{"1", "x"}, ""},
		{[]string{"-1"}, ""},
		{[]string{"+1"}, ""},
		{[]string{"1."}, ""},
		{[]string{".5"}, ""},
		{[]string{"0.1234567891"}, ""},
		{[]string{""}, ""},
	}
	for _, tt := range tests {
		d := decimalSum{ok: true}
		for _, v := range tt.give {
			d.add([]byte(v))
		}
		got := ""
		if d.ok {
			got = string(d.append(nil))
		}
		assert.Equal(t, tt.want, got, "%q", tt.give)
	}
}

// TestStatsMerge: stats in the first server's order, then those only
// later servers have; counters summed, per-server values and non-numbers
// the first server's.
func TestStatsMerge(t *testing.T) {
	var m statsMerge
	assert.True(t, m.add([]byte("STAT pid 10\r\nSTAT cmd_get 3\r\nSTAT version 1.6.18\r\nSTAT rusage_user 0.250000\r\nSTAT odd 5\r\nEND\r\n")))
	assert.True(t, m.add([]byte("STAT cmd_get 4\r\nSTAT pid 20\r\nSTAT version 1.6.21\r\nSTAT extra 1\r\nSTAT rusage_user 1.5\r\nSTAT odd x\r\nEND\r\n")))
	assert.True(t, m.add([]byte("END\r\n")))
	assert.Equal(t, "STAT pid 10\r\nSTAT cmd_get 7\r\nSTAT version 1.6.18\r\nSTAT rusage_user 1.750000\r\nSTAT odd 5\r\nSTAT extra 1\r\nEND\r\n",
		string(m.append(nil)))
	for _, bad := range []string{"", "STAT a 1\r\n", "STAT a 1\r\nEND\r\nSTAT b 2\r\nEND\r\n", "STAT a 1\nEND\r\n", "VALUE a 0 1\r\nEND\r\n", "STAT  1\r\nEND\r\n"} {
		var m statsMerge
		assert.False(t, m.add([]byte(bad)), "%q", bad)
	}
}

// FuzzDecimalSum checks decimalSum against math/big on arbitrary values.
func FuzzDecimalSum(f *testing.F) {
	f.Add("0.019099", "1.5", "3")
	f.Add("18446744073709551615", "0.999999999", "0.000000001")
	f.Add("1.6.18", "", "x")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		d := decimalSum{ok: true}
		want := new(big.Rat)
		valid, digits := true, 0
		for _, v := range []string{a, b, c} {
			d.add([]byte(v))
			ip, fp, dot := strings.Cut(v, ".")
			if ip == "" || strings.Trim(ip, "0123456789") != "" || strings.Trim(fp, "0123456789") != "" || dot && (fp == "" || len(fp) > maxFracDigits) {
				valid = false
				continue
			}
			digits = max(digits, len(fp))
			r, ok := new(big.Rat).SetString(v)
			if !ok {
				t.Fatalf("big.Rat rejects %q", v)
			}
			want.Add(want, r)
		}
		limit := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 64))
		if valid && want.Cmp(limit) >= 0 {
			valid = false // does not fit
		}
		if d.ok != valid {
			t.Fatalf("%q %q %q: ok %v, want %v", a, b, c, d.ok, valid)
		}
		if valid {
			if got, w := string(d.append(nil)), want.FloatString(digits); got != w {
				t.Fatalf("%q %q %q: sum %s, want %s", a, b, c, got, w)
			}
		}
	})
}

// FuzzStatsMerge merges arbitrary server replies: it must not panic, and a
// merge of replies it accepts is STAT lines ended by END, each name once.
func FuzzStatsMerge(f *testing.F) {
	f.Add([]byte("STAT pid 10\r\nSTAT cmd_get 3\r\nEND\r\n"), []byte("STAT cmd_get 4\r\nSTAT x y z\r\nEND\r\n"))
	f.Add([]byte("END\r\n"), []byte("STAT rusage_user 0.5\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var m statsMerge
		if !m.add(a) || !m.add(b) {
			return
		}
		out := m.append(nil)
		if !bytes.HasSuffix(out, []byte("END\r\n")) {
			t.Fatalf("merge %q", out)
		}
		seen := map[string]bool{}
		for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("END\r\n")), []byte("\r\n")) {
			if len(line) == 0 {
				continue
			}
			rest, ok := bytes.CutPrefix(line, []byte("STAT "))
			name, _, _ := bytes.Cut(rest, []byte(" "))
			if !ok || len(name) == 0 || seen[string(name)] {
				t.Fatalf("merge %q: line %q", out, line)
			}
			seen[string(name)] = true
		}
		if len(seen) != len(m.stats) {
			t.Fatalf("merge %q: %d names, %d stats", out, len(seen), len(m.stats))
		}
	})
}

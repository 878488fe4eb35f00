package client

import (
	"strconv"
	"testing"
)

func TestParseValueLine(t *testing.T) {
	for _, tt := range []struct {
		line  string
		ok    bool
		key   string
		flags uint32
		n     int
		cas   uint64
	}{
		{"VALUE k 0 5\r\n", true, "k", 0, 5, 0},
		{"VALUE key 4294967295 0 18446744073709551615\r\n", true, "key", 1<<32 - 1, 0, 1<<64 - 1},
		{"VALUE k 4294967296 1\r\n", false, "", 0, 0, 0},
		{"VALUE k 0 -1\r\n", false, "", 0, 0, 0},
		{"VALUE k 0 18446744073709551616\r\n", false, "", 0, 0, 0},
		{"VALUE k 0 1 x\r\n", false, "", 0, 0, 0},
		{"VALUE k\r\n", false, "", 0, 0, 0},
		{"VALUE  0 1\r\n", false, "", 0, 0, 0},
	} {
		key, flags, n, cas, err := parseValueLine([]byte(tt.line))
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v", tt.line, err)
			continue
		}
		if tt.ok && (string(key) != tt.key || flags != tt.flags || n != tt.n || cas != tt.cas) {
			t.Errorf("%q: %q %d %d %d", tt.line, key, flags, n, cas)
		}
	}
}

func FuzzParseValueLine(f *testing.F) {
	for _, s := range []string{"VALUE k 0 5\r\n", "VALUE key 1 2 3\r\n", "VALUE k 4294967296 1\r\n", "VALUE \r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if len(line) < len(valuePrefix) {
			return
		}
		key, _, n, _, err := parseValueLine(line)
		if err == nil && (len(key) == 0 || n < 0 || n > 1<<30) {
			t.Fatalf("%q accepted as key %q, %d bytes", line, key, n)
		}
	})
}

func FuzzParseMetaFlags(f *testing.F) {
	for _, s := range []string{"f7 c12 t-1 W X Z O3", "f4294967296", "c", "O99999999999999999999", "  t30  "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseMetaFlags(b) // must not panic
	})
}

// parseUint agrees with strconv.ParseUint on decimal digits, overflow
// included: a 20-digit number above 2^64 is refused, not wrapped.
func TestParseUint(t *testing.T) {
	for _, s := range []string{"0", "7", "18446744073709551615", "18446744073709551616",
		"30000000000000000000", "99999999999999999999", "100000000000000000000", "", "1x", "-1"} {
		want, err := strconv.ParseUint(s, 10, 64)
		got, ok := parseUint([]byte(s))
		if ok != (err == nil) || ok && got != want {
			t.Errorf("parseUint(%q) = %d, %v; strconv says %d, %v", s, got, ok, want, err)
		}
	}
}

func FuzzParseUint(f *testing.F) {
	for _, s := range []string{"0", "18446744073709551615", "18446744073709551616", "30000000000000000000"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 20 {
			return // refused, however many leading zeros
		}
		got, ok := parseUint(b)
		want, err := strconv.ParseUint(string(b), 10, 64)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("parseUint(%q) = %d, %v; strconv says %d, %v", b, got, ok, want, err)
		}
	})
}

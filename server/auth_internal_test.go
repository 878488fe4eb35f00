package server

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fgetsAuthModel reads an auth file the way memcached's loader does,
// step by step: fgets into a 256-byte buffer, a scan for ':' and then for
// the end of the password. It is the reference parseAuthFile is fuzzed
// against.
func fgetsAuthModel(data []byte) ([]authEntry, bool) {
	var out []authEntry
	for pos := 0; pos < len(data); {
		var buf [256]byte
		n := 0
		for n < len(buf)-1 && pos < len(data) {
			buf[n] = data[pos]
			n, pos = n+1, pos+1
			if buf[n-1] == '\n' {
				break
			}
		}
		found, start, x := false, 0, 0
		var e authEntry
		for ; x < len(buf); x++ {
			if !found {
				if buf[x] == 0 {
					break
				}
				if buf[x] == ':' {
					e.user = bytes.Clone(buf[:x])
					found, start = true, x+1
				}
			} else if buf[x] == '\n' || buf[x] == '\r' || buf[x] == 0 {
				e.pass = bytes.Clone(buf[start:x])
				break
			}
		}
		if !found {
			return nil, false
		}
		out = append(out, e)
		if len(out) == authMaxEntries || buf[x] == 0 {
			break
		}
	}
	return out, true
}

func formatEntries(es []authEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%q:%q ", e.user, e.pass)
	}
	return b.String()
}

var authFileSeeds = []string{
	"alice:secret\nbob:pw:with:colon\r\ncarol:p\n",
	"user:pass",
	"",
	":\n",
	"nocolon\n",
	"a:b\n\nc:d\n",
	"a:b\r\nc:d\r\n",
	"a:b\rjunk\nc:d",
	"a:b\x00c\nd:e\n",
	"\x00:b\n",
	"a:" + strings.Repeat("p", 300) + "\nb:c\n",
	strings.Repeat("u", 254) + ":p\n",
	strings.Repeat("u", 255) + ":p\n",
	strings.Repeat("u:p\n", 9),
	"u:" + strings.Repeat("p", 252) + "\nv:w\n",
	"u:" + strings.Repeat("p", 253) + "\nv:w\n",
}

func TestParseAuthFile(t *testing.T) {
	tests := []struct {
		in   string
		want string // formatEntries of the result, or "error"
	}{
		{"alice:secret\nbob:pw:with:colon\r\ncarol:p\n", `"alice":"secret" "bob":"pw:with:colon" "carol":"p" `},
		{"", ""},
		{"user:pass", `"user":"pass" `},
		{":\n", `"":"" `},
		{"nocolon\n", "error"},
		{"a:b\n\nc:d\n", "error"},
		{"a:b\n", `"a":"b" `},
		{"a:b\rjunk\nc:d", `"a":"b" "c":"d" `},
		{"a:b\x00c\nd:e\n", `"a":"b" `},
		{"\x00:b\n", "error"},
		{"a:" + strings.Repeat("p", 300) + "\nb:c\n", `"a":"` + strings.Repeat("p", 253) + `" `},
		{strings.Repeat("u", 255) + ":p\n", "error"},
		{strings.Repeat("u:p\n", 9), strings.Repeat(`"u":"p" `, 8)},
		{"u:" + strings.Repeat("p", 252) + "\nv:w\n", `"u":"` + strings.Repeat("p", 252) + `" "v":"w" `},
		{"u:" + strings.Repeat("p", 253) + "\nv:w\n", `"u":"` + strings.Repeat("p", 253) + `" `},
	}
	for _, tt := range tests {
		got, err := parseAuthFile([]byte(tt.in))
		s := formatEntries(got)
		if err != nil {
			if !errors.Is(err, ErrAuthFileMalformed) {
				t.Errorf("parseAuthFile(%.40q): error %v", tt.in, err)
			}
			s = "error"
		} else if got == nil {
			t.Errorf("parseAuthFile(%.40q) = nil, want a non-nil slice", tt.in)
		}
		if s != tt.want {
			t.Errorf("parseAuthFile(%.40q) = %.80s, want %.80s", tt.in, s, tt.want)
		}
	}
}

// FuzzParseAuthFile checks parseAuthFile against the fgets model of
// memcached's loader.
func FuzzParseAuthFile(f *testing.F) {
	for _, s := range authFileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseAuthFile(data)
		want, ok := fgetsAuthModel(data)
		if (err == nil) != ok {
			t.Fatalf("parseAuthFile(%q): error %v, model ok %v", data, err, ok)
		}
		if err == nil && formatEntries(got) != formatEntries(want) {
			t.Fatalf("parseAuthFile(%q) = %s, model %s", data, formatEntries(got), formatEntries(want))
		}
		if len(got) > authMaxEntries {
			t.Fatalf("parseAuthFile(%q): %d entries", data, len(got))
		}
	})
}

func TestParseStrtoul(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"12", 12, true},
		{"12\r", 12, true},
		{"+12", 12, true},
		{"\t12", 12, true},
		{"-0", 0, true},
		{"-1", 0, false},
		{"4294967295", 4294967295, true},
		{"4294967296", 0, true},
		{"4294967308", 12, true},
		{"18446744073709551615", 4294967295, true},
		{"18446744073709551616", 0, false},
		{"-18446744073709551615", 1, true},
		{"-9223372036854775808", 0, false},
		{"12x", 0, false},
		{"x", 0, false},
		{"", 0, false},
		{"+", 0, false},
		{"0x10", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseStrtoul([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseStrtoul(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

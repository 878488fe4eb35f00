package proxy

import (
	"errors"
	"strings"
	"testing"
)

func TestFrameReply(t *testing.T) {
	cases := []struct {
		name string
		kind replyKind
		in   string
		n    int // -1: garbage
	}{
		{"stored", kindStore, "STORED\r\nNEXT", 8},
		{"store error", kindStore, "SERVER_ERROR out of memory storing object\r\n", 43},
		{"deleted on a store", kindStore, "DELETED\r\n", -1},
		{"partial line", kindStore, "STOR", 0},
		{"bare newline", kindStore, "STORED\n", -1},
		{"get miss", kindGet, "END\r\n", 5},
		{"get hit", kindGet, "VALUE a 0 1\r\nx\r\nEND\r\n", 21},
		{"get hit with cas", kindGet, "VALUE a 0 1 77\r\nx\r\nVALUE b 0 0 78\r\n\r\nEND\r\n", 42},
		{"get value partial", kindGet, "VALUE a 0 10\r\nabc", 0},
		{"get value with END inside", kindGet, "VALUE a 0 5\r\nEND\r\n\r\nEND\r\n", 25},
		{"get bad data end", kindGet, "VALUE a 0 1\r\nxy\r\nEND\r\n", -1},
		{"get bad length", kindGet, "VALUE a 0 -1\r\n", -1},
		{"get huge length", kindGet, "VALUE a 0 99999999999\r\n", -1},
		{"get error", kindGet, "CLIENT_ERROR bad command line format\r\n", 38},
		{"get garbage", kindGet, "STORED\r\n", -1},
		{"incr", kindArith, "42\r\n", 4},
		{"incr not found", kindArith, "NOT_FOUND\r\n", 11},
		{"incr garbage", kindArith, "4x2\r\n", -1},
		{"touch", kindTouch, "TOUCHED\r\n", 9},
		{"flush", kindFlush, "OK\r\n", 4},
		{"meta hd", kindMeta, "HD c5 O1\r\n", 10},
		{"meta va", kindMeta, "VA 2 f0\r\nhi\r\n", 13},
		{"meta en", kindMeta, "EN\r\n", 4},
		{"meta me", kindMeta, "ME a exp=-1 la=1\r\n", 18},
		{"meta garbage", kindMeta, "HDX\r\n", -1},
		{"quiet hit", kindMetaQuiet, "VA 1\r\nx\r\nMN\r\n", 13},
		{"quiet nothing", kindMetaQuiet, "MN\r\n", 4},
		{"quiet error then MN", kindMetaQuiet, "CLIENT_ERROR bad data chunk\r\nMN\r\n", 33},
		{"quiet waits for MN", kindMetaQuiet, "NS\r\n", 0},
		{"long line", kindStore, strings.Repeat("S", maxReplyLine+1), -1},
	}
	for _, c := range cases {
		n, err := frameReply([]byte(c.in), c.kind)
		if c.n < 0 {
			if !errors.Is(err, errGarbage) {
				t.Errorf("%s: got %d, %v; want garbage", c.name, n, err)
			}
			continue
		}
		if n != c.n || err != nil {
			t.Errorf("%s: got %d, %v; want %d", c.name, n, err, c.n)
		}
	}
}

// FuzzFrameReply checks the framer on any bytes: it never panics, never
// reports more than it was given, finds the same end when given only the
// reply, and calls every shorter prefix of a reply incomplete (a
// truncated reply is never taken for a complete or a garbage one).
func FuzzFrameReply(f *testing.F) {
	for _, s := range []string{
		"STORED\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n", "VALUE a 0 1 5\r\nx\r\nVALUE b 2 3\r\nabc\r\nEND\r\n",
		"42\r\n", "VA 2 f1\r\nhi\r\n", "HD\r\n", "MN\r\n", "VA 1\r\nx\r\nNS\r\nMN\r\n", "SERVER_ERROR x\r\n",
		"VALUE a 0 99\r\n", "END\r\nEND\r\n",
	} {
		for k := range kindMetaQuiet + 1 {
			f.Add([]byte(s), uint8(k))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, k uint8) {
		kind := replyKind(k % uint8(kindMetaQuiet+1))
		n, err := frameReply(in, kind)
		if n < 0 || n > len(in) || (err != nil && n != 0) {
			t.Fatalf("frameReply = %d, %v for %d bytes", n, err, len(in))
		}
		if n == 0 {
			return
		}
		if m, err := frameReply(in[:n], kind); m != n || err != nil {
			t.Fatalf("the reply alone frames as %d, %v; want %d", m, err, n)
		}
		for _, cut := range []int{n - 1, n / 2, 1} {
			if m, err := frameReply(in[:cut], kind); m != 0 || err != nil {
				t.Fatalf("a prefix of %d bytes of a %d-byte reply frames as %d, %v", cut, n, m, err)
			}
		}
	})
}

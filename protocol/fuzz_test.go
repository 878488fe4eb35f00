package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzSeeds are real command lines, pipelines and malformed variants.
func fuzzSeeds() []string {
	seeds := []string{
		"get k\r\n",
		"gets a b c\r\n",
		"gat 100 a b\r\n",
		"gats 0 a\r\n",
		"set k 0 0 5\r\nhello\r\n",
		"set k 0 0 5 noreply\r\nhello\r\nget k\r\n",
		"cas k 1 2 3 4 noreply\r\nabc\r\n",
		"add k 0 0 1\r\nx\r\nappend k 0 0 1\r\ny\r\nprepend k 0 0 1\r\nz\r\n",
		"replace k 0 0 0\r\n\r\n",
		"incr n 1\r\ndecr n 18446744073709551615 noreply\r\n",
		"touch k 10\r\ndelete k\r\ndelete k 0 noreply\r\n",
		"flush_all\r\nflush_all 10 noreply\r\n",
		"verbosity 1\r\ncache_memlimit 64\r\n",
		"stats\r\nstats items\r\nstats slabs\r\nstats detail on\r\n",
		"version\r\nquit\r\n",
		"shutdown graceful\r\n",
		"get a\x00b\r\n",
		"set k 4294967296 -1 4294967297\r\nx\r\n",
		"set k\t0 0 1\r\n",
		" \t \r\n",
		"mn\r\nmg k v\r\n",
	}
	for _, tc := range parseCases() {
		if len(tc.in) <= 4096 {
			seeds = append(seeds, tc.in)
		}
	}
	return seeds
}

// FuzzParse checks that Parse never panics or over-reads, that its results
// hold the documented invariants, and that a buffer cut anywhere gives the
// whole buffer's result, or asks for more input, when read first.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		var whole Request
		n, err := Parse(data, &whole)
		checkParse(t, data, n, err, &whole)

		// A reused Request must give what a fresh one gives.
		var reused Request
		Parse([]byte("stats a b c\r\n"), &reused)
		Parse([]byte("get x y z w\r\n"), &reused)
		rn, rerr := Parse(data, &reused)
		if rn != n || rerr != err || !reflect.DeepEqual(resultOf(&reused), resultOf(&whole)) {
			t.Fatalf("Parse(%q) with a reused Request = %d, %v, %+v; fresh = %d, %v, %+v",
				data, rn, rerr, resultOf(&reused), n, err, resultOf(&whole))
		}

		// The same bytes arriving in two parts.
		k := int(cut) % (len(data) + 1)
		var part Request
		pn, perr := Parse(data[:k], &part)
		checkParse(t, data[:k], pn, perr, &part)
		if pn == 0 && perr == nil {
			if n > 0 && n <= k {
				t.Fatalf("Parse(%q) wants more input, but its first %d bytes are a whole line", data[:k], n)
			}
			return
		}
		if pn != n || perr != err || !reflect.DeepEqual(resultOf(&part), resultOf(&whole)) {
			t.Fatalf("Parse(%q) = %d, %v, %+v; Parse of its first %d bytes = %d, %v, %+v",
				data, n, err, resultOf(&whole), k, pn, perr, resultOf(&part))
		}
	})
}

// checkParse checks the invariants of one Parse call.
func checkParse(t *testing.T, buf []byte, n int, err error, req *Request) {
	t.Helper()
	switch {
	case n < 0 || n > len(buf):
		t.Fatalf("Parse(%q) n = %d, outside the buffer", buf, n)
	case n == 0 && err != nil && err != ErrLineTooLong:
		t.Fatalf("Parse(%q) = 0, %v; only ErrLineTooLong may consume nothing", buf, err)
	case n > 0 && err == ErrLineTooLong:
		t.Fatalf("Parse(%q) = %d, ErrLineTooLong", buf, n)
	case n > 0 && buf[n-1] != '\n':
		t.Fatalf("Parse(%q) n = %d does not end a line", buf, n)
	case n > 0 && bytes.IndexByte(buf[:n-1], '\n') >= 0:
		t.Fatalf("Parse(%q) n = %d goes past the first line", buf, n)
	case n == 0 && err == nil && bytes.IndexByte(buf, '\n') >= 0:
		t.Fatalf("Parse(%q) wants more input, but holds a newline", buf)
	case n > MaxGetLineLen+1 || n > MaxLineLen+1 && !isGetLine(buf):
		t.Fatalf("Parse(%q) accepted a %d-byte line", buf, n)
	}
	if n == 0 {
		if err == nil && len(buf) > MaxGetLineLen {
			t.Fatalf("Parse wants more input after %d bytes", len(buf))
		}
		return
	}
	if err == nil && req.Command == CmdNone {
		t.Fatalf("Parse(%q) returned no command and no error", buf)
	}
	if err == nil || req.Command.isGet() {
		keys := req.Keys
		for k, i := NextKey(req.GetKeys, 0); len(k) > 0; k, i = NextKey(req.GetKeys, i) {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if len(k) == 0 || len(k) > MaxKeyLen || bytes.IndexByte(k, ' ') >= 0 {
				t.Fatalf("Parse(%q) returned the key %q", buf, k)
			}
		}
	}
	if err == nil && req.Command.isStorage() && (req.ValueLen < 0 || req.ValueLen > maxValueLen) {
		t.Fatalf("Parse(%q) returned ValueLen %d", buf, req.ValueLen)
	}
	if line, closeConn := ErrorReply(err, req.NoReply); err != nil && line == "" && !closeConn && !req.NoReply {
		t.Fatalf("Parse(%q) = %v has no reply", buf, err)
	}
	if len(req.Args) > maxTokens-1 {
		t.Fatalf("Parse(%q) returned %d arguments", buf, len(req.Args))
	}
}

package server_test

// Differential tests of the binary protocol: each case sends the same
// requests to corvid and to a real memcached on a fresh connection, and the
// responses must be byte-for-byte the same, except CAS values, which are
// compared by identity (the Nth distinct CAS a server returns is "#N").

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// Opcodes, as the tests spell them.
const (
	opGet, opSet, opAdd, opReplace, opDelete, opIncr, opDecr, opQuit = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
	opFlush, opGetQ, opNoop, opVersion, opGetK, opGetKQ, opAppend    = 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e
	opPrepend, opStat, opSetQ, opAddQ, opReplaceQ, opDeleteQ         = 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14
	opIncrQ, opDecrQ, opQuitQ, opFlushQ, opAppendQ, opPrependQ       = 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a
	opVerbosity, opTouch, opGAT, opGATQ                              = 0x1b, 0x1c, 0x1d, 0x1e
	opSASLList, opSASLAuth, opSASLStep, opGATK, opGATKQ              = 0x20, 0x21, 0x22, 0x23, 0x24
)

// sentinelOpaque marks the noop that follows each case's requests: its
// response ends the case's responses.
const sentinelOpaque = 0x5e571e1

// breq is a request of a differential case. casRef, when not 0, sets the
// request's CAS to the server's casRef'th distinct CAS (-1: a CAS no item
// has).
type breq struct {
	testutil.BinaryRequest
	casRef int
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func ip(v int) *int       { return &v }
func u32p(v uint32) *uint32 {
	return &v
}

func bget(op byte, key string) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Opaque: 1}}
}

func bset(op byte, key string, flags, exp uint32, value string, casRef int) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Opaque: 2,
		Extras: append(u32(flags), u32(exp)...), Value: []byte(value)}, casRef: casRef}
}

func bcat(op byte, key, value string, casRef int) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Opaque: 3,
		Value: []byte(value)}, casRef: casRef}
}

func bdel(op byte, key string, casRef int) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Opaque: 4}, casRef: casRef}
}

func bincr(op byte, key string, delta, initial uint64, exp uint32, casRef int) breq {
	ext := binary.BigEndian.AppendUint64(nil, delta)
	ext = binary.BigEndian.AppendUint64(ext, initial)
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Opaque: 5,
		Extras: append(ext, u32(exp)...)}, casRef: casRef}
}

func btouch(op byte, key string, exp uint32) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Opaque: 6, Extras: u32(exp)}}
}

func bop(op byte) breq { return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Opaque: 7}} }

func bstat(key string) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: opStat, Key: []byte(key), Opaque: 8}}
}

// raw is a request given as its fields, lengths included.
func raw(r testutil.BinaryRequest) breq { return breq{BinaryRequest: r} }

// binCase is one differential case.
type binCase struct {
	name string
	reqs []breq
	// closes: the server closes the connection after its responses (no
	// sentinel is sent).
	closes bool
	// stats: compare only each response's opcode, status and key (not
	// the values), leaving out the stats corvid does not report on
	// purpose.
	stats bool
	// tail is sent after the requests and before the sentinel, as raw
	// bytes (for the value a server discards).
	tail []byte
}

// binPeer is one server of a differential binary test.
type binPeer struct {
	name    string
	addr    string
	casIDs  map[uint64]int
	casVals []uint64
}

// run sends the case on a new connection and returns the normalized
// responses, one per line, ending in "<closed>" when the server closed.
func (p *binPeer) run(t *testing.T, tc *binCase) string {
	t.Helper()
	c := testutil.Dial(t, p.addr)
	c.Timeout = replyTimeout
	defer c.Close()
	return p.exchange(t, c, tc)
}

// exchange sends the case on c and returns the normalized responses.
func (p *binPeer) exchange(t *testing.T, c *testutil.Conn, tc *binCase) string {
	t.Helper()
	var out []byte
	for _, r := range tc.reqs {
		req := r.BinaryRequest
		switch {
		case r.casRef < 0:
			req.CAS = 1 << 60
		case r.casRef > 0 && r.casRef <= len(p.casVals):
			req.CAS = p.casVals[r.casRef-1]
		}
		out = append(out, req.Bytes()...)
	}
	out = append(out, tc.tail...)
	if !tc.closes {
		out = append(out, (&testutil.BinaryRequest{Opcode: opNoop, Opaque: sentinelOpaque}).Bytes()...)
	}
	c.Send(out)
	var b strings.Builder
	for {
		r, err := c.ReadBinary()
		if errors.Is(err, io.EOF) && tc.closes {
			b.WriteString("<closed>\n")
			return b.String()
		}
		if err != nil {
			t.Fatalf("%s: %v after:\n%s", p.name, err, b.String())
		}
		if r.Opaque() == sentinelOpaque && r.Opcode() == opNoop {
			return b.String()
		}
		if tc.stats && notReported.Match(r.Key()) {
			continue
		}
		b.WriteString(p.normalize(r, tc.stats))
		b.WriteByte('\n')
	}
}

// normalize formats a response with its CAS as "#N".
func (p *binPeer) normalize(r *testutil.BinaryResponse, statsOnly bool) string {
	cas := "0"
	if v := r.CAS(); v != 0 {
		id, ok := p.casIDs[v]
		if !ok {
			p.casVals = append(p.casVals, v)
			id = len(p.casVals)
			p.casIDs[v] = id
		}
		cas = fmt.Sprintf("#%d", id)
	}
	if statsOnly {
		return fmt.Sprintf("op=%02x status=%04x key=%q", r.Opcode(), r.Status(), r.Key())
	}
	return fmt.Sprintf("op=%02x keylen=%d extlen=%d dt=%02x status=%04x bodylen=%d opaque=%x cas=%s body=%q",
		r.Opcode(), r.KeyLen(), r.ExtLen(), r.Header[5], r.Status(), len(r.Body), r.Opaque(), cas, r.Body)
}

// onlyLines returns the lines of s that are lines of set, in order.
func onlyLines(s, set string) string {
	in := map[string]bool{}
	for _, l := range strings.SplitAfter(set, "\n") {
		in[l] = true
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if in[l] {
			b.WriteString(l)
		}
	}
	return b.String()
}

// runBinaryCases runs the cases against both servers in order.
func runBinaryCases(t *testing.T, corvid, memcached string, cases []binCase) {
	peers := []*binPeer{
		{name: "corvid", addr: corvid, casIDs: map[uint64]int{}},
		{name: "memcached", addr: memcached, casIDs: map[uint64]int{}},
	}
	for i := range cases {
		tc := &cases[i]
		t.Run(tc.name, func(t *testing.T) {
			got := peers[0].run(t, tc)
			want := peers[1].run(t, tc)
			if tc.stats {
				// memcached leaves out the stats of its background
				// threads when they are off, as in these tests: compare
				// the stats it reports, in its order.
				got = onlyLines(got, want)
			}
			if got != want {
				t.Errorf("corvid:\n%s\nmemcached:\n%s", got, want)
			}
			if tc.stats && !strings.Contains(got, `key=""`) {
				t.Errorf("no terminating stat response:\n%s", got)
			}
		})
	}
}

func TestBinaryDiff(t *testing.T) {
	memcached := startMemcached(t)
	corvid := startCorvid(t)
	big := strings.Repeat("x", 2<<20)
	large := strings.Repeat("y", 500<<10)
	noCreate := uint32(0xffffffff)
	runBinaryCases(t, corvid, memcached, []binCase{
		{name: "flush", reqs: []breq{bop(opFlush)}},
		{name: "set and get", reqs: []breq{
			bset(opSet, "a", 0xdeadbeef, 0, "alpha", 0),
			bget(opGet, "a"), bget(opGetK, "a"), bget(opGetQ, "a"), bget(opGetKQ, "a"),
		}},
		{name: "get misses", reqs: []breq{
			bget(opGet, "nope"), bget(opGetK, "nope"), bget(opGetQ, "nope"), bget(opGetKQ, "nope"),
		}},
		{name: "quiet pipeline", reqs: []breq{
			bset(opSetQ, "q1", 1, 0, "one", 0), bset(opSetQ, "q2", 2, 0, "two", 0),
			bget(opGetKQ, "q1"), bget(opGetKQ, "q3"), bget(opGetKQ, "q2"), bget(opGetQ, "q2"),
		}},
		{name: "add", reqs: []breq{
			bset(opAdd, "b", 0, 0, "1", 0), bset(opAdd, "b", 0, 0, "2", 0),
			bset(opAddQ, "b", 0, 0, "3", 0), bset(opAddQ, "b2", 0, 0, "4", 0), bget(opGet, "b"), bget(opGet, "b2"),
		}},
		{name: "replace", reqs: []breq{
			bset(opReplace, "c", 0, 0, "1", 0), bset(opReplaceQ, "c", 0, 0, "1", 0),
			bset(opSet, "c", 0, 0, "1", 0), bset(opReplace, "c", 7, 0, "2", 0),
			bset(opReplaceQ, "c", 8, 0, "3", 0), bget(opGet, "c"),
		}},
		{name: "cas", reqs: []breq{
			bset(opSet, "d", 0, 0, "1", 0),
			bset(opSet, "d", 0, 0, "2", -1),
			bget(opGet, "d"),
		}},
		{name: "cas by identity", reqs: []breq{
			bget(opGet, "d"), // the value set by the previous case: its CAS
		}},
		{name: "cas match", reqs: []breq{
			bset(opSet, "d", 0, 0, "3", 1), bset(opSet, "d", 0, 0, "4", 1),
			bset(opAdd, "d", 0, 0, "5", -1), bset(opReplace, "d", 0, 0, "6", -1),
			bset(opSet, "nocas", 0, 0, "7", -1), bget(opGet, "d"),
		}},
		{name: "delete", reqs: []breq{
			bset(opSet, "e", 0, 0, "1", 0), bdel(opDelete, "e", -1), bdel(opDelete, "e", 0),
			bdel(opDelete, "e", 0), bdel(opDeleteQ, "e", 0), bset(opSet, "e", 0, 0, "1", 0),
			bdel(opDeleteQ, "e", 0), bget(opGet, "e"),
		}},
		{name: "incr and decr", reqs: []breq{
			bincr(opIncr, "n", 1, 10, noCreate, 0), bincr(opIncr, "n", 1, 10, 0, 0),
			bincr(opIncr, "n", 5, 10, 0, 0), bincr(opDecr, "n", 3, 10, 0, 0),
			bincr(opDecr, "n", 100, 10, 0, 0), bincr(opDecrQ, "n", 1, 10, 0, 0),
			bincr(opIncrQ, "n", 7, 10, 0, 0), bget(opGet, "n"),
			bincr(opDecrQ, "n2", 1, 3, noCreate, 0), bincr(opIncrQ, "n3", 1, 3, 0, 0), bget(opGet, "n3"),
			bincr(opDecr, "n4", 1, 0xffffffffffffffff, 0, 0), bincr(opIncr, "n4", 1, 0, 0, 0),
		}},
		{name: "decr shrinks in place", reqs: []breq{
			bset(opSet, "p", 3, 0, "100", 0), bincr(opDecr, "p", 1, 0, 0, 0), bget(opGet, "p"),
			bincr(opIncr, "p", 1, 0, 0, 0), bget(opGet, "p"),
		}},
		{name: "incr non-numeric and cas", reqs: []breq{
			bset(opSet, "f", 0, 0, "abc", 0), bincr(opIncr, "f", 1, 0, 0, 0),
			bincr(opIncrQ, "f", 1, 0, 0, 0),
			bset(opSet, "g", 0, 0, "5", 0), bincr(opIncr, "g", 1, 0, 0, -1),
		}},
		{name: "append and prepend", reqs: []breq{
			bcat(opAppend, "h", "x", 0), bcat(opPrependQ, "h", "x", 0),
			bset(opSet, "h", 9, 0, "mid", 0), bcat(opAppend, "h", ">", 0), bcat(opPrepend, "h", "<", 0),
			bcat(opAppendQ, "h", ")", 0), bcat(opPrependQ, "h", "(", 0), bcat(opAppend, "h", "!", -1),
			bget(opGetK, "h"),
		}},
		{name: "touch and gat", reqs: []breq{
			btouch(opTouch, "t", 10), btouch(opGAT, "t", 10), btouch(opGATQ, "t", 10),
			btouch(opGATK, "t", 10), btouch(opGATKQ, "t", 10),
			bset(opSet, "t", 4, 0, "tv", 0),
			btouch(opTouch, "t", 100), btouch(opGAT, "t", 100), btouch(opGATQ, "t", 100),
			btouch(opGATK, "t", 100), btouch(opGATKQ, "t", 100),
		}},
		{name: "large value", reqs: []breq{
			bset(opSet, "l", 0, 0, large, 0), bget(opGet, "l"),
		}},
		{name: "value too large for set", reqs: []breq{
			bset(opSet, "big", 0, 0, "old", 0), bset(opSet, "big", 0, 0, big, 0), bget(opGet, "big"),
			bset(opSet, "big", 0, 0, "old", 0), bset(opAdd, "big", 0, 0, big, 0), bset(opSetQ, "big2", 0, 0, big, 0),
			bcat(opAppend, "big", big, 0), bget(opGet, "big"),
		}},
		{name: "expired at once", reqs: []breq{
			bset(opSet, "x", 0, 0xfffffffe, "1", 0), bget(opGet, "x"),
		}},
		{name: "flush", reqs: []breq{
			bset(opSet, "fl", 0, 0, "1", 0), bop(opFlush), bget(opGet, "fl"),
			bset(opSet, "fl", 0, 0, "1", 0), bop(opFlushQ), bget(opGet, "fl"),
			bset(opSet, "fl", 0, 0, "1", 0),
			raw(testutil.BinaryRequest{Opcode: opFlush, Extras: u32(1000)}), bget(opGet, "fl"),
			raw(testutil.BinaryRequest{Opcode: opFlush, Extras: u32(0)}), bget(opGet, "fl"),
		}},
		{name: "noop version", reqs: []breq{bop(opNoop), bop(opVersion), bop(opNoop)}},
		{name: "data type ignored", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opGet, DataType: 1, Key: []byte("a"), Opaque: 9}),
		}},
		{name: "unknown opcodes", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: 0x50, Key: []byte("kk"), Value: []byte("vvvvvv")}),
		}, tail: []byte("12")},
		{name: "verbosity is unknown", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opVerbosity, Extras: u32(1)}),
		}, tail: []byte("1234")},
		{name: "sasl disabled", reqs: []breq{
			bop(opSASLList),
			raw(testutil.BinaryRequest{Opcode: opSASLAuth, Key: []byte("PLAIN"), Value: []byte("\x00u\x00p")}),
		}},
		{name: "stat body read as next request", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opStat, Key: []byte("reset"), Value: (&testutil.BinaryRequest{Opcode: opNoop, Opaque: 77}).Bytes()}),
		}},
		{name: "stat reset", reqs: []breq{bstat("reset")}},
		{name: "stat unknown group", reqs: []breq{bstat("bogus"), bstat("conns"), bstat("detail"), bstat("detail x")}},
		{name: "stat detail", reqs: []breq{
			bstat("detail on"), bset(opSet, "pre:1", 0, 0, "v", 0), bget(opGet, "pre:1"),
			bget(opGet, "pre:2"), bdel(opDelete, "pre:1", 0), bstat("detail dump"), bstat("detail off"),
		}},
		{name: "stat", reqs: []breq{bstat("")}, stats: true},
		{name: "stat settings", reqs: []breq{bstat("settings")}, stats: true},
		{name: "stat sizes", reqs: []breq{bstat("sizes")}},
		{name: "quit", reqs: []breq{bop(opNoop), bop(opQuit), bop(opNoop)}, closes: true},
		{name: "quitq", reqs: []breq{bop(opQuitQ), bop(opNoop)}, closes: true},
		{name: "get with extras", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opGet, Extras: u32(0), Key: []byte("a")}),
		}, closes: true},
		{name: "get without key", reqs: []breq{bget(opGet, "")}, closes: true},
		{name: "get with value", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opGetQ, Key: []byte("a"), Value: []byte("v")}),
		}, closes: true},
		{name: "set without extras", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opSetQ, Key: []byte("a"), Value: []byte("v")}),
		}, closes: true},
		{name: "append with extras", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opAppend, Extras: u32(0), Key: []byte("a"), Value: []byte("v")}),
		}, closes: true},
		{name: "incr short extras", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opIncr, Extras: make([]byte, 16), Key: []byte("a")}),
		}, closes: true},
		{name: "touch without extras", reqs: []breq{bget(opTouch, "a")}, closes: true},
		{name: "flush short delay", reqs: []breq{raw(testutil.BinaryRequest{Opcode: opFlush, Extras: []byte{0, 1}})}, closes: true},
		{name: "noop with body", reqs: []breq{raw(testutil.BinaryRequest{Opcode: opNoop, Value: []byte("x")})}, closes: true},
		{name: "version with key", reqs: []breq{raw(testutil.BinaryRequest{Opcode: opVersion, Key: []byte("x")})}, closes: true},
		{name: "key of 251 bytes", reqs: []breq{bget(opGet, strings.Repeat("k", 251))}, closes: true},
		{name: "key of 250 bytes", reqs: []breq{bget(opGetK, strings.Repeat("k", 250))}},
		{name: "key longer than body", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opGet, Key: []byte("abcde"), BodyLen: u32p(2)}),
		}, closes: true},
		{name: "key and extras longer than body", reqs: []breq{
			raw(testutil.BinaryRequest{Opcode: opSet, Extras: make([]byte, 8), Key: []byte("abcde"), BodyLen: u32p(10)}),
		}, closes: true},
		{name: "bad magic", reqs: []breq{bop(opNoop), raw(testutil.BinaryRequest{Magic: 0x81, Opcode: opNoop})}, closes: true},
	})
}

// TestBinaryHugeClaimsConn sends, over TCP, the request headers of
// CVE-2016-8704/8705/8706 (append, set and SASL auth claiming a body of
// 2^32-1 bytes) with nothing after them: corvid must answer and close the
// connection at once, without allocating what the header claims.
func TestBinaryHugeClaimsConn(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{SASL: true})
	for _, r := range []testutil.BinaryRequest{
		{Opcode: opAppend, Key: []byte("k"), BodyLen: u32p(0xffffffff)},
		{Opcode: opPrependQ, Key: []byte("k"), BodyLen: u32p(0xfffffffe)},
		{Opcode: opSet, Extras: make([]byte, 8), Key: []byte("k"), BodyLen: u32p(0xffffffff)},
		{Opcode: opSASLAuth, Key: []byte("PLAIN"), BodyLen: u32p(0xffffffff)},
		{Opcode: opSASLAuth, KeyLen: ip(0xffff), BodyLen: u32p(0x10)},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := testutil.Dial(t, addr)
		if r.Opcode != opSASLAuth {
			// Authenticate first so that the lengths are what is judged.
			auth := testutil.BinaryRequest{Opcode: opSASLAuth, Key: []byte("PLAIN"), Value: []byte("\x00u\x00p")}
			c.Send(auth.Bytes())
			if resp, err := c.ReadBinary(); err != nil || resp.Status() != 0x20 {
				t.Fatalf("auth with no password database: %v %v", resp, err)
			}
		}
		c.Send(r.Bytes())
		resp, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("opcode 0x%02x: no response: %v", r.Opcode, err)
		}
		if _, err := c.ReadBinary(); !errors.Is(err, io.EOF) {
			t.Errorf("opcode 0x%02x: status 0x%02x, connection not closed (%v)", r.Opcode, resp.Status(), err)
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("opcode 0x%02x: allocated %d bytes", r.Opcode, grew)
		}
	}
}

// saslSetup writes a password database for corvid and, when saslpasswd2
// is installed, a Cyrus SASL configuration and sasldb for memcached
// (Debian's memcached checks passwords through Cyrus SASL). It returns
// the database's path and memcached's environment (nil when it cannot be
// configured).
func saslSetup(t *testing.T, users map[string]string) (pwdb string, env []string) {
	t.Helper()
	dir := t.TempDir()
	var lines []byte
	for u, p := range users {
		lines = fmt.Appendf(lines, "%s:%s\n", u, p)
	}
	pwdb = filepath.Join(dir, "pwdb")
	if err := os.WriteFile(pwdb, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("saslpasswd2")
	if err != nil {
		return pwdb, nil
	}
	// memcached drops privileges to nobody, which must read these.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sasldb := filepath.Join(dir, "sasldb2")
	conf := fmt.Sprintf("mech_list: plain\nsasldb_path: %s\n", sasldb)
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for u, p := range users {
		cmd := exec.Command(bin, "-p", "-a", "memcached", "-c", "-f", sasldb, u)
		cmd.Stdin = strings.NewReader(p)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("saslpasswd2: %v: %s", err, out)
			return pwdb, nil
		}
	}
	if err := os.Chmod(sasldb, 0o644); err != nil {
		t.Fatal(err)
	}
	return pwdb, []string{"SASL_CONF_PATH=" + dir}
}

func plain(authz, user, pass string) []byte { return []byte(authz + "\x00" + user + "\x00" + pass) }

func sasl(op byte, mech string, data []byte) breq {
	return breq{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(mech), Value: data, Opaque: 11}}
}

// TestBinarySASL checks SASL PLAIN (-S) against memcached when Cyrus SASL
// can be configured for it, and always against corvid alone.
func TestBinarySASL(t *testing.T) {
	pwdb, env := saslSetup(t, map[string]string{"alice": "secret", "bob": "pw"})
	corvid := testutil.StartCorvid(t, server.Config{SASL: true, SASLPasswordDB: pwdb,
		Storage: storage.Config{MemoryLimit: diffMemoryMB << 20}})
	cases := []binCase{
		{name: "unauthenticated", reqs: []breq{bop(opNoop)}, closes: true},
		{name: "unauthenticated get", reqs: []breq{bop(opVersion), bget(opGetQ, "a"), bop(opNoop)}, closes: true},
		{name: "list mechanisms", reqs: []breq{bop(opSASLList)}},
		{name: "failures", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "wrong")),
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secre")),
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secret\x00")),
			sasl(opSASLAuth, "PLAIN", []byte("alice\x00secret")),
			sasl(opSASLAuth, "PLAIN", plain("bob", "alice", "secret")),
			sasl(opSASLAuth, "PLAIN", plain("", "carol", "secret")),
			sasl(opSASLAuth, "CRAM-MD5", []byte("x")),
			sasl(opSASLStep, "PLAIN", plain("", "alice", "secret")),
		}},
		{name: "auth", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secret")),
			bset(opSet, "s", 0, 0, "v", 0), bget(opGet, "s"),
		}},
		{name: "auth with authorization identity", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("bob", "bob", "pw")), bget(opGet, "s"),
		}},
		{name: "mechanism name case", reqs: []breq{
			sasl(opSASLAuth, "plain", plain("", "bob", "pw")), bget(opGet, "s"),
		}},
		{name: "auth then step", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", nil),
			sasl(opSASLStep, "PLAIN", plain("", "bob", "pw")),
			bget(opGet, "s"),
		}},
		{name: "failed auth stays unauthenticated", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "bob", "no")), bget(opGet, "s"),
		}, closes: true},
		// As memcached, every SASL request starts unauthenticated: a
		// failed authentication does not leave the previous one in force.
		{name: "failed reauth unauthenticates", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secret")), bget(opGet, "s"),
			sasl(opSASLAuth, "PLAIN", plain("", "bob", "no")), bget(opGet, "s"),
		}, closes: true},
		{name: "step after auth unauthenticates", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secret")),
			sasl(opSASLStep, "PLAIN", plain("", "alice", "secret")), bget(opGet, "s"),
		}, closes: true},
		{name: "list mechanisms after auth unauthenticates", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secret")), bop(opSASLList), bget(opGet, "s"),
		}, closes: true},
		{name: "auth continue unauthenticates", reqs: []breq{
			sasl(opSASLAuth, "PLAIN", plain("", "alice", "secret")), sasl(opSASLAuth, "PLAIN", nil), bget(opGet, "s"),
		}, closes: true},
	}
	if env != nil && testutil.MemcachedPath() != "" {
		memcached := testutil.StartMemcachedEnv(t, env, "-S", "-m", "64")
		runBinaryCases(t, corvid, memcached, cases)
	} else {
		t.Log("memcached or saslpasswd2 missing: testing corvid alone")
	}

	// corvid alone: the expected responses.
	c := testutil.Dial(t, corvid)
	expect := func(r breq, status uint16, body string) {
		t.Helper()
		c.Send(r.Bytes())
		resp, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("opcode 0x%02x: %v", r.Opcode, err)
		}
		if resp.Status() != status || string(resp.Value()) != body {
			t.Errorf("opcode 0x%02x: status 0x%02x %q, want 0x%02x %q", r.Opcode, resp.Status(), resp.Value(), status, body)
		}
	}
	expect(bop(opVersion), 0, server.Version)
	expect(bop(opSASLList), 0, "PLAIN")
	expect(sasl(opSASLAuth, "PLAIN", plain("", "alice", "wrong")), 0x20, "Auth failure.")
	expect(sasl(opSASLAuth, "PLAIN", nil), 0x21, "")
	expect(sasl(opSASLStep, "PLAIN", plain("", "alice", "secret")), 0, "Authenticated")
	expect(bset(opSet, "k", 0, 0, "v", 0), 0, "")
	expect(bstat("reset"), 0, "")
	expect(sasl(opSASLAuth, "PLAIN", plain("", "bob", "pw")), 0, "Authenticated")
	expect(sasl(opSASLAuth, "PLAIN", plain("", "bob", "px")), 0x20, "Auth failure.")
	expect(sasl(opSASLAuth, "PLAIN", plain("", "bob", "pw")), 0, "Authenticated")
	c.Send(bstat("").Bytes())
	got := map[string]string{}
	for {
		resp, err := c.ReadBinary()
		if err != nil {
			t.Fatal(err)
		}
		if resp.KeyLen() == 0 {
			break
		}
		got[string(resp.Key())] = string(resp.Value())
	}
	if got["auth_cmds"] != "3" || got["auth_errors"] != "1" {
		t.Errorf("auth_cmds %q auth_errors %q, want 3 and 1", got["auth_cmds"], got["auth_errors"])
	}

	u := testutil.Dial(t, corvid)
	u.Send(bget(opGet, "k").Bytes())
	if resp, err := u.ReadBinary(); err != nil || resp.Status() != 0x20 {
		t.Fatalf("unauthenticated get: %v, %v", resp, err)
	}
	if _, err := u.ReadBinary(); !errors.Is(err, io.EOF) {
		t.Errorf("unauthenticated get left the connection open: %v", err)
	}
}

// binaryCounters are the stats a binary workload must move as it moves
// memcached's.
var binaryCounters = []string{"cmd_get", "get_hits", "get_misses", "cmd_set", "cmd_touch",
	"touch_hits", "touch_misses", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
	"decr_hits", "decr_misses", "cas_hits", "cas_badval", "cas_misses", "cmd_flush",
	"curr_items", "total_items", "store_too_large", "auth_cmds", "auth_errors"}

// TestBinaryStatsCounters runs one binary workload against a fresh corvid
// and a fresh memcached and compares the counters it moves.
func TestBinaryStatsCounters(t *testing.T) {
	big := strings.Repeat("z", 2<<20)
	work := binCase{name: "workload", reqs: []breq{
		bset(opSet, "a", 0, 0, "1", 0), bset(opSetQ, "b", 0, 0, "2", 0), bset(opAdd, "a", 0, 0, "3", 0),
		bset(opReplace, "zz", 0, 0, "4", 0), bset(opSet, "big", 0, 0, big, 0),
		bget(opGet, "a"), bget(opGetK, "b"), bget(opGetQ, "c"), bget(opGetKQ, "a"), bget(opGet, "c"),
		btouch(opTouch, "a", 100), btouch(opTouch, "c", 100), btouch(opGAT, "b", 100), btouch(opGATKQ, "c", 100),
		// memcached writes a counter in place only when no unwritten
		// response holds it: count on keys not read in this batch.
		bset(opSet, "i", 0, 0, "10", 0), bset(opSet, "j", 0, 0, "10", 0),
		bincr(opIncr, "i", 1, 0, 0, 0), bincr(opDecr, "j", 1, 0, 0, 0), bincr(opIncr, "n", 1, 0, 0xffffffff, 0),
		// (Not an incr that creates its counter: corvid's storage counts
		// it as an incr miss and a set, which memcached does not.)
		bincr(opDecrQ, "m", 1, 0, 0xffffffff, 0),
		bset(opSet, "a", 0, 0, "5", -1), bset(opSet, "nope", 0, 0, "6", -1),
		bcat(opAppend, "a", "7", 0), bcat(opPrependQ, "nope", "8", 0),
		bdel(opDelete, "b", 0), bdel(opDeleteQ, "b", 0),
		sasl(opSASLAuth, "PLAIN", plain("", "u", "p")),
		bop(opFlushQ),
	}}
	corvid := startCorvid(t)
	memcached := startMemcached(t)
	counters := func(name, addr string) map[string]string {
		p := &binPeer{name: name, addr: addr, casIDs: map[uint64]int{}}
		// The stats are read on the workload's connection, after its
		// responses: corvid adds a connection's counts to the server's
		// once it has written a batch's responses.
		c := testutil.Dial(t, addr)
		c.Timeout = replyTimeout
		p.exchange(t, c, &work)
		c.Send(bstat("").Bytes())
		m := map[string]string{}
		for {
			r, err := c.ReadBinary()
			if err != nil {
				t.Fatalf("%s: stat: %v", name, err)
			}
			if r.KeyLen() == 0 {
				return m
			}
			m[string(r.Key())] = string(r.Value())
		}
	}
	got, want := counters("corvid", corvid), counters("memcached", memcached)
	for _, name := range binaryCounters {
		if got[name] != want[name] {
			t.Errorf("%s = %q, memcached %q", name, got[name], want[name])
		}
	}
}

// TestBinarySplitInput sends a pipeline one byte per write: the responses
// must be those of the pipeline sent whole.
func TestBinarySplitInput(t *testing.T) {
	addr := startCorvid(t)
	var in []byte
	for _, r := range []breq{
		bset(opSetQ, "split", 3, 0, strings.Repeat("s", 300), 0), bget(opGetK, "split"),
		bincr(opIncr, "splitn", 1, 7, 0, 0),
		// memcached discards BodyLen bytes after the key, so the key
		// counts twice: the "v" past the claimed body is discarded.
		raw(testutil.BinaryRequest{Opcode: 0x50, Key: []byte("k"), Value: []byte("v"), BodyLen: u32p(1)}),
		bop(opNoop), bop(opVersion),
	} {
		in = append(in, r.Bytes()...)
	}
	whole := testutil.Dial(t, addr)
	whole.Send(in)
	split := testutil.Dial(t, addr)
	for i := range in {
		split.Send(in[i : i+1])
	}
	for n := 0; n < 5; n++ {
		w, err := whole.ReadBinary()
		if err != nil {
			t.Fatalf("response %d, whole: %v", n, err)
		}
		s, err := split.ReadBinary()
		if err != nil {
			t.Fatalf("response %d, split: %v", n, err)
		}
		// The second run finds the counter: compare all but the body and
		// CAS of the incr.
		if w.Opcode() == opIncr {
			continue
		}
		if w.Header[1] != s.Header[1] || w.Status() != s.Status() || !bytes.Equal(w.Body, s.Body) {
			t.Errorf("response %d: whole %v, split %v", n, w, s)
		}
	}
}

// TestBinaryTooLargeWithFlags: an item's flags, when not 0, take 4 bytes of
// it, so a value that fits with flags 0 may be too large with others; the
// binary protocol refuses it as too large, as memcached does (not as not
// stored, or for add as existing).
func TestBinaryTooLargeWithFlags(t *testing.T) {
	memcached := startMemcached(t)
	corvid := startCorvid(t)
	// memcached's largest value for a 2-byte key with flags 0; 4 bytes less
	// with flags.
	largest := *diffItemMax - 48 - 2 - 1 - 8 - 2
	var cases []binCase
	for _, op := range []byte{opSet, opAdd, opReplace, opSetQ, opAddQ} {
		for _, n := range []int{largest - 4, largest - 3, largest} {
			cases = append(cases, binCase{name: fmt.Sprintf("op %02x, %d bytes", op, n),
				reqs: []breq{bset(op, "kf", 42, 0, strings.Repeat("v", n), 0), bget(opGet, "kf")}})
		}
	}
	runBinaryCases(t, corvid, memcached, cases)
}

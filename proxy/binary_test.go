package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/protocol"
)

// Opcodes, as the tests spell them.
const (
	bGet, bSet, bAdd, bReplace, bDelete, bIncr, bDecr, bQuit = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
	bFlush, bGetQ, bNoop, bVersion, bGetK, bGetKQ, bAppend   = 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e
	bPrepend, bStat, bSetQ, bAddQ, bReplaceQ, bDeleteQ       = 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14
	bIncrQ, bDecrQ, bQuitQ, bFlushQ, bAppendQ, bPrependQ     = 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a
	bVerbosity, bTouch, bGAT, bGATQ                          = 0x1b, 0x1c, 0x1d, 0x1e
	bSASLList, bSASLAuth, bSASLStep, bGATK, bGATKQ           = 0x20, 0x21, 0x22, 0x23, 0x24
)

// endOpaque marks the noop that ends a step's responses.
const endOpaque = 0xe0d0e0d

// bin is a binary request of a test script. casOf, when set, sends the CAS
// of the last response to a request for that key; badCAS sends a CAS no
// item has.
type bin struct {
	testutil.BinaryRequest
	casOf  string
	badCAS bool
	tail   []byte // sent after the request (bytes the server discards)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func bk(op byte, key string) bin {
	return bin{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key)}}
}

func bstore(op byte, key string, flags uint32, value string) bin {
	return bin{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key),
		Extras: append(be32(flags), be32(0)...), Value: []byte(value)}}
}

func bcat(op byte, key, value string) bin {
	return bin{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Value: []byte(value)}}
}

func barith(op byte, key string, delta, initial uint64, exp uint32) bin {
	ext := binary.BigEndian.AppendUint64(nil, delta)
	ext = binary.BigEndian.AppendUint64(ext, initial)
	return bin{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Extras: append(ext, be32(exp)...)}}
}

func bexp(op byte, key string, exp uint32) bin {
	return bin{BinaryRequest: testutil.BinaryRequest{Opcode: op, Key: []byte(key), Extras: be32(exp)}}
}

func bop(op byte) bin { return bin{BinaryRequest: testutil.BinaryRequest{Opcode: op}} }

func withCAS(b bin, key string) bin { b.casOf = key; return b }
func badCAS(b bin) bin              { b.badCAS = true; return b }

// binaryScript has every opcode the server supports, in steps: each
// step's requests are sent in one write (so that they are pipelined across
// the proxy's servers), then a noop whose reply ends the step.
var binaryScript = [][]bin{
	{
		bstore(bSet, "a", 5, "abc"), bstore(bAdd, "a", 0, "x"), bstore(bAdd, "b", 1, "x"),
		bstore(bReplace, "c", 0, "x"), bstore(bReplace, "b", 2, "yy"), bcat(bAppend, "a", "de"),
		bcat(bPrepend, "a", "zz"), bcat(bAppend, "nokey", "de"),
		bk(bGet, "a"), bk(bGetK, "b"), bk(bGet, "c"), bk(bGetK, "c"),
	},
	{
		bstore(bSetQ, "n", 0, "10"), barith(bIncr, "n", 5, 0, 0), barith(bDecr, "n", 100, 0, 0),
		barith(bIncr, "a", 1, 0, 0), barith(bIncr, "missing", 1, 0, 0xffffffff),
		barith(bIncr, "fresh", 1, 7, 0), barith(bIncrQ, "n", 3, 0, 0), barith(bDecrQ, "n", 1, 0, 0),
		barith(bIncrQ, "a", 1, 0, 0), barith(bDecrQ, "nothing", 1, 0, 0xffffffff),
		bk(bGet, "n"), bk(bGet, "fresh"),
	},
	{
		bexp(bTouch, "a", 100), bexp(bTouch, "missing", 100), bexp(bGAT, "a", 100),
		bexp(bGATK, "b", 100), bexp(bGATQ, "missing", 0), bexp(bGATKQ, "missing", 0),
		bexp(bGATQ, "a", 0), bexp(bGATKQ, "b", 0), bexp(bGATK, "missing", 0),
	},
	{
		bk(bDelete, "b"), bk(bDelete, "b"), bk(bDeleteQ, "n"), bk(bDeleteQ, "n"), bk(bGet, "n"),
		bk(bGetQ, "a"), bk(bGetQ, "missing"), bk(bGetKQ, "a"), bk(bGetKQ, "missing"), bk(bGetKQ, "b"),
	},
	{bstore(bSet, "k", 0, "v"), bstore(bSet, "k2", 0, "w"), bk(bGetK, "k")},
	{
		withCAS(bstore(bSet, "k", 3, "v2"), "k"), badCAS(bstore(bSet, "k", 0, "v3")),
		badCAS(bcat(bAppend, "k", "z")), badCAS(bk(bDelete, "k")), bk(bGetK, "k"),
		badCAS(bstore(bSetQ, "k2", 0, "q")), badCAS(bk(bDeleteQ, "k2")),
	},
	{withCAS(bcat(bAppend, "k", "!"), "k"), bk(bGet, "k"), withCAS(bk(bDelete, "k2"), "k2"), bk(bGet, "k2")},
	{
		bstore(bAddQ, "a", 0, "x"), bstore(bReplaceQ, "missing", 0, "x"), bstore(bSetQ, "s", 9, "v"),
		bcat(bAppendQ, "s", "1"), bcat(bPrependQ, "s", "0"), bcat(bAppendQ, "missing", "1"),
		bstore(bAddQ, "s2", 0, "y"), bstore(bReplaceQ, "s2", 0, "z"), bk(bGetK, "s"), bk(bGet, "s2"),
	},
	{bop(bNoop), bop(bVersion), bop(bNoop)},
	{
		// Opcodes memcached 1.6.18 does not serve (without -S for SASL),
		// with a body the server discards.
		// An unknown opcode's extras and key are discarded, then as many
		// bytes as its body claims.
		{BinaryRequest: testutil.BinaryRequest{Opcode: bVerbosity, Extras: be32(1)}, tail: []byte("1234")},
		bop(bSASLList), bcat(bSASLAuth, "PLAIN", "\x00u\x00p"), bcat(bSASLStep, "PLAIN", "x"),
		{BinaryRequest: testutil.BinaryRequest{Opcode: 0x40, Key: []byte("kk"), Value: []byte("abc")}, tail: []byte("12")},
		bk(bGet, "a"),
	},
	{bstore(bSet, "big", 0, strings.Repeat("x", 2<<20)), bk(bGet, "big"), bstore(bSet, "mid", 0, strings.Repeat("m", 500<<10)), bk(bGet, "mid")},
	{
		// Bytes a command's body claims past its extras and key are read
		// as the next request.
		{BinaryRequest: testutil.BinaryRequest{Opcode: bTouch, Key: []byte("a"), Extras: be32(0),
			Value: (&testutil.BinaryRequest{Opcode: bGetK, Key: []byte("s"), Opaque: 77}).Bytes()}},
	},
	// The delayed flush is judged on an item stored after the others:
	// while one is pending, memcached takes back its earlier flushes of
	// items not yet reclaimed, which its LRU maintainer and crawler reclaim
	// in the background when they come to them.
	{bop(bFlush), bk(bGet, "a"), bstore(bSet, "a", 0, "1"), bop(bFlushQ), bk(bGet, "a"), bstore(bSet, "d", 0, "v"),
		{BinaryRequest: testutil.BinaryRequest{Opcode: bFlush, Extras: be32(1000)}}, bk(bGet, "d")},
}

// binaryPeer runs scripts on one server (or proxy) and normalizes the
// responses: CAS values become "cas" (servers behind a proxy number them
// independently), and a request's CAS from casOf is the last one the
// server returned for that key.
type binaryPeer struct {
	addr string
	cas  map[string]uint64
}

func (p *binaryPeer) step(t *testing.T, c *testutil.Conn, reqs []bin, opaque *uint32) []string {
	t.Helper()
	var out []byte
	keyOf := map[uint32]string{}
	for _, r := range reqs {
		req := r.BinaryRequest
		*opaque++
		req.Opaque = *opaque
		keyOf[req.Opaque] = string(req.Key)
		switch {
		case r.badCAS:
			req.CAS = 1 << 60
		case r.casOf != "":
			req.CAS = p.cas[r.casOf]
		}
		out = append(append(out, req.Bytes()...), r.tail...)
	}
	out = append(out, (&testutil.BinaryRequest{Opcode: bNoop, Opaque: endOpaque}).Bytes()...)
	c.Send(out)
	var got []string
	for {
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("%s: %v after %q", p.addr, err, got)
		}
		if r.Opaque() == endOpaque && r.Opcode() == bNoop {
			return got
		}
		cas := "0"
		if v := r.CAS(); v != 0 {
			cas = "cas"
			if k, ok := keyOf[r.Opaque()]; ok && k != "" {
				p.cas[k] = v
			}
		}
		got = append(got, fmt.Sprintf("op=%02x keylen=%d extlen=%d status=%04x opaque=%d cas=%s body=%s",
			r.Opcode(), r.KeyLen(), r.ExtLen(), r.Status(), r.Opaque(), cas, testutil.Quote(r.Body, 80)))
	}
}

func (p *binaryPeer) run(t *testing.T, script [][]bin) [][]string {
	t.Helper()
	c := testutil.Dial(t, p.addr)
	defer c.Close()
	var opaque uint32
	var out [][]string
	for _, s := range script {
		out = append(out, p.step(t, c, s, &opaque))
	}
	return out
}

func compareSteps(t *testing.T, got, want [][]string) {
	t.Helper()
	for i := range want {
		if strings.Join(got[i], "\n") != strings.Join(want[i], "\n") {
			t.Errorf("step %d:\nproxy:\n  %s\nmemcached:\n  %s", i,
				strings.Join(got[i], "\n  "), strings.Join(want[i], "\n  "))
		}
	}
}

// TestBinaryMatchesMemcached runs every binary opcode through the proxy
// (in front of three real memcached) and against one memcached directly,
// and compares the responses, opaques included.
func TestBinaryMatchesMemcached(t *testing.T) {
	direct := testutil.StartMemcached(t)
	backends := []string{testutil.StartMemcached(t), testutil.StartMemcached(t), testutil.StartMemcached(t)}
	_, paddr := proxyFor(t, backends)
	want := (&binaryPeer{addr: direct, cas: map[string]uint64{}}).run(t, binaryScript)
	got := (&binaryPeer{addr: paddr, cas: map[string]uint64{}}).run(t, binaryScript)
	compareSteps(t, got, want)
}

// readUntilClosed returns the normalized responses on c until the peer
// closes it, then "<closed>".
func readUntilClosed(t *testing.T, c *testutil.Conn) []string {
	t.Helper()
	var got []string
	for {
		r, err := c.ReadBinary()
		if errors.Is(err, io.EOF) {
			return append(got, "<closed>")
		}
		if err != nil {
			t.Fatalf("%v after %q", err, got)
		}
		got = append(got, fmt.Sprintf("op=%02x status=%04x opaque=%d body=%q", r.Opcode(), r.Status(), r.Opaque(), r.Body))
	}
}

// TestBinaryMalformedMatchesMemcached sends malformed headers after a
// good request: the proxy answers (or not) and closes the connection as
// memcached does, and sends nothing to its servers.
func TestBinaryMalformedMatchesMemcached(t *testing.T) {
	direct := testutil.StartMemcached(t)
	backends := []string{testutil.StartMemcached(t)}
	p, paddr := proxyFor(t, backends)
	u32p := func(v uint32) *uint32 { return &v }
	cases := map[string]testutil.BinaryRequest{
		"key past body":         {Opcode: bGet, Key: []byte("a"), BodyLen: u32p(0)},
		"extras past body":      {Opcode: bSet, Key: []byte("a"), Extras: make([]byte, 8), BodyLen: u32p(4)},
		"key too long":          {Opcode: bGet, Key: bytes.Repeat([]byte("k"), 251)},
		"get with extras":       {Opcode: bGet, Key: []byte("a"), Extras: make([]byte, 4)},
		"set without extras":    {Opcode: bSet, Key: []byte("a"), Value: []byte("v")},
		"incr short extras":     {Opcode: bIncr, Key: []byte("a"), Extras: make([]byte, 8)},
		"get without key":       {Opcode: bGet},
		"noop with body":        {Opcode: bNoop, Value: []byte("x")},
		"version with key":      {Opcode: bVersion, Key: []byte("x")},
		"flush with key":        {Opcode: bFlush, Key: []byte("x")},
		"touch without extras":  {Opcode: bTouch, Key: []byte("a")},
		"quiet get extras":      {Opcode: bGetKQ, Key: []byte("a"), Extras: []byte{1}},
		"delete with value":     {Opcode: bDelete, Key: []byte("a"), Value: []byte("v")},
		"sasl auth without key": {Opcode: bSASLAuth, Value: []byte("x")},
	}
	first := (&testutil.BinaryRequest{Opcode: bSet, Key: []byte("a"), Opaque: 1, Extras: make([]byte, 8), Value: []byte("v")}).Bytes()
	run := func(addr string, req testutil.BinaryRequest) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		req.Opaque = 9
		c.Send(append(append([]byte{}, first...), req.Bytes()...))
		return readUntilClosed(t, c)
	}
	for name, req := range cases {
		want, got := run(direct, req), run(paddr, req)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\nproxy:     %q\nmemcached: %q", name, got, want)
		}
	}
	// A bad magic byte closes the connection without a reply. memcached
	// then drops the replies to the requests before it, which the proxy
	// may have written already: it sends them.
	if got := run(paddr, testutil.BinaryRequest{Magic: 0x81, Opcode: bGet, Key: []byte("a")}); strings.Join(got, "\n") != "op=01 status=0000 opaque=1 body=\"\"\n<closed>" {
		t.Errorf("bad magic: %q", got)
	}
	// A claim past 2^31-3 bytes closes the connection (memcached would
	// read and discard up to 4 GiB).
	for _, req := range []testutil.BinaryRequest{
		{Opcode: bSet, Key: []byte("a"), Extras: make([]byte, 8), BodyLen: u32p(0xfffffff0)},
		{Opcode: 0x50, BodyLen: u32p(0xffffffff)},
	} {
		if got := run(paddr, req); len(got) != 3 || got[2] != "<closed>" {
			t.Errorf("opcode %x with body %d: %q", req.Opcode, *req.BodyLen, got)
		}
	}
	// Only the good sets reached the server.
	if n, want := p.Stats().Pools[0].Servers[0].Requests, int64(len(cases)+3); n != want {
		t.Errorf("server requests = %d, want %d", n, want)
	}
}

// TestBinaryQuietPipelineAcrossServers sends one write of quiet stores,
// quiet gets (hits and misses) and quiet errors for keys on every server:
// only the hits and errors come back, in request order, with their
// opcodes and opaques, then the noop.
func TestBinaryQuietPipelineAcrossServers(t *testing.T) {
	backends := startCorvids(t, 3)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	defer c.Close()
	const n = 300
	var req []byte
	for i := range n {
		k := fmt.Sprintf("q%d", i)
		req = append(req, (&testutil.BinaryRequest{Opcode: bSetQ, Key: []byte(k), Opaque: uint32(i),
			Extras: make([]byte, 8), Value: []byte("v" + k)}).Bytes()...)
	}
	type want struct {
		op     byte
		status uint16
		opaque uint32
		key    string
		value  string
	}
	var wants []want
	opaque := uint32(1000)
	for i := range n + n/3 {
		k := fmt.Sprintf("q%d", i)
		opaque++
		op := byte(bGetKQ)
		if i%2 == 1 {
			op = bGetQ
		}
		req = append(req, (&testutil.BinaryRequest{Opcode: op, Key: []byte(k), Opaque: opaque}).Bytes()...)
		if i < n {
			w := want{op: op, opaque: opaque, value: "v" + k}
			if op == bGetKQ {
				w.key = k
			}
			wants = append(wants, w)
		}
		if i%10 == 0 {
			opaque++ // an error is sent to a quiet request
			req = append(req, (&testutil.BinaryRequest{Opcode: bAddQ, Key: []byte(k), Opaque: opaque,
				Extras: make([]byte, 8), Value: []byte("x")}).Bytes()...)
			if i < n {
				wants = append(wants, want{op: bAddQ, status: 2, opaque: opaque, value: "Data exists for key."})
			}
			opaque++
			req = append(req, (&testutil.BinaryRequest{Opcode: bDeleteQ, Key: []byte("none" + k), Opaque: opaque}).Bytes()...)
			wants = append(wants, want{op: bDeleteQ, status: 1, opaque: opaque, value: "Not found"})
		}
	}
	req = append(req, (&testutil.BinaryRequest{Opcode: bNoop, Opaque: endOpaque}).Bytes()...)
	wants = append(wants, want{op: bNoop, opaque: endOpaque})
	c.Send(req)
	for i, w := range wants {
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if r.Opcode() != w.op || r.Status() != w.status || r.Opaque() != w.opaque ||
			string(r.Key()) != w.key || string(r.Value()) != w.value {
			t.Fatalf("response %d: %v, want %+v", i, r, w)
		}
	}
}

// TestBinaryOpaquesMultiplexed has binary clients using the same opaques
// share one server connection, with text clients on the same servers at
// once: each gets its own replies, with its opaques, in its order.
func TestBinaryOpaquesMultiplexed(t *testing.T) {
	backends := startCorvids(t, 2)
	_, addr := proxyFor(t, backends, "server_connections: 1")
	const clients, rounds = 6, 150
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for g := range clients {
		bc := testutil.Dial(t, addr)
		tc := testutil.Dial(t, addr)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer bc.Close()
			errs <- binaryClient(bc, g, rounds)
		}()
		go func() {
			defer wg.Done()
			defer tc.Close()
			errs <- textClient(tc, g, rounds)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// binaryClient sets and gets its own keys, pipelined ten at a time, with
// opaques that every binary client uses.
func binaryClient(c *testutil.Conn, g, rounds int) error {
	for i := range rounds {
		var req []byte
		for j := range 10 {
			k := fmt.Sprintf("b%d-%d", g, (i*10+j)%37)
			v := fmt.Sprintf("%d:%d", g, i)
			req = append(req, (&testutil.BinaryRequest{Opcode: bSet, Key: []byte(k), Opaque: uint32(2 * j),
				Extras: make([]byte, 8), Value: []byte(v)}).Bytes()...)
			req = append(req, (&testutil.BinaryRequest{Opcode: bGetK, Key: []byte(k), Opaque: uint32(2*j + 1)}).Bytes()...)
		}
		if err := c.TrySend(req); err != nil {
			return err
		}
		for j := range 10 {
			k := fmt.Sprintf("b%d-%d", g, (i*10+j)%37)
			v := fmt.Sprintf("%d:%d", g, i)
			for _, w := range []struct {
				op     byte
				opaque uint32
			}{{bSet, uint32(2 * j)}, {bGetK, uint32(2*j + 1)}} {
				r, err := c.ReadBinary()
				if err != nil {
					return fmt.Errorf("binary client %d: %w", g, err)
				}
				if r.Opcode() != w.op || r.Opaque() != w.opaque || r.Status() != 0 {
					return fmt.Errorf("binary client %d: %v, want op %x opaque %d", g, r, w.op, w.opaque)
				}
				if w.op == bGetK && (string(r.Key()) != k || string(r.Value()) != v) {
					return fmt.Errorf("binary client %d: got %q=%q, want %q=%q", g, r.Key(), r.Value(), k, v)
				}
			}
		}
	}
	return nil
}

// textClient is binaryClient in the text protocol.
func textClient(c *testutil.Conn, g, rounds int) error {
	for i := range rounds {
		k := fmt.Sprintf("t%d-%d", g, i%37)
		v := fmt.Sprintf("%d:%d", g, i)
		if err := c.TrySend([]byte(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k))); err != nil {
			return err
		}
		for _, w := range []string{"STORED\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)} {
			r, err := c.TryReadReply(testutil.AnyReply)
			if err != nil {
				return fmt.Errorf("text client %d: %w", g, err)
			}
			if string(r) != w {
				return fmt.Errorf("text client %d: %q, want %q", g, r, w)
			}
		}
	}
	return nil
}

// TestBinaryServerDown: requests for a server that is down get status
// 0x84 with twemproxy's reason, each for itself (quiet ones too); the
// other server's requests in the same pipeline are answered.
func TestBinaryServerDown(t *testing.T) {
	live := startCorvids(t, 1)[0]
	dead := testutil.RefusedAddr(t)
	addrs := []string{live, dead}
	_, addr := proxyFor(t, addrs)
	placement := testRing(t, addrs)
	var liveKey, deadKey string
	for i := 0; liveKey == "" || deadKey == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		if placement.PickString(k) == 0 {
			liveKey = k
		} else {
			deadKey = k
		}
	}
	c := testutil.Dial(t, addr)
	defer c.Close()
	var req []byte
	for i, r := range []testutil.BinaryRequest{
		{Opcode: bSet, Key: []byte(liveKey), Extras: make([]byte, 8), Value: []byte("v")},
		{Opcode: bSet, Key: []byte(deadKey), Extras: make([]byte, 8), Value: []byte("v")},
		{Opcode: bGetKQ, Key: []byte(deadKey)},
		{Opcode: bGetQ, Key: []byte(liveKey)},
		{Opcode: bFlush},
		{Opcode: bNoop},
	} {
		r.Opaque = uint32(i + 1)
		req = append(req, r.Bytes()...)
	}
	c.Send(req)
	refused := "Connection refused"
	for i, w := range []struct {
		op     byte
		status uint16
		opaque uint32
		body   string
	}{
		{bSet, 0, 1, ""}, {bSet, 0x84, 2, refused}, {bGetKQ, 0x84, 3, refused},
		{bGetQ, 0, 4, "\x00\x00\x00\x00v"}, {bFlush, 0x84, 5, refused}, {bNoop, 0, 6, ""},
	} {
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if r.Opcode() != w.op || r.Status() != w.status || r.Opaque() != w.opaque || string(r.Body) != w.body {
			t.Errorf("response %d: %v, want %+v", i, r, w)
		}
	}
}

// TestBinaryStat: stat answers the proxy's counters as stat responses,
// ended by an empty one.
func TestBinaryStat(t *testing.T) {
	_, addr := proxyFor(t, startCorvids(t, 1))
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send((&testutil.BinaryRequest{Opcode: bStat, Opaque: 42}).Bytes())
	got := map[string]string{}
	for {
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatal(err)
		}
		if r.Opcode() != bStat || r.Status() != 0 || r.Opaque() != 42 {
			t.Fatalf("stat response %v", r)
		}
		if r.KeyLen() == 0 {
			break
		}
		got[string(r.Key())] = string(r.Value())
	}
	if got["version"] != DefaultVersion || got["curr_connections"] != "1" || got["alpha:client_connections"] != "1" {
		t.Errorf("stats: %v", got)
	}
}

// TestBinaryStatGroups: a stat key is a stats group, as the argument of
// text "stats" through the proxy: a group memcached knows is answered
// with the proxy's counters, as the text path does; any other with
// memcached's binary answer to an unknown group, status 1 (not found),
// and the connection stays.
func TestBinaryStatGroups(t *testing.T) {
	_, addr := proxyFor(t, startCorvids(t, 1))
	c := testutil.Dial(t, addr)
	defer c.Close()
	for i, tc := range []struct {
		key   string
		known bool
	}{
		{"settings", true}, {"items", true}, {"slabs", true}, {"sizes", true},
		{"conns", true}, {"reset", true}, {"detail dump", true}, {"detail on", true},
		{"cachedump 1 1", true}, {"extstore", true},
		{"bogus", false}, {"noreply", false}, {"settingsx", false}, {" items", false},
	} {
		opaque := uint32(100 + i)
		c.Send((&testutil.BinaryRequest{Opcode: bStat, Key: []byte(tc.key), Opaque: opaque}).Bytes())
		got := map[string]string{}
		for n := 0; ; n++ {
			r, err := c.ReadBinary()
			if err != nil {
				t.Fatalf("stat %q: %v", tc.key, err)
			}
			if r.Opcode() != bStat || r.Opaque() != opaque || n > 10000 {
				t.Fatalf("stat %q: response %v", tc.key, r)
			}
			if !tc.known {
				if r.Status() != 1 || string(r.Body) != "Not found" {
					t.Errorf("stat %q: status %04x body %q, want 0001 \"Not found\"", tc.key, r.Status(), r.Body)
				}
				break
			}
			if r.Status() != 0 {
				t.Fatalf("stat %q: status %04x", tc.key, r.Status())
			}
			if r.KeyLen() == 0 {
				break
			}
			got[string(r.Key())] = string(r.Value())
		}
		if tc.known && got["version"] != DefaultVersion {
			t.Errorf("stat %q: %v", tc.key, got)
		}
	}
	c.Send((&testutil.BinaryRequest{Opcode: bNoop, Opaque: 7}).Bytes())
	if r, err := c.ReadBinary(); err != nil || r.Opcode() != bNoop || r.Opaque() != 7 {
		t.Fatalf("noop after the stats: %v %v", r, err)
	}
}

// TestBinaryQuit: quit is answered, then the connection closed; quitq
// closes it without an answer; replies to earlier requests come first.
func TestBinaryQuit(t *testing.T) {
	_, addr := proxyFor(t, startCorvids(t, 1))
	for _, tc := range []struct {
		op   byte
		want []string
	}{
		{bQuit, []string{"op=01 status=0000 opaque=1 body=\"\"", "op=07 status=0000 opaque=2 body=\"\"", "<closed>"}},
		{bQuitQ, []string{"op=01 status=0000 opaque=1 body=\"\"", "<closed>"}},
	} {
		c := testutil.Dial(t, addr)
		c.Send(append((&testutil.BinaryRequest{Opcode: bSet, Key: []byte("a"), Opaque: 1, Extras: make([]byte, 8)}).Bytes(),
			(&testutil.BinaryRequest{Opcode: tc.op, Opaque: 2}).Bytes()...))
		if got := readUntilClosed(t, c); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("opcode %x: %q, want %q", tc.op, got, tc.want)
		}
		c.Close()
	}
}

// TestBinaryGarbageReply: a server that answers a binary request with
// bytes that are not a binary response is disconnected and the request
// fails with 0x84; the proxy keeps serving.
func TestBinaryGarbageReply(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 64)
		if _, err := nc.Read(buf); err == nil {
			nc.Write([]byte("STORED\r\n"))
		}
		io.Copy(io.Discard, nc)
	})
	_, addr := proxyFor(t, []string{srv})
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send((&testutil.BinaryRequest{Opcode: bGet, Key: []byte("a"), Opaque: 3}).Bytes())
	r, err := c.ReadBinary()
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != 0x84 || r.Opaque() != 3 || string(r.Body) != "Invalid argument" {
		t.Errorf("reply %v", r)
	}
}

func TestFrameBinary(t *testing.T) {
	resp := protocol.AppendBinaryResponse(nil, protocol.OpGet, 0, 4, 0, 9, 1, 0)
	resp = append(resp, "\x00\x00\x00\x00value"...)
	for i := range len(resp) {
		if n, err := frameBinary(resp[:i]); n != 0 || err != nil {
			t.Fatalf("%d bytes: %d %v", i, n, err)
		}
	}
	if n, err := frameBinary(append(resp, 0x81)); n != len(resp) || err != nil {
		t.Errorf("whole: %d %v", n, err)
	}
	for _, bad := range [][]byte{[]byte("STORED\r\n"), {0x80}, protocol.AppendBinaryResponse(nil, protocol.OpGet, 0, 4, 0, 2, 1, 0)} {
		if _, err := frameBinary(bad); !errors.Is(err, errGarbage) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestMemccapableBinary runs memccapable's binary tests through the proxy.
func TestMemccapableBinary(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		t.Skip("memccapable is not installed (Debian: libmemcached-tools)")
	}
	_, addr := proxyFor(t, startCorvids(t, 2))
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-b", "-v", "-t", "5", "-h", host, "-p", port)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("[FAIL]")) || bytes.Count(out, []byte("[pass]")) != 27 {
		t.Fatalf("memccapable -b: %v\n%s", err, out)
	}
}

// BenchmarkBinaryMultiGet times a binary multi-get, 1,000 getkq (100-byte
// values) ended by a noop, sent to one memcached directly and through the
// proxy in front of three.
func BenchmarkBinaryMultiGet(b *testing.B) {
	const nkeys = 1000
	direct := testutil.StartMemcached(b, "-m", "64")
	backends := []string{testutil.StartMemcached(b, "-m", "64"), testutil.StartMemcached(b, "-m", "64"), testutil.StartMemcached(b, "-m", "64")}
	p := startProxyB(b, poolYAML("127.0.0.1:0", backends))
	paddr := p.Addrs()["alpha"].String()
	var set, get []byte
	for i := range nkeys {
		k := []byte(fmt.Sprintf("bin:%d", i))
		set = append(set, (&testutil.BinaryRequest{Opcode: bSetQ, Key: k, Extras: make([]byte, 8), Value: bytes.Repeat([]byte("v"), 100)}).Bytes()...)
		get = append(get, (&testutil.BinaryRequest{Opcode: bGetKQ, Key: k}).Bytes()...)
	}
	noop := (&testutil.BinaryRequest{Opcode: bNoop}).Bytes()
	set, get = append(set, noop...), append(get, noop...)
	for _, bc := range []struct{ name, addr string }{{"direct", direct}, {"proxy", paddr}} {
		c := testutil.Dial(b, bc.addr)
		c.Send(set)
		if r, err := c.ReadBinary(); err != nil || r.Opcode() != bNoop {
			b.Fatalf("set: %v %v", r, err)
		}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c.Send(get)
				for i := 0; ; i++ {
					r, err := c.ReadBinary()
					if err != nil {
						b.Fatal(err)
					}
					if r.Opcode() == bNoop {
						if i != nkeys {
							b.Fatalf("%d hits, want %d", i, nkeys)
						}
						break
					}
				}
			}
		})
		c.Close()
	}
}

// TestBinaryHalfWrittenRequest: a binary client that disconnects in the
// middle of a request sends nothing to the server, whose binary
// connection then stays in step for the next client.
func TestBinaryHalfWrittenRequest(t *testing.T) {
	_, addr := proxyFor(t, startCorvids(t, 1))
	set := (&testutil.BinaryRequest{Opcode: bSet, Key: []byte("x"), Opaque: 1, Extras: make([]byte, 8), Value: []byte("1")}).Bytes()
	full := (&testutil.BinaryRequest{Opcode: bSet, Key: []byte("a"), Extras: make([]byte, 8), Value: []byte("0123456789")}).Bytes()
	for _, cut := range []int{1, 23, 24, 30, len(full) - 1} {
		c := testutil.Dial(t, addr)
		c.Send(append(append([]byte{}, set...), full[:cut]...))
		if r, err := c.ReadBinary(); err != nil || r.Status() != 0 || r.Opaque() != 1 {
			t.Fatalf("cut at %d: %v %v", cut, r, err)
		}
		c.Close()
	}
	c := testutil.Dial(t, addr)
	defer c.Close()
	for i := range 3 {
		c.Send(append((&testutil.BinaryRequest{Opcode: bGetK, Key: []byte("a"), Opaque: 7}).Bytes(),
			(&testutil.BinaryRequest{Opcode: bGet, Key: []byte("x"), Opaque: 8}).Bytes()...))
		for _, w := range []struct {
			status uint16
			opaque uint32
		}{{1, 7}, {0, 8}} {
			r, err := c.ReadBinary()
			if err != nil || r.Status() != w.status || r.Opaque() != w.opaque {
				t.Fatalf("round %d: %v %v, want status %d opaque %d", i, r, err, w.status, w.opaque)
			}
		}
	}
}

// TestBinaryServerTimeout: a server that does not answer within the
// pool's timeout fails the request with 0x84 "Connection timed out".
func TestBinaryServerTimeout(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	_, addr := proxyFor(t, []string{srv}, "timeout: 100")
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send(append((&testutil.BinaryRequest{Opcode: bGetKQ, Key: []byte("a"), Opaque: 5}).Bytes(),
		(&testutil.BinaryRequest{Opcode: bNoop, Opaque: 6}).Bytes()...))
	for _, w := range []struct {
		op     byte
		status uint16
		opaque uint32
		body   string
	}{{bGetKQ, 0x84, 5, "Connection timed out"}, {bNoop, 0, 6, ""}} {
		r, err := c.ReadBinary()
		if err != nil || r.Opcode() != w.op || r.Status() != w.status || r.Opaque() != w.opaque || string(r.Body) != w.body {
			t.Fatalf("%v %v, want %+v", r, err, w)
		}
	}
}

// FuzzFrameBinary checks that any bytes a server sends frame as one whole
// response within them, as a need for more, or as garbage, and that a
// response split anywhere frames the same once complete.
func FuzzFrameBinary(f *testing.F) {
	ok := protocol.AppendBinaryResponse(nil, protocol.OpGetK, 0, 4, 1, 7, 9, 3)
	f.Add(append(ok, "\x00\x00\x00\x00kvv"...))
	f.Add(protocol.AppendBinaryError(nil, protocol.OpSet, protocol.StatusTooLarge, 1))
	f.Add([]byte("STORED\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := frameBinary(b)
		if err != nil {
			if n != 0 || !errors.Is(err, errGarbage) {
				t.Fatalf("%d %v", n, err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n < protocol.BinaryHeaderLen || n > len(b) {
			t.Fatalf("framed %d of %d bytes", n, len(b))
		}
		for i := range n {
			if m, err := frameBinary(b[:i]); m != 0 || err != nil {
				t.Fatalf("prefix %d: %d %v", i, m, err)
			}
		}
	})
}

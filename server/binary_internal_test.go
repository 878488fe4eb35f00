package server

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// binPacket builds a binary request with the lengths its parts give.
func binPacket(op protocol.Opcode, extras, key, value []byte, cas uint64) []byte {
	return binPacketLens(op, len(key), len(extras), len(extras)+len(key)+len(value), cas, extras, key, value)
}

// binPacketLens builds a binary request header claiming the given lengths,
// followed by whatever parts are given.
func binPacketLens(op protocol.Opcode, keyLen, extLen, bodyLen int, cas uint64, parts ...[]byte) []byte {
	b := []byte{protocol.BinaryRequestMagic, byte(op)}
	b = binary.BigEndian.AppendUint16(b, uint16(keyLen))
	b = append(b, byte(extLen), 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(bodyLen))
	b = binary.BigEndian.AppendUint32(b, 0x01020304)
	b = binary.BigEndian.AppendUint64(b, cas)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// binConn returns a connection of s that speaks the binary protocol and is
// fed by run, without a network.
func binConn(s *Server) (c *conn, run func(req []byte) int) {
	c = newConn(s, nil)
	c.proto = ProtoBinary
	c.wbuf = make([]byte, 0, 64<<10)
	run = func(req []byte) int {
		c.rbuf = append(c.rbuf[:0], req...)
		c.r, c.w = 0, len(c.rbuf)
		c.wbuf = c.wbuf[:0]
		return c.processAll()
	}
	return c, run
}

// TestBinaryGetHitAllocs pins the zero-allocation binary get: header
// check, look up, and copy of the value into the write buffer.
func TestBinaryGetHitAllocs(t *testing.T) {
	s, _ := start(t, Config{})
	c, run := binConn(s)
	run(binPacket(protocol.OpSet, make([]byte, 8), []byte("key"), []byte("value"), 0))
	if len(c.wbuf) != protocol.BinaryHeaderLen || c.wbuf[7] != 0 {
		t.Fatalf("set: % x", c.wbuf)
	}
	for _, op := range []protocol.Opcode{protocol.OpGet, protocol.OpGetK, protocol.OpGetQ} {
		get := binPacket(op, nil, []byte("key"), nil, 0)
		run(get)
		if !bytes.HasSuffix(c.wbuf, []byte("value")) || c.wbuf[7] != 0 {
			t.Fatalf("get 0x%02x: % x", op, c.wbuf)
		}
		if n := testing.AllocsPerRun(1000, func() { run(get) }); n != 0 {
			t.Errorf("binary get 0x%02x hit allocates %.1f times, want 0", op, n)
		}
	}
}

// TestBinaryHugeClaims sends the headers of CVE-2016-8704 (append and
// prepend), CVE-2016-8705 (set and friends) and CVE-2016-8706 (SASL auth):
// lengths whose arithmetic overflows a 32-bit int. Each must close the
// connection (answering first where memcached answers) without growing the
// read buffer or allocating what the header claims.
func TestBinaryHugeClaims(t *testing.T) {
	s, _ := start(t, Config{SASL: true})
	for _, tc := range []struct {
		name    string
		req     []byte
		status  protocol.Status // 0: close without a reply
		swallow int             // bytes discarded instead of closing
	}{
		{"append body 2^32-1", binPacketLens(protocol.OpAppend, 1, 0, 0xffffffff, 0, []byte("k")), protocol.StatusTooLarge, 0},
		{"prepend body 2^31", binPacketLens(protocol.OpPrepend, 1, 0, 1<<31, 0, []byte("k")), protocol.StatusTooLarge, 0},
		{"appendq body 2^32-1", binPacketLens(protocol.OpAppendQ, 1, 0, 0xffffffff, 0, []byte("k")), protocol.StatusTooLarge, 0},
		{"set body 2^32-1", binPacketLens(protocol.OpSet, 1, 8, 0xffffffff, 0, make([]byte, 8), []byte("k")), protocol.StatusTooLarge, 0},
		{"set key over body", binPacketLens(protocol.OpSet, 0xffff, 8, 8, 0), protocol.StatusUnknownCommand, 0},
		{"set extras over body", binPacketLens(protocol.OpSet, 1, 0xff, 0x80, 0), protocol.StatusUnknownCommand, 0},
		{"set key 2^16-1", binPacketLens(protocol.OpSet, 0xffff, 8, 0xffffffff, 0), protocol.StatusInvalidArgs, 0},
		{"sasl auth body 2^32-1", binPacketLens(protocol.OpSASLAuth, 5, 0, 0xffffffff, 0, []byte("PLAIN")), protocol.StatusTooLarge, 0},
		{"sasl auth key over body", binPacketLens(protocol.OpSASLAuth, 0xffff, 0, 4, 0), protocol.StatusUnknownCommand, 0},
		{"unknown opcode body 2^32-1", binPacketLens(0x50, 0, 0, 0xffffffff, 0), protocol.StatusUnknownCommand, 0},
		{"set value too large", binPacketLens(protocol.OpSet, 1, 8, 1<<30, 0, make([]byte, 8), []byte("k")), protocol.StatusTooLarge, 1<<30 - 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, run := binConn(s)
			c.authed = true
			c.rbuf = make([]byte, 0, 4096)
			var need int
			allocs := testing.AllocsPerRun(10, func() {
				c.swallow = 0
				need = run(tc.req)
			})
			if allocs > 0 {
				t.Errorf("allocates %.1f times", allocs)
			}
			if cap(c.rbuf) != 4096 {
				t.Errorf("read buffer grew to %d bytes", cap(c.rbuf))
			}
			if tc.swallow > 0 {
				if need != 0 || c.swallow != tc.swallow {
					t.Errorf("process = %d, swallow %d; want 0, swallow %d", need, c.swallow, tc.swallow)
				}
			} else if need != -1 {
				t.Errorf("process = %d, want -1 (close)", need)
			}
			var want []byte
			if tc.status != 0 {
				want = protocol.AppendBinaryError(nil, protocol.Opcode(tc.req[1]), tc.status, 0x01020304)
			}
			if !bytes.Equal(c.wbuf, want) {
				t.Errorf("reply % x\nwant  % x", c.wbuf, want)
			}
		})
	}
}

// FuzzBinaryConn feeds binary-protocol input to a connection whole and, on
// a second server in the same state, split at a point the fuzzer chooses.
// Both must give the same replies (unless stats were asked for, whose
// values differ), every reply must be a well-formed response, and the read
// buffer must stay bounded whatever lengths the input claims.
func FuzzBinaryConn(f *testing.F) {
	ext8 := make([]byte, 8)
	incr := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 1), 10)
	incr = binary.BigEndian.AppendUint32(incr, 0)
	seeds := [][]byte{
		binPacket(protocol.OpSet, ext8, []byte("k"), []byte("v"), 0),
		binPacket(protocol.OpGetKQ, nil, []byte("k"), nil, 0),
		binPacket(protocol.OpNoop, nil, nil, nil, 0),
		binPacket(protocol.OpIncrement, incr, []byte("n"), nil, 0),
		binPacket(protocol.OpAppendQ, nil, []byte("k"), []byte("more"), 0),
		binPacket(protocol.OpGAT, []byte{0, 0, 0, 5}, []byte("k"), nil, 0),
		binPacket(protocol.OpDelete, nil, []byte("k"), nil, 3),
		binPacket(protocol.OpFlush, []byte{0, 0, 0, 9}, nil, nil, 0),
		binPacket(protocol.OpStat, nil, []byte("settings"), nil, 0),
		binPacket(protocol.OpSASLAuth, nil, []byte("PLAIN"), []byte("\x00u\x00p"), 0),
		binPacket(0x50, nil, []byte("kk"), []byte("xxxxxxxx"), 0),
		binPacketLens(protocol.OpSet, 1, 8, 0xffffffff, 0, ext8, []byte("k")),
		binPacketLens(protocol.OpSet, 1, 8, 2<<20, 0, ext8, []byte("k")),
		binPacket(protocol.OpQuit, nil, nil, nil, 0),
	}
	for i, s := range seeds {
		f.Add(append(s, seeds[(i+1)%len(seeds)]...), uint16(len(s)/2))
	}
	now := time.Unix(1700000000, 0)
	newServer := func() *Server {
		s, err := New(Config{
			TCPAddrs: []string{"127.0.0.1:0"},
			Storage:  storage.Config{MemoryLimit: 8 << 20, NoCrawler: true, Now: func() time.Time { return now }},
		})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { s.Close() })
		return s
	}
	whole, split := newServer(), newServer()
	f.Fuzz(func(t *testing.T, in []byte, at uint16) {
		cut := int(at) % (len(in) + 1)
		a, aShut := feedConn(t, whole, in)
		b, bShut := feedConn(t, split, in[:cut], in[cut:])
		stats := checkResponses(t, a)
		checkResponses(t, b)
		// A connection closed at once (bad magic) drops the replies
		// memcached had not written, and it writes those it holds when
		// its input runs out: the split input may then have sent more,
		// never other, replies.
		same := bytes.Equal(a, b) || aShut == shutAtOnce && bShut == shutAtOnce && bytes.HasPrefix(b, a)
		if !stats && !same {
			t.Fatalf("input % x\nwhole: % x\nsplit at %d: % x", in, a, cut, b)
		}
		// The next input starts from an empty cache on both servers.
		whole.cache.FlushAll(0)
		split.cache.FlushAll(0)
	})
}

// maxFuzzBuf bounds a fuzzed connection's read buffer: the largest item
// (1 MiB) and its header, rounded up by the buffer's doubling.
const maxFuzzBuf = 4 << 20

// feedConn runs a binary connection of s over the chunks as the serving
// loop would, and returns everything it wrote and how it ended.
func feedConn(t *testing.T, s *Server, chunks ...[]byte) ([]byte, connEnd) {
	c := newConn(s, nil)
	c.proto = ProtoBinary
	var out []byte
	c.flushFn = func() error {
		out = append(out, c.wbuf...)
		c.wbuf = c.wbuf[:0]
		return nil
	}
	need := 0
	for _, in := range chunks {
		for len(in) > 0 {
			c.prepareRead(need)
			n := copy(c.rbuf[c.w:], in)
			c.w += n
			in = in[n:]
			need = c.processAll()
			if cap(c.rbuf) > maxFuzzBuf {
				t.Fatalf("read buffer grew to %d bytes", cap(c.rbuf))
			}
			if need < 0 {
				return append(out, c.wbuf...), shutAtOnce
			}
			if c.closeAfterWrite {
				return append(out, c.wbuf...), shutAfterWrite
			}
		}
	}
	return append(out, c.wbuf...), stillOpen
}

// connEnd is how a fed connection ended.
type connEnd int

const (
	stillOpen      connEnd = iota // it waits for more input
	shutAtOnce                    // closed without writing what it holds (bad magic)
	shutAfterWrite                // closed once its replies are written (quit)
)

// checkResponses fails the test unless out is a sequence of whole binary
// responses, and reports whether one of them answered a stat request.
func checkResponses(t *testing.T, out []byte) (stats bool) {
	for len(out) > 0 {
		if len(out) < protocol.BinaryHeaderLen || out[0] != protocol.BinaryResponseMagic {
			t.Fatalf("malformed response % x", out[:min(len(out), 32)])
		}
		n := protocol.BinaryHeaderLen + int(binary.BigEndian.Uint32(out[8:]))
		if n > len(out) {
			t.Fatalf("response claims %d bytes, %d written", n, len(out))
		}
		stats = stats || protocol.Opcode(out[1]) == protocol.OpStat
		out = out[n:]
	}
	return stats
}

func TestSASLPasswordDB(t *testing.T) {
	path := t.TempDir() + "/pwdb"
	data := "alice:secret\r\nbob:pw:more fields\nalice:other\nnocolon\n:empty\ncarol:\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := loadSASLPasswordDB(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		msg string
		ok  bool
	}{
		{"\x00alice\x00secret", true},
		{"alice\x00alice\x00secret", true},
		{"\x00alice\x00other", false}, // only the first line for a user counts
		{"\x00bob\x00pw", true},
		{"\x00bob\x00pw:more fields", false},
		{"bob\x00alice\x00secret", false}, // no proxy authorization
		{"\x00alice\x00secret\x00", false},
		{"\x00alice", false},
		{"", false},
		{"\x00\x00", false},
		{"\x00carol\x00", true},
		{"\x00nocolon\x00", false},
	} {
		if got := db.checkPlain([]byte(tc.msg)); got != tc.ok {
			t.Errorf("checkPlain(%q) = %v, want %v", tc.msg, got, tc.ok)
		}
	}
	if _, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, SASL: true, SASLPasswordDB: path + ".missing"}); err == nil {
		t.Error("New with a missing SASL password database succeeded")
	}
	if _, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, SASL: true, Protocol: ProtoASCII}); err == nil {
		t.Error("New with SASL and the ASCII protocol succeeded")
	}
	s, addr := start(t, Config{SASL: true})
	if s.cfg.Protocol != ProtoBinary {
		t.Errorf("SASL protocol %v, want binary", s.cfg.Protocol)
	}
	// An ASCII client cannot bypass SASL: its first header has a bad
	// magic byte.
	c := dial(t, "tcp", addr)
	c.send("get a\r\nget b\r\nget c\r\nget d\r\n")
	if !c.closed() {
		t.Error("ASCII request under SASL left the connection open")
	}
}

func BenchmarkBinaryGetHit(b *testing.B) {
	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, run := binConn(s)
	value := bytes.Repeat([]byte("v"), 100)
	run(binPacket(protocol.OpSet, make([]byte, 8), []byte("key"), value, 0))
	get := binPacket(protocol.OpGetK, nil, []byte("key"), nil, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		run(get)
	}
	if !bytes.HasSuffix(c.wbuf, value) {
		b.Fatalf("get: % x", c.wbuf)
	}
}

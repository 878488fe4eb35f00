package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// binaryStore returns the head (header, extras, key) of a binary storage
// request op of an n-byte value under key, with flags 5 (append and
// prepend carry no extras).
func binaryStore(op protocol.Opcode, key string, n int, opaque uint32) []byte {
	ext := 8
	if op == protocol.OpAppend || op == protocol.OpPrepend {
		ext = 0
	}
	r := make([]byte, protocol.BinaryHeaderLen, protocol.BinaryHeaderLen+ext+len(key))
	r[0], r[1] = protocol.BinaryRequestMagic, byte(op)
	binary.BigEndian.PutUint16(r[2:4], uint16(len(key)))
	r[4] = byte(ext)
	binary.BigEndian.PutUint32(r[8:12], uint32(ext+len(key)+n))
	binary.BigEndian.PutUint32(r[12:16], opaque)
	if ext > 0 {
		r = binary.BigEndian.AppendUint32(r, 5) // flags
		r = binary.BigEndian.AppendUint32(r, 0) // exptime
	}
	return append(r, key...)
}

// binaryNoop returns a binary noop with opaque.
func binaryNoop(opaque uint32) []byte {
	r := make([]byte, protocol.BinaryHeaderLen)
	r[0], r[1] = protocol.BinaryRequestMagic, byte(protocol.OpNoop)
	binary.BigEndian.PutUint32(r[12:16], opaque)
	return r
}

// readBinaryReply reads one binary response and returns its opcode,
// status, opaque and CAS.
func readBinaryReply(t *testing.T, c *client) (op byte, status uint16, opaque uint32, cas uint64) {
	t.Helper()
	h := make([]byte, protocol.BinaryHeaderLen)
	if _, err := ioReadFull(c, h); err != nil {
		t.Fatalf("binary reply: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(h[8:12]))
	if _, err := ioReadFull(c, body); err != nil {
		t.Fatalf("binary reply body: %v", err)
	}
	return h[1], binary.BigEndian.Uint16(h[6:8]), binary.BigEndian.Uint32(h[12:16]), binary.BigEndian.Uint64(h[16:24])
}

// incomingCase is a storage command of a chained value through one
// protocol: head is what comes before the value and tail after it, then
// a request whose reply shows that everything before it was answered;
// check reads the replies.
type incomingCase struct {
	name       string
	size       int
	head, tail func(n int) []byte
	check      func(t *testing.T, c *client)
	// concat is set for an append ('a') or prepend ('p') onto "old".
	concat byte
}

var incomingCases = []incomingCase{
	{"ms", 64 << 20,
		func(n int) []byte { return fmt.Appendf(nil, "ms k %d F5 T0 O123 k c\r\n", n) },
		func(int) []byte { return []byte("\r\nmn\r\n") },
		func(t *testing.T, c *client) {
			f := strings.Fields(c.line())
			if len(f) != 4 || f[0] != "HD" || f[1] != "O123" || f[2] != "kk" || !strings.HasPrefix(f[3], "c") || f[3] == "c0" {
				t.Fatalf("ms reply %q, want HD O123 kk c<cas>", f)
			}
			if l := c.line(); l != "MN" {
				t.Fatalf("after ms: %q", l)
			}
		}, 0},
	{"ms quiet", 3 << 20,
		func(n int) []byte { return fmt.Appendf(nil, "ms k %d F5 q O9\r\n", n) },
		func(int) []byte { return []byte("\r\nmn\r\n") },
		func(t *testing.T, c *client) {
			if l := c.line(); l != "MN" {
				t.Fatalf("after a quiet ms: %q, want MN alone", l)
			}
		}, 0},
	{"binary set", 16 << 20,
		func(n int) []byte { return binaryStore(protocol.OpSet, "k", n, 77) },
		func(int) []byte { return binaryNoop(78) },
		func(t *testing.T, c *client) {
			op, st, opaque, cas := readBinaryReply(t, c)
			if op != byte(protocol.OpSet) || st != 0 || opaque != 77 || cas == 0 {
				t.Fatalf("binary set reply: op %#x status %d opaque %d cas %d", op, st, opaque, cas)
			}
			if op, _, opaque, _ := readBinaryReply(t, c); op != byte(protocol.OpNoop) || opaque != 78 {
				t.Fatalf("after the set: op %#x opaque %d", op, opaque)
			}
		}, 0},
	{"binary setq", 3 << 20,
		func(n int) []byte { return binaryStore(protocol.OpSetQ, "k", n, 77) },
		func(int) []byte { return binaryNoop(78) },
		func(t *testing.T, c *client) {
			if op, _, opaque, _ := readBinaryReply(t, c); op != byte(protocol.OpNoop) || opaque != 78 {
				t.Fatalf("after a quiet set: op %#x opaque %d, want the noop alone", op, opaque)
			}
		}, 0},
	{"append", 16 << 20,
		func(n int) []byte { return fmt.Appendf(nil, "append k 0 0 %d\r\n", n) },
		func(int) []byte { return []byte("\r\nmn\r\n") },
		func(t *testing.T, c *client) {
			if l := c.line(); l != "STORED" {
				t.Fatalf("append: %q", l)
			}
			if l := c.line(); l != "MN" {
				t.Fatalf("after append: %q", l)
			}
		}, 'a'},
	{"ms prepend", 3 << 20,
		func(n int) []byte { return fmt.Appendf(nil, "ms k %d MP O5\r\n", n) },
		func(int) []byte { return []byte("\r\nmn\r\n") },
		func(t *testing.T, c *client) {
			if l := c.line(); l != "HD O5" {
				t.Fatalf("ms prepend: %q", l)
			}
			if l := c.line(); l != "MN" {
				t.Fatalf("after ms prepend: %q", l)
			}
		}, 'p'},
	{"binary append", 3 << 20,
		func(n int) []byte { return binaryStore(protocol.OpAppend, "k", n, 77) },
		func(int) []byte { return binaryNoop(78) },
		func(t *testing.T, c *client) {
			op, st, opaque, cas := readBinaryReply(t, c)
			if op != byte(protocol.OpAppend) || st != 0 || opaque != 77 || cas == 0 {
				t.Fatalf("binary append reply: op %#x status %d opaque %d cas %d", op, st, opaque, cas)
			}
			if op, _, opaque, _ := readBinaryReply(t, c); op != byte(protocol.OpNoop) || opaque != 78 {
				t.Fatalf("after the append: op %#x opaque %d", op, opaque)
			}
		}, 'a'},
}

// TestChainedMetaBinarySetsReadIntoChunks is TestChainedSetReadIntoChunks
// for meta and binary sets: most of a value sent (64 MB for ms) goes
// straight into its item's chunks, the read buffers do not grow with it,
// and the value is not visible; the client gone mid-value, the old value
// stays and every chunk is freed. A whole set is then answered with the
// flags it asked for (echoed from copies: the read buffer is given back
// and reused while the value is read) and reads back intact.
//
// Pages stay in their classes (no automove): each case counts on the free
// chunks the one before it left, and a value whose memory is taken while
// it is read is discarded ("out of memory during read"), which
// TestIncomingMemoryTakenMidValue covers.
func TestChainedMetaBinarySetsReadIntoChunks(t *testing.T) {
	s, addr := start(t, Config{Storage: storage.Config{MemoryLimit: 256 << 20, ItemSizeMax: 128 << 20, SlabAutomove: -1}})
	for _, tc := range incomingCases {
		t.Run(tc.name, func(t *testing.T) { testIncomingCase(t, s, addr, tc) })
	}
}

func testIncomingCase(t *testing.T, s *Server, addr string, tc incomingCase) {
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	var st0 storage.Stats
	s.cache.ReadStats(&st0)
	used0, rbuf0 := slabUse(s), s.rbufs.bytes.Load()
	value := largeValueInternal(tc.size)

	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	sent := tc.size * 3 / 4
	if _, err := nc.Write(append(tc.head(tc.size), value[:sent]...)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for slabUse(s)-used0 < int64(sent)-1<<20 && s.rbufs.bytes.Load()-rbuf0 < int64(sent)/2 {
		if time.Now().After(deadline) {
			t.Fatalf("the server took %d bytes of slab memory and %d of read buffers for %d bytes sent",
				slabUse(s)-used0, s.rbufs.bytes.Load()-rbuf0, sent)
		}
		time.Sleep(time.Millisecond)
	}
	if grown := s.rbufs.bytes.Load() - rbuf0; grown > 1<<20 {
		t.Errorf("read buffers grew by %d MB for a %s of %d MB", grown>>20, tc.name, tc.size>>20)
	}
	check := dial(t, "tcp", addr)
	check.nc.SetDeadline(time.Now().Add(60 * time.Second))
	check.expect("get k\r\n", "VALUE k 0 3", "old", "END")
	nc.Close()
	for slabUse(s) != used0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the client left mid-value: %d bytes of chunks in use, %d before", slabUse(s), used0)
		}
		time.Sleep(time.Millisecond)
	}
	var st1 storage.Stats
	s.cache.ReadStats(&st1)
	if st1.CurrItems != st0.CurrItems || st1.TotalItems != st0.TotalItems {
		t.Fatalf("after the client left mid-value: curr_items %d total_items %d, before %d %d",
			st1.CurrItems, st1.TotalItems, st0.CurrItems, st0.TotalItems)
	}
	check.expect("get k\r\n", "VALUE k 0 3", "old", "END")

	// Whole, in parts, while another connection's requests take the read
	// buffers given back.
	c := dial(t, "tcp", addr)
	c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	c.send(string(tc.head(tc.size)) + string(value[:sent]))
	long := "get " + strings.Repeat("x", 200) + strings.Repeat(" "+strings.Repeat("y", 200), 100) + "\r\n"
	for range 4 {
		check.expect(long, "END")
	}
	c.send(string(value[sent:]) + string(tc.tail(tc.size)))
	tc.check(t, c)
	want, flags := value, "5"
	switch tc.concat {
	case 'a':
		want, flags = append([]byte("old"), value...), "0"
	case 'p':
		want, flags = append(bytes.Clone(value), "old"...), "0"
	}
	check.send("mg k v f\r\n")
	if l := check.line(); l != "VA "+strconv.Itoa(len(want))+" f"+flags {
		t.Fatalf("mg k after the %s: %q", tc.name, l)
	}
	got := make([]byte, len(want)+2)
	if _, err := ioReadFull(check, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(want)], want) || string(got[len(want):]) != "\r\n" {
		t.Fatalf("the value read back differs from the one set")
	}
	// The server lets go of the item it wrote once the write returns,
	// which can be after the client has read it all: a reply to the
	// next command comes after that, and the next case's count of slab
	// memory in use then no longer holds this value.
	check.expect("mn\r\n", "MN")
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
}

// largeValueInternal is a value of n bytes in which a chunk stored out of
// place shows.
func largeValueInternal(n int) []byte {
	v := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	for i := range v {
		v[i] ^= byte(i>>10) ^ byte(i>>18)
	}
	return v
}

// TestIncomingDecidedOnce sends a set, an ms and a binary set of a value
// larger than the free memory, which are then read into the read buffer:
// the cache is asked once per command whether to read it into chunks,
// not again on each of the reads that buffer it.
func TestIncomingDecidedOnce(t *testing.T) {
	var asked atomic.Int64
	testHookNewIncoming = func() { asked.Add(1) }
	t.Cleanup(func() { testHookNewIncoming = nil }) // after the server stops
	s, addr := start(t, Config{Storage: storage.Config{MemoryLimit: 16 << 20, ItemSizeMax: 8 << 20}})
	// Values of 3 MB take the free memory of the largest class, and
	// pages, so that less than a 6 MB value is free.
	fill := func(name string) {
		t.Helper()
		s.cache.Delete([]byte("k"))
		for i := range 4 {
			if _, err := s.cache.Store(storage.ModeSet, fmt.Appendf(nil, "%s%d", name, i), 0, 0, largeValueInternal(3<<20), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	const size = 6 << 20
	value := largeValueInternal(size)
	c := dial(t, "tcp", addr)
	c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	bc := dial(t, "tcp", addr)
	bc.nc.SetDeadline(time.Now().Add(60 * time.Second))
	for _, tc := range []struct {
		name, want string
		send       func()
		read       func() string
	}{
		{"set", "STORED", func() { c.send(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, value)) }, c.line},
		{"ms", "HD", func() { c.send(fmt.Sprintf("ms k %d\r\n%s\r\n", size, value)) }, c.line},
		{"binary set", "status 0", func() { bc.send(string(binaryStore(protocol.OpSet, "k", size, 1)) + string(value)) }, func() string {
			_, st, _, _ := readBinaryReply(t, bc)
			return fmt.Sprint("status ", st)
		}},
	} {
		fill(tc.name)
		asked.Store(0)
		tc.send()
		if r := tc.read(); r != tc.want {
			t.Fatalf("%s: %q, want %q", tc.name, r, tc.want)
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("%s: the cache was asked %d times whether to read the value in", tc.name, n)
		}
	}
	c.send("mg k v\r\n")
	if l := c.line(); l != "VA "+strconv.Itoa(size) {
		t.Fatalf("mg k: %q", l)
	}
	got := make([]byte, size+2)
	if _, err := ioReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:size], value) {
		t.Fatal("the value read back differs from the one set")
	}
}

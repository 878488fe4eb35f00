package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/offheap"
	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// pinnedCase is a request for the value under "k" and the reply it gets.
type pinnedCase struct {
	name string
	req  []byte
	// reply returns the whole reply to the request for value.
	reply func(value []byte) []byte
}

var pinnedCases = []pinnedCase{
	{"get", []byte("get k\r\n"), func(v []byte) []byte {
		r := fmt.Appendf(nil, "VALUE k 0 %d\r\n", len(v))
		r = append(r, v...)
		return append(r, "\r\nEND\r\n"...)
	}},
	{"mg", []byte("mg k v\r\n"), func(v []byte) []byte {
		r := fmt.Appendf(nil, "VA %d\r\n", len(v))
		r = append(r, v...)
		return append(r, "\r\n"...)
	}},
	{"binary get", binaryGetK(), func(v []byte) []byte {
		r := make([]byte, protocol.BinaryHeaderLen+4)
		r[0] = protocol.BinaryResponseMagic
		r[4] = 4
		binary.BigEndian.PutUint32(r[8:12], uint32(4+len(v)))
		return append(r, v...)
	}},
}

// binaryGetK returns a binary get of "k".
func binaryGetK() []byte {
	r := make([]byte, protocol.BinaryHeaderLen, protocol.BinaryHeaderLen+1)
	r[0] = protocol.BinaryRequestMagic
	r[1] = byte(protocol.OpGet)
	binary.BigEndian.PutUint16(r[2:4], 1)
	binary.BigEndian.PutUint32(r[8:12], 1)
	return append(r, 'k')
}

// blockedWriters returns how many of the server's connections wait for
// their socket to take a reply.
func blockedWriters(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.state.Load() == connMwrite {
			n++
		}
	}
	return n
}

// TestPinnedRepliesCostNoCopies has 12 clients ask for one chained value
// (text, meta and binary) and not read: the server holds about the value
// once, not once per client, as memcached writes from the item it holds a
// reference to. The value is then deleted and its key overwritten while
// the replies are still unwritten; each client then reads the value it
// asked for intact, and once they are done nothing stays pinned and the
// old value's chunks are free.
func TestPinnedRepliesCostNoCopies(t *testing.T) {
	const (
		size    = 8 << 20
		clients = 12
	)
	s, addr := start(t, Config{
		WriteBufMemLimit: -1, // copies would not be cut short
		Storage:          storage.Config{MemoryLimit: 128 << 20, ItemSizeMax: 16 << 20},
	})
	value := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for i := range value {
		value[i] ^= byte(i >> 12)
	}
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, value, 0); err != nil {
		t.Fatal(err)
	}
	var used0 int
	var st storage.Stats
	s.cache.ReadStats(&st)
	for _, cs := range st.Classes {
		used0 += cs.UsedChunks
	}
	base := heapInuse() + offheap.InUse()
	ncs := make([]net.Conn, clients)
	for i := range ncs {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// Not below the loopback MSS (64 KiB): the window would then
		// reopen only at the sender's backed-off probes.
		nc.(*net.TCPConn).SetReadBuffer(256 << 10)
		nc.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := nc.Write(pinnedCases[i%len(pinnedCases)].req); err != nil {
			t.Fatal(err)
		}
		ncs[i] = nc
	}
	deadline := time.Now().Add(30 * time.Second)
	for blockedWriters(s) < clients {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections blocked writing their reply", blockedWriters(s), clients)
		}
		time.Sleep(time.Millisecond)
	}
	// Copied, the replies take clients*size (96 MB); written from the
	// item, about nothing past the value already stored.
	if grown := heapInuse() + offheap.InUse() - base; grown > 3*size {
		t.Errorf("the server grew by %d MB for %d unread replies of one %d MB value", grown>>20, clients, size>>20)
	}
	if n := s.wbufs.bytes.Load(); n > 1<<20 {
		t.Errorf("write_buf_bytes %d for replies written from the item", n)
	}

	// Deleted, then overwritten with values that would reuse its chunks.
	s.cache.Delete([]byte("k"))
	for i := range 4 {
		other := bytes.Repeat([]byte{byte('A' + i)}, size)
		if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, other, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.cache.Store(storage.ModeSet, fmt.Appendf(nil, "o%d", i), 0, 0, other, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, nc := range ncs {
		pc := pinnedCases[i%len(pinnedCases)]
		want := pc.reply(value)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(nc, got); err != nil {
			t.Fatalf("client %d (%s): %v", i, pc.name, err)
		}
		if pc.name == "binary get" {
			copy(got[16:24], want[16:24]) // the CAS
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("client %d (%s): the reply differs from the value asked for", i, pc.name)
		}
		nc.Close()
	}
	deadline = time.Now().Add(30 * time.Second)
	for s.cache.PinnedItems() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d items still pinned after every reply was read", s.cache.PinnedItems())
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 4 {
		s.cache.Delete(fmt.Appendf(nil, "o%d", i))
	}
	s.cache.Delete([]byte("k"))
	s.cache.ReadStats(&st)
	for _, cs := range st.Classes {
		if cs.UsedChunks != 0 {
			t.Errorf("class %d: %d chunks in use with every item deleted (%d before the test)", cs.ID, cs.UsedChunks, used0)
		}
	}
}

// TestWriteBufWaitPinsChainedValue checks that a get that had to wait for
// room in its write buffer (goroutine mode, write_buf_mem_limit taken by
// others) still writes a chained value from its item, pinned, as it does
// without the wait: the value, three times the limit, was copied into
// the buffer once room came, so the get waited for room that could never
// come and its connection was closed.
func TestWriteBufWaitPinsChainedValue(t *testing.T) {
	s, addr := start(t, Config{
		WriteBufMemLimit: 1 << 20,
		Storage:          storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20},
	})
	if s.cfg.EventLoops > 0 {
		t.Skip("event loops count only blocked replies, and never wait")
	}
	// The replies of a1 and a2 leave less room in their 256 KiB buffer
	// than the head of k's needs, and a larger buffer counts against the
	// limit, which others hold.
	a1 := bytes.Repeat([]byte("a"), 130000)
	a2 := bytes.Repeat([]byte("b"), 132050)
	large := bytes.Repeat([]byte("0123456789abcdef"), 3<<16)
	for k, v := range map[string][]byte{"a1": a1, "a2": a2, "k": large} {
		if _, err := s.cache.Store(storage.ModeSet, []byte(k), 0, 0, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	fake := s.wbufs.limit + s.wbufs.over
	s.wbufs.bytes.Add(fake)
	t.Cleanup(func() { s.wbufs.bytes.Add(-fake) })
	c := dial(t, "tcp", addr)
	c.nc.SetDeadline(time.Now().Add(4 * waitRoomFor))
	c.send("get a1 a2 k\r\n")
	c.expect("", "VALUE a1 0 130000")
	readValue(t, c, "130000")
	c.expect("", "VALUE a2 0 132050")
	readValue(t, c, "132050")
	if l := c.line(); l != "VALUE k 0 3145728" {
		t.Fatalf("got %q for the chained value (write_buf_oom %d)", l, s.wbufs.oom.Load())
	}
	if got := readValue(t, c, "3145728"); !bytes.Equal(got, large) {
		t.Fatal("wrong value")
	}
	c.expect("", "END")
}

// TestReassignCountsPinnedAsBusy checks that a page move held up by a
// chained item whose reply a client does not read counts the item in
// slab_reassign_busy_items, as memcached counts an item it finds with
// references (1.6.18 shows over a thousand a second here), and keeps
// slab_reassign_running set while it waits; corvid reported 0.
func TestReassignCountsPinnedAsBusy(t *testing.T) {
	s, addr := start(t, Config{
		ShutdownGrace: time.Second,
		Storage:       storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 8 << 20},
	})
	// Every page of the largest class holds a chunk of k.
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, bytes.Repeat([]byte("v"), 7<<20), 0); err != nil {
		t.Fatal(err)
	}
	var st storage.Stats
	s.cache.ReadStats(&st)
	largest := st.Classes[len(st.Classes)-1].ID
	stuck, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	stuck.(*net.TCPConn).SetReadBuffer(16 << 10)
	if _, err := io.WriteString(stuck, "get k\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "k pinned", func() bool { return s.cache.PinnedItems() == 1 })
	c := dial(t, "tcp", addr)
	c.expect(fmt.Sprintf("slabs reassign %d 1\r\n", largest), "OK")
	waitFor(t, "slab_reassign_busy_items counted", func() bool {
		c.send("stats\r\n")
		busy, running := false, false
		for l := c.line(); l != "END"; l = c.line() {
			busy = busy || strings.HasPrefix(l, "STAT slab_reassign_busy_items ") && l != "STAT slab_reassign_busy_items 0"
			running = running || l == "STAT slab_reassign_running 1"
		}
		return busy && running
	})
}

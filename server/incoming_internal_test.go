package server

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// slabUse returns the bytes of the chunks in use in every class.
func slabUse(s *Server) int64 {
	var st storage.Stats
	s.cache.ReadStats(&st)
	var n int64
	for _, cs := range st.Classes {
		n += int64(cs.UsedChunks) * int64(cs.ChunkSize)
	}
	return n
}

// TestChainedSetReadIntoChunks sends most of a 16 MB set and stops: the
// value goes straight into its item's chunks, not into a read buffer of
// its size, and is not visible. The client then goes away mid-value: the
// old value stays, and every chunk the new one took is freed. A whole set
// after that is stored and reads back intact through text, meta and
// binary gets.
func TestChainedSetReadIntoChunks(t *testing.T) {
	const size = 16 << 20
	s, addr := start(t, Config{Storage: storage.Config{MemoryLimit: 128 << 20, ItemSizeMax: 32 << 20}})
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	used0, rbuf0 := slabUse(s), s.rbufs.bytes.Load()
	value := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for i := range value {
		value[i] ^= byte(i >> 10)
	}

	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	sent := size * 3 / 4
	if _, err := nc.Write(append(fmt.Appendf(nil, "set k 0 0 %d\r\n", size), value[:sent]...)); err != nil {
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
		t.Errorf("read buffers grew by %d MB for a set of %d MB", grown>>20, size>>20)
	}
	check := dial(t, "tcp", addr)
	check.send("get k\r\n")
	if l := check.line(); l != "VALUE k 0 3" {
		t.Fatalf("during the set, get k: %q, want the old value", l)
	}
	check.line()
	check.line()
	nc.Close()
	for slabUse(s) != used0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the client left mid-value: %d bytes of chunks in use, %d before", slabUse(s), used0)
		}
		time.Sleep(time.Millisecond)
	}
	check.send("get k\r\n")
	if l := check.line(); l != "VALUE k 0 3" {
		t.Fatalf("after the client left mid-value, get k: %q, want the old value", l)
	}
	check.line()
	check.line()

	// Whole, in one write and then pipelined with a get behind it.
	nc2 := dial(t, "tcp", addr)
	nc2.nc.SetDeadline(time.Now().Add(60 * time.Second))
	req := append(fmt.Appendf(nil, "set k 5 0 %d\r\n", size), value...)
	req = append(req, "\r\nget k\r\n"...)
	if _, err := nc2.nc.Write(req); err != nil {
		t.Fatal(err)
	}
	if l := nc2.line(); l != "STORED" {
		t.Fatalf("set: %q", l)
	}
	if l := nc2.line(); l != fmt.Sprintf("VALUE k 5 %d", size) {
		t.Fatalf("get: %q", l)
	}
	got := make([]byte, size+2)
	if _, err := ioReadFull(nc2, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:size], value) || string(got[size:]) != "\r\n" {
		t.Fatal("the value read back differs from the one set")
	}
	if l := nc2.line(); l != "END" {
		t.Fatalf("get ends with %q", l)
	}
	for _, pc := range pinnedCases {
		nc3 := dial(t, "tcp", addr) // binary is a connection's first byte
		nc3.nc.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := nc3.nc.Write(pc.req); err != nil {
			t.Fatal(err)
		}
		want := pc.reply(value)
		if pc.name == "get" {
			want = bytes.Replace(want, []byte("VALUE k 0 "), []byte("VALUE k 5 "), 1)
		}
		got := make([]byte, len(want))
		if n, err := ioReadFull(nc3, got); err != nil {
			t.Fatalf("%s: %v after %d bytes of %d: %q", pc.name, err, n, len(want), got[:min(n, 40)])
		}
		if pc.name == "binary get" {
			copy(got[16:24], want[16:24])
			copy(got[24:28], want[24:28]) // flags
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the reply differs from the value set", pc.name)
		}
	}

	// A value that does not end in "\r\n" is refused and frees its chunks.
	used1 := slabUse(s)
	bad := append(fmt.Appendf(nil, "set k2 0 0 %d\r\n", size), value...)
	if _, err := nc2.nc.Write(append(bad, "xy"...)); err != nil {
		t.Fatal(err)
	}
	if l := nc2.line(); l != "CLIENT_ERROR bad data chunk" {
		t.Fatalf("a value ending in xy: %q", l)
	}
	if u := slabUse(s); u != used1 {
		t.Fatalf("a refused value left %d bytes of chunks in use", u-used1)
	}
}

// ioReadFull reads len(b) bytes through the client's buffered reader.
func ioReadFull(c *client, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

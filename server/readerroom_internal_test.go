package server

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// getHits returns the cache's get_hits.
func getHits(s *Server) uint64 {
	var st storage.Stats
	s.cache.ReadStats(&st)
	var n uint64
	for _, cs := range st.Classes {
		n += cs.GetHits
	}
	return n
}

// TestWriteBufReaderRoomOnce checks that, in goroutine mode, a client
// that does not read gets the room kept for readers once, not for every
// request whose reply its socket buffers took at once: with the limit and
// its allowance held, its first 1 MiB reply may use the room, but its
// next get waits for room while that reply is still unread. A client that
// reads each reply before asking again keeps the room for every one.
func TestWriteBufReaderRoomOnce(t *testing.T) {
	copyValues(t)
	s, addr := start(t, Config{
		WriteBufMemLimit: 4 << 20,
		Storage:          storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 2 << 20},
	})
	if s.cfg.EventLoops > 0 {
		t.Skip("event loops count only blocked replies, and never wait")
	}
	value := storeBigValue(t, s)
	x := dial(t, "tcp", addr)
	x.nc.SetDeadline(time.Now().Add(60 * time.Second))
	x.expect("set small 0 0 2\r\nhi\r\n", "STORED")
	reader := dial(t, "tcp", addr)
	reader.nc.SetDeadline(time.Now().Add(60 * time.Second))
	reader.expect("get small\r\n", "VALUE small 0 2", "hi", "END")
	fillWriteRoom(t, s)

	// The reader gets each of its replies without waiting for room.
	for i := range 3 {
		reader.send("get k\r\n")
		if got, want := reader.line(), fmt.Sprintf("VALUE k 0 %d", len(value)); got != want {
			t.Fatalf("reader's get %d: %q, want %q", i, got, want)
		}
		got := make([]byte, len(value)+2)
		if _, err := io.ReadFull(reader.r, got); err != nil || !bytes.Equal(got[:len(value)], value) {
			t.Fatalf("reader's value %d: %v", i, err)
		}
		if l := reader.line(); l != "END" {
			t.Fatalf("reader's get %d ends with %q", i, l)
		}
		if n := s.wbufs.waiters.Load(); n != 0 {
			t.Fatalf("reader's get %d: %d gets waiting for room", i, n)
		}
	}

	// x never reads again: its first reply uses the room.
	hits := getHits(s)
	x.send("get k\r\n")
	waitFor(t, "x's first get", func() bool { return getHits(s) > hits })
	waitFor(t, "x's first reply to be written", func() bool {
		return s.wbufs.bytes.Load() == s.wbufs.limit+s.wbufs.over || blockedWriters(s) > 0
	})
	if blockedWriters(s) > 0 {
		t.Skip("the socket did not take a 1 MiB reply at once")
	}
	hits = getHits(s)
	x.send("get k\r\n")
	deadline := time.Now().Add(5 * time.Second)
	var hitAt time.Time
	for s.wbufs.waiters.Load() == 0 {
		// The get counts its hit before it finds no room and waits: one
		// that has counted it and still does not wait a second later was
		// answered.
		if hitAt.IsZero() && getHits(s) > hits {
			hitAt = time.Now()
		}
		if !hitAt.IsZero() && time.Since(hitAt) > time.Second {
			t.Fatalf("a client that has not read its last reply got the room kept for readers again")
		}
		if time.Now().After(deadline) {
			t.Fatal("x's second get neither waited for room nor was answered")
		}
		time.Sleep(time.Millisecond)
	}
}

package server

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// TestWriteBufAllowanceDefaultItemSize checks that a server whose
// Config leaves the item size limit at storage's default (1 MiB) has an
// allowance past write_buf_mem_limit that holds a reply of its largest
// item: computed from the 0 left in the Config, the allowance was
// limit/8, and a get of a value near 1 MiB after another value, whose
// buffer rounds up to 2 MiB, waited for room that could never come and
// was closed.
func TestWriteBufAllowanceDefaultItemSize(t *testing.T) {
	s, addr := start(t, Config{
		WriteBufMemLimit: 1 << 20,
		Storage:          storage.Config{MemoryLimit: 64 << 20},
	})
	small := bytes.Repeat([]byte("s"), 1000)
	large := bytes.Repeat([]byte("v"), 1048400) // near the 1 MiB item limit
	for k, v := range map[string][]byte{"a": small, "k": large} {
		if _, err := s.cache.Store(storage.ModeSet, []byte(k), 0, 0, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	c := dialSmall(t, addr)
	c.expect("get a k\r\n", "VALUE a 0 1000", string(small))
	if l := c.line(); l != "VALUE k 0 1048400" {
		t.Fatalf("got %q for the large value (write_buf_oom %d, allowance %d)", l, s.wbufs.oom.Load(), s.wbufs.over)
	}
	if got := readValue(t, c, "1048400"); !bytes.Equal(got, large) {
		t.Fatal("wrong value")
	}
	c.expect("", "END")
	if n := s.wbufs.oom.Load(); n != 0 {
		t.Errorf("write_buf_oom %d", n)
	}
}

// TestWriteBufWaitBounded checks that a get waiting for room for its
// reply gives up after waitRoomFor in all, however often the room it saw
// is taken by others before it can grow its buffer: each retry started a
// new wait of waitRoomFor, so a get whose room kept being taken waited
// for ever.
func TestWriteBufWaitBounded(t *testing.T) {
	copyValues(t)
	s, addr := start(t, Config{
		WriteBufMemLimit: 4 << 20,
		Storage:          storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 2 << 20},
	})
	if s.cfg.EventLoops > 0 {
		t.Skip("event loops count only blocked replies, and never wait")
	}
	storeBigValue(t, s)
	// Each time the get finds room, others take it back before it
	// grows its buffer, and give it back 50 ms later.
	fake := s.wbufs.limit + s.wbufs.over
	s.wbufs.bytes.Add(fake)
	var retries atomic.Int64
	var pending atomic.Int64 // releases scheduled and not yet run
	testHookWaitRetry = func() {
		retries.Add(1)
		s.wbufs.bytes.Add(fake)
		pending.Add(1)
		time.AfterFunc(50*time.Millisecond, func() {
			s.wbufs.bytes.Add(-fake)
			pending.Add(-1)
		})
	}
	t.Cleanup(func() {
		testHookWaitRetry = nil
		waitFor(t, "the room given back", func() bool { return pending.Load() == 0 })
		s.wbufs.bytes.Add(-fake)
	})
	c := dial(t, "tcp", addr)
	c.nc.SetDeadline(time.Now().Add(4 * waitRoomFor))
	oom := s.wbufs.oom.Load()
	c.send("get k\r\n")
	begin := time.Now()
	pending.Add(1)
	time.AfterFunc(50*time.Millisecond, func() {
		s.wbufs.bytes.Add(-fake)
		pending.Add(-1)
	})
	if b, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after %v and %d retries: read %q, %v; want the connection closed", time.Since(begin), retries.Load(), b, err)
	}
	if d := time.Since(begin); d > 3*waitRoomFor {
		t.Errorf("the get waited %v, want about %v", d, waitRoomFor)
	}
	if retries.Load() < 2 {
		t.Errorf("%d retries: the test did not take the room back", retries.Load())
	}
	if n := s.wbufs.oom.Load(); n != oom+1 {
		t.Errorf("write_buf_oom went from %d to %d", oom, n)
	}
}

// TestWriteBufWaitForWhatIsLeft checks that a get refused room for a
// value that follows others in its buffer waits for the room the value
// needs once the replies before it are written, not for the buffer it
// was refused: with 1.5 MB of room, a 900 KB value after a 200 KB one
// (a 2 MiB buffer) waited for 2 MiB that never came and was closed,
// though written alone it needs 1 MiB.
func TestWriteBufWaitForWhatIsLeft(t *testing.T) {
	s, addr := start(t, Config{
		WriteBufMemLimit: 4 << 20,
		Storage:          storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 2 << 20},
	})
	if s.cfg.EventLoops > 0 {
		t.Skip("event loops count only blocked replies, and never wait")
	}
	small := bytes.Repeat([]byte("a"), 200<<10)
	large := bytes.Repeat([]byte("k"), 900<<10)
	for k, v := range map[string][]byte{"a": small, "k": large} {
		if _, err := s.cache.Store(storage.ModeSet, []byte(k), 0, 0, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Others' replies hold all but 1.5 MB of the room.
	fake := s.wbufs.limit + s.wbufs.over - 3<<19
	s.wbufs.bytes.Add(fake)
	t.Cleanup(func() { s.wbufs.bytes.Add(-fake) })
	c := dial(t, "tcp", addr)
	c.send("get a k\r\n")
	c.expect("", "VALUE a 0 204800")
	readValue(t, c, "204800")
	if l := c.line(); l != "VALUE k 0 921600" {
		t.Fatalf("got %q for the second value (write_buf_oom %d)", l, s.wbufs.oom.Load())
	}
	if got := readValue(t, c, "921600"); !bytes.Equal(got, large) {
		t.Fatal("wrong value")
	}
	c.expect("", "END")
}

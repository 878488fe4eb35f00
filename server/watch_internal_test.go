package server

import (
	"strings"
	"testing"
)

// TestWatcherBufferBound pushes lines into a watcher's buffer that nothing
// drains, then into one whose lines are being written: as memcached, a
// line is taken only with room for itself and skipReserve more, the lines
// being written count against the size until they are out, and the first
// line taken after some were skipped is preceded by their count.
func TestWatcherBufferBound(t *testing.T) {
	var h watchHub
	w := h.add(watchFetchers, 1024)
	line := []byte(strings.Repeat("x", 99) + "\n")
	push := func(n int) {
		for range n {
			h.publish(watchFetchers, line)
		}
	}
	push(10)
	// 8 lines leave 224 bytes: too few for a ninth and skipReserve.
	if got := len(w.buf); got != 800 {
		t.Fatalf("buffered %d bytes of 10 lines, want 800", got)
	}
	out := w.take(nil)
	push(1) // the 800 bytes being written leave no room either
	if len(w.buf) != 0 {
		t.Fatalf("a line was taken while %d bytes of %d were being written", len(out), w.max)
	}
	w.done(len(out))
	push(1)
	if got, want := string(w.take(nil)), "skipped=3\n"+string(line); got != want {
		t.Errorf("after the write: %q, want %q", got, want)
	}
	if sent, skipped := h.sent.Load(), h.skipped.Load(); sent != 9 || skipped != 3 {
		t.Errorf("log_watcher_sent %d, log_watcher_skipped %d, want 9, 3", sent, skipped)
	}
	if got := h.written.Load(); got != 12 {
		t.Errorf("log_worker_written %d, want 12", got)
	}
	h.remove(w)
}

// TestWatcherWithoutBuffer checks memcached's watcher_logbuf_size=0: every
// line is skipped.
func TestWatcherWithoutBuffer(t *testing.T) {
	var h watchHub
	w := h.add(watchFetchers, -1)
	h.publish(watchFetchers, []byte("x\n"))
	if len(w.buf) != 0 || h.skipped.Load() != 1 {
		t.Errorf("buffered %q, skipped %d", w.buf, h.skipped.Load())
	}
	h.remove(w)
}

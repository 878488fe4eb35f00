package server

import (
	"strings"
	"testing"
)

// TestKlogDropsWhenFull fills a shard that nothing drains: lines past its
// capacity are dropped and counted, never blocking the caller.
func TestKlogDropsWhenFull(t *testing.T) {
	k := newKlog("", 1)
	k.max = 100
	line := []byte(strings.Repeat("x", 39) + "\n")
	for range 5 {
		k.add(7, line)
	}
	if got, want := k.logged.Load(), uint64(2); got != want {
		t.Errorf("logged %d, want %d", got, want)
	}
	if got, want := k.discarded.Load(), uint64(3); got != want {
		t.Errorf("discarded %d, want %d", got, want)
	}
	// Draining makes room again.
	if out := k.drain(nil); len(out) != 80 {
		t.Fatalf("drained %d bytes, want 80", len(out))
	}
	k.add(7, line)
	if k.logged.Load() != 3 {
		t.Fatalf("logged %d after drain, want 3", k.logged.Load())
	}
}

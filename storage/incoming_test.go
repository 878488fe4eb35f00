package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// TestIncoming reads chained values in through Incoming in small and
// odd-sized writes: stored, they read back intact in the same chunks as
// Store takes; aborted half way, or not ending in "\r\n", they leave no
// chunk in use and the old value in place.
func TestIncoming(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20, SlabChunkMax: 64 << 10})
	for _, n := range []int{64 << 10, 64<<10 + 1, 200000, 3<<20 + 7} {
		v := pattern(n, byte(n))
		in, err := c.NewIncoming(ModeSet, []byte("k"), 5, 0, n)
		if err != nil || in == nil {
			t.Fatalf("NewIncoming(%d): %v, %v", n, in, err)
		}
		src := append(bytes.Clone(v), '\r', '\n')
		for step := 1; len(src) > 0; step = step*3 + 1 {
			k, err := in.Write(src[:min(step, len(src))])
			if err != nil {
				t.Fatal(err)
			}
			src = src[k:]
		}
		if in.Left() != 0 || !in.Terminated() {
			t.Fatalf("%d bytes: left %d, terminated %v", n, in.Left(), in.Terminated())
		}
		if res, _, err := c.StoreIncoming(in, 0, MetaStoreOptions{}); res != Stored || err != nil {
			t.Fatalf("StoreIncoming: %v, %v", res, err)
		}
		if got, ok := value(c, "k"); !ok || got != string(v) {
			t.Fatalf("%d bytes: read back %d bytes (found %v)", n, len(got), ok)
		}
		got, want := usedChunks(c), wantChain(c, 1, n)
		for id, m := range want {
			if got[id] != m {
				t.Fatalf("%d bytes: used chunks %v, want %v", n, got, want)
			}
		}
	}
	old, _ := value(c, "k")
	before := usedChunks(c)
	// Aborted half way (a client gone mid-value), and not terminated.
	for _, tail := range []string{"", "xy"} {
		in, err := c.NewIncoming(ModeSet, []byte("k"), 0, 0, 1<<20)
		if err != nil || in == nil {
			t.Fatalf("NewIncoming: %v, %v", in, err)
		}
		in.Write(pattern(600<<10, 1))
		if tail != "" {
			in.Write(pattern(1<<20-600<<10, 2))
			in.Write([]byte(tail))
			if in.Left() != 0 || in.Terminated() {
				t.Fatal("a value ending in xy is taken as terminated")
			}
		}
		in.Abort()
		got := usedChunks(c)
		if len(got) != len(before) {
			t.Fatalf("used chunks %v after Abort, want %v", got, before)
		}
		for id, m := range before {
			if got[id] != m {
				t.Fatalf("used chunks %v after Abort, want %v", got, before)
			}
		}
		if got, _ := value(c, "k"); got != old {
			t.Fatal("the old value changed")
		}
	}
	if in, err := c.NewIncoming(ModeSet, []byte("small"), 0, 0, 100); in != nil || err != nil {
		t.Fatalf("NewIncoming of a small value: %v, %v; want nil, nil", in, err)
	}
	checkChains(t, c, map[string][]byte{"k": nil})
}

// TestIncomingNeverEvicts fills a cache and asks for an Incoming: there
// is no free memory for its chunks, so it is refused (nil, the value to
// be stored as usual) and nothing stored is evicted for it.
func TestIncomingNeverEvicts(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 8 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10})
	for i := 0; stats(c).Evictions == 0 && i < 1000; i++ {
		mustSet(t, c, fmt.Sprint("k", i), string(pattern(300<<10, byte(i))))
	}
	before := stats(c)
	for range 10 {
		if in, err := c.NewIncoming(ModeSet, []byte("new"), 0, 0, 1<<20); in != nil || err != nil {
			t.Fatalf("NewIncoming in a full cache: %v, %v; want nil, nil", in, err)
		}
	}
	after := stats(c)
	if after.Evictions != before.Evictions || after.CurrItems != before.CurrItems {
		t.Fatalf("items %d -> %d, evictions %d -> %d: an Incoming evicted", before.CurrItems, after.CurrItems, before.Evictions, after.Evictions)
	}
}

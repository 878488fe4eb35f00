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

// TestIncomingAppendPrepend reads the value of appends and prepends in
// through Incoming, onto small and chained old values, and checks that
// each stores what Store stores, in the same chunks, leaving no chunk of
// the value read in behind; a missing key or another CAS is refused
// with the same chunks in use as before.
func TestIncomingAppendPrepend(t *testing.T) {
	cfg := Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20, SlabChunkMax: 64 << 10}
	in, st := chainCache(t, cfg), chainCache(t, cfg)
	readIn := func(mode StoreMode, key string, v []byte, cas uint64) (StoreResult, error) {
		t.Helper()
		inc, err := in.NewIncoming(mode, []byte(key), 3, 0, len(v))
		if err != nil || inc == nil {
			t.Fatalf("NewIncoming(%d bytes): %v, %v", len(v), inc, err)
		}
		src := append(bytes.Clone(v), '\r', '\n')
		for step := 7; len(src) > 0; step = step*5 + 3 {
			k, err := inc.Write(src[:min(step, len(src))])
			if err != nil {
				t.Fatal(err)
			}
			src = src[k:]
		}
		res, _, err := in.StoreIncoming(inc, cas, MetaStoreOptions{})
		return res, err
	}
	for _, mode := range []StoreMode{ModeAppend, ModePrepend} {
		for _, olen := range []int{0, 100, 64<<10 - 100, 200000} {
			for _, n := range []int{64<<10 + 1, 200000, 1<<20 + 7} {
				key := fmt.Sprintf("k%d_%d_%d", mode, olen, n)
				old, v := pattern(olen, 1), pattern(n, byte(n))
				for _, c := range []*Cache{in, st} {
					if _, err := c.Store(ModeSet, []byte(key), 9, 0, old, 0); err != nil {
						t.Fatal(err)
					}
				}
				want, err := st.Store(mode, []byte(key), 3, 0, v, 0)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readIn(mode, key, v, 0)
				if got != want || err != nil {
					t.Fatalf("%s: %v, %v; Store: %v", key, got, err, want)
				}
				gv, _ := value(in, key)
				wv, _ := value(st, key)
				if gv != wv {
					t.Fatalf("%s: %d bytes read back, Store's %d", key, len(gv), len(wv))
				}
				if g, w := usedChunks(in), usedChunks(st); fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("%s: used chunks %v, Store's %v", key, g, w)
				}
			}
		}
	}
	before := fmt.Sprint(usedChunks(in))
	v := pattern(300000, 7)
	if res, err := readIn(ModeAppend, "missing", v, 0); res != NotStored || err != nil {
		t.Fatalf("append to a missing key: %v, %v", res, err)
	}
	key := fmt.Sprintf("k%d_%d_%d", ModeAppend, 100, 200000)
	if res, err := readIn(ModePrepend, key, v, 12345); res != Exists || err != nil {
		t.Fatalf("prepend with another CAS: %v, %v", res, err)
	}
	if after := fmt.Sprint(usedChunks(in)); after != before {
		t.Fatalf("refused appends left chunks in use: %s, before %s", after, before)
	}
}

package storage

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPrefetchWhileTheIndexChanges prefetches batches of keys while other
// goroutines insert (growing the table through several expansions) and
// delete: Prefetch reads the index without locks, so it must never fault
// on a table an expansion replaced, and it must change no result.
func TestPrefetchWhileTheIndexChanges(t *testing.T) {
	if raceEnabled {
		t.Skip("Prefetch does nothing under the race detector")
	}
	c := newCache(t, Config{NoCrawler: true, HashPowerInit: 12, MemoryLimit: 64 << 20})
	// 1.5 × 2^power items start an expansion, so 66,667 live items make
	// three or four, depending on how far the expander keeps up.
	const n = 100000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "prefetch:%d", i)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; !done.Load(); i = (i + 7) % n {
				c.Prefetch(keys[i:min(i+PrefetchBatch, n)])
				c.Prefetch([][]byte{[]byte("absent"), keys[(i*31)%n]})
			}
		})
	}
	val := []byte("0123456789")
	for i, k := range keys {
		if _, err := c.Store(ModeSet, k, uint32(i), 0, val, 0); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			c.Delete(keys[i/2])
		}
	}
	for range 500 { // let the last expansion finish while Prefetch runs
		if c.hashPower.Load() >= 15 && !c.hashExpanding.Load() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	done.Store(true)
	wg.Wait()

	if p := c.hashPower.Load(); p < 15 {
		t.Fatalf("hash power %d: the table did not grow enough to test expansions", p)
	}
	if runtime.GOOS == "linux" && len(c.retired) == 0 {
		t.Fatal("no replaced table was kept mapped for Prefetch")
	}
	deleted := map[int]bool{}
	for i := 0; i < n; i += 3 {
		deleted[i/2] = true
	}
	for i, k := range keys {
		c.Prefetch(keys[i:min(i+PrefetchBatch, n)])
		it, ok := lookup(c, string(k))
		if ok == deleted[i] || (ok && it.Flags != uint32(i)) {
			t.Fatalf("key %d: found %v (flags %d), deleted %v", i, ok, it.Flags, deleted[i])
		}
	}
}

func TestPrefetchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := newCache(t, Config{NoCrawler: true})
	keys := benchKeys(40)
	for _, k := range keys[:20] {
		c.Store(ModeSet, k, 0, 0, k, 0)
	}
	if a := testing.AllocsPerRun(1000, func() { c.Prefetch(keys) }); a != 0 {
		t.Fatalf("Prefetch allocates %.1f times", a)
	}
}

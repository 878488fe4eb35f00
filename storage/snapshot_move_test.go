package storage

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// oldValue is the value TestSnapshotWhilePagesMove stores under old:i.
// Values of two sizes keep the items in two classes, between which the
// pages move.
func oldValue(i int) string {
	return strings.Repeat(string(rune('a'+i%26)), 300+(i%2)*600+i%7)
}

// snapshotItems reads a snapshot into a map of key to value.
func snapshotItems(t *testing.T, b []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	_, err := scanSnapshot(bytes.NewReader(b), nil, func(_ snapRecord, key, value []byte) error {
		got[string(key)] = string(value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestSnapshotWhilePagesMove saves caches while the mover keeps moving
// pages between classes (rescuing their items into free chunks elsewhere
// in the class), the automover and crawler run, and stores of new keys
// across classes evict and steal pages. Nothing adds an old item during
// the save and every move only keeps or drops one, so an old item present
// after the save was present throughout it and must be in the snapshot
// with its value; an old item in the snapshot must have been there before.
func TestSnapshotWhilePagesMove(t *testing.T) {
	rounds, keys := 8, 14000
	if raceEnabled || testing.Short() {
		rounds, keys = 3, 7000
	}
	for round := range rounds {
		c := newCache(t, Config{MemoryLimit: int64(keys) * 1200, SlabAutomove: 2, CrawlInterval: 1e6})
		for i := range keys {
			mustStore(t, c, ModeSet, fmt.Sprint("old:", i), oldValue(i), 0, 0, 0)
		}
		for i := 0; i < keys; i += 4 {
			c.Delete([]byte(fmt.Sprint("old:", i))) // free chunks for rescues
		}
		before := map[string]string{}
		for i := range keys {
			if v, ok := value(c, fmt.Sprint("old:", i)); ok {
				before[fmt.Sprint("old:", i)] = v
			}
		}

		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // page moves, as fast as the mover takes them
			defer wg.Done()
			a, b := c.classFor(c.ntotal(9, 300)), c.classFor(c.ntotal(9, 906))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 1 {
					a, b = b, a
				}
				c.Reassign(a, b)
				runtime.Gosched()
			}
		}()
		go func() { // new items across classes: evictions and steals
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.Store(ModeSet, []byte(fmt.Sprint("new:", i)), 0, 0, []byte(oldValue(i*31)), 0)
			}
		}()
		// Save once the mover is busy.
		moved := c.slabsMoved.Load()
		waitFor(t, "pages to move", func() bool { return c.slabsMoved.Load() >= moved+2 })
		var buf bytes.Buffer
		_, err := c.Save(&buf)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}

		saved := snapshotItems(t, buf.Bytes())
		missing := 0
		for i := range keys {
			key := fmt.Sprint("old:", i)
			if v, ok := value(c, key); ok && saved[key] != v {
				if missing++; missing <= 3 {
					t.Errorf("round %d: %s present throughout the save, snapshot has %d bytes, want %d",
						round, key, len(saved[key]), len(v))
				}
			}
		}
		for key, v := range saved {
			var i int
			switch {
			case strings.HasPrefix(key, "old:"):
				if before[key] != v {
					t.Errorf("round %d: snapshot has %s (%d bytes), absent or different before the save", round, key, len(v))
				}
			case strings.HasPrefix(key, "new:"):
				fmt.Sscan(key[4:], &i)
				if v != oldValue(i*31) {
					t.Errorf("round %d: snapshot has %s with a value never stored", round, key)
				}
			default:
				t.Errorf("round %d: snapshot has unknown key %q", round, key)
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d items present throughout the save are missing from the snapshot (%d moves)",
				round, missing, c.slabsMoved.Load())
		}
		checkConsistency(t, c)
	}
}

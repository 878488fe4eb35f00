package storage

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestSnapshotKeepsPendingFlush checks that a delayed "flush_all N" still
// pending at the save flushes the saved items at its time after a load, as
// memcached's restart keeps oldest_live: lost, the items it was to
// invalidate were served on after a warm restart, indefinitely.
func TestSnapshotKeepsPendingFlush(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableCAS=%v", noCAS), func(t *testing.T) {
			clk := newFakeClock()
			src := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			mustStore(t, src, ModeSet, "forever", "v", 0, 0, 0)
			mustStore(t, src, ModeSet, "long", "v", 0, 600, 0)
			mustStore(t, src, ModeSet, "short", "v", 0, 30, 0)
			src.FlushAll(60)
			mustStore(t, src, ModeSet, "after", "v", 0, 0, 0) // also before the flush's time
			var buf bytes.Buffer
			if _, err := src.Save(&buf); err != nil {
				t.Fatal(err)
			}
			keys := []string{"forever", "long", "short", "after"}

			// Loaded before the flush's time: served until then.
			clk.Advance(10 * time.Second)
			dst := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if _, ok := readItem(t, dst, k); !ok {
					t.Errorf("%s missing before the flush's time", k)
				}
			}
			clk.Advance(55 * time.Second)
			for _, k := range keys {
				if _, ok := readItem(t, dst, k); ok {
					t.Errorf("%s served after the flush's time", k)
				}
			}

			// Loaded after it: nothing.
			late := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			st, err := late.load(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if st.Items != 0 {
				t.Errorf("loaded %d items after the flush's time", st.Items)
			}
		})
	}
}

// TestSnapshotKeepsPendingFlushForNewItems checks that a delayed
// "flush_all N" still pending at the save also invalidates, at its time,
// the items stored after the load, as it would have without the restart:
// memcached's restart keeps oldest_live itself, not only its effect on the
// saved items.
func TestSnapshotKeepsPendingFlushForNewItems(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableCAS=%v", noCAS), func(t *testing.T) {
			clk := newFakeClock()
			src := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			src.FlushAll(60)
			var buf bytes.Buffer
			if _, err := src.Save(&buf); err != nil {
				t.Fatal(err)
			}
			clk.Advance(10 * time.Second)
			dst := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			mustStore(t, dst, ModeSet, "new", "v", 0, 0, 0)
			clk.Advance(20 * time.Second)
			if _, ok := readItem(t, dst, "new"); !ok {
				t.Fatal("item stored after the load missing before the flush's time")
			}
			clk.Advance(35 * time.Second)
			if _, ok := readItem(t, dst, "new"); ok {
				t.Error("item stored after the load, before the pending flush's time, served after it")
			}
			// One stored after the flush's time stays.
			mustStore(t, dst, ModeSet, "later", "v", 0, 0, 0)
			clk.Advance(5 * time.Second)
			if _, ok := readItem(t, dst, "later"); !ok {
				t.Error("item stored after the flush's time missing")
			}
		})
	}
}

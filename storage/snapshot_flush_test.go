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

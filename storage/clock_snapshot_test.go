package storage

import (
	"bytes"
	"testing"
	"time"
)

// TestSnapshotKeepsTTLAcrossWallStep steps the wall clock an hour forward
// while a cache runs, saves it, and loads the snapshot into a cache started
// after the step: the item keeps its remaining time, as in memcached, whose
// restart carries its clock over (the saved current_time plus the wall time
// spent stopped) instead of reading item times against the new wall clock.
func TestSnapshotKeepsTTLAcrossWallStep(t *testing.T) {
	clk := newFakeClock()
	src := newCache(t, Config{Clock: clk, NoCrawler: true})
	mustStore(t, src, ModeSet, "k", "v", 0, 2*3600, 0)
	clk.StepWall(time.Hour)
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	dst := newCache(t, Config{Clock: clk, NoCrawler: true})
	if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	var ttl int64 = -2
	if !dst.MetaDebug([]byte("k"), func(e MetaEntry) { ttl = e.TTL() }) {
		t.Fatal("item not restored")
	}
	if ttl != 2*3600 {
		t.Fatalf("TTL after the restart %d, want %d", ttl, 2*3600)
	}
}

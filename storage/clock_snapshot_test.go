package storage

import (
	"bytes"
	"errors"
	"path/filepath"
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

// TestSnapshotClockBackStartsCold sets the wall clock back an hour while
// the server is down: read against it, the saved exptimes would keep an
// item an hour past its time. As memcached, which restarts cold when the
// clock reads no later than its stop time, the snapshot is not loaded.
func TestSnapshotClockBackStartsCold(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "snap")
	src := newCache(t, Config{Clock: clk, NoCrawler: true})
	mustStore(t, src, ModeSet, "k", "v", 0, 100, 0)
	if _, err := src.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	clk.StepWall(-time.Hour)
	clk.Advance(10 * time.Second)
	dst := newCache(t, Config{Clock: clk, NoCrawler: true})
	st, err := dst.LoadFile(path)
	if !errors.Is(err, ErrSnapshotClock) || st.Items != 0 {
		t.Errorf("LoadFile after the clock went back: %+v, %v; want no item and ErrSnapshotClock", st, err)
	}
	clk.Advance(200 * time.Second)
	if _, ok := readItem(t, dst, "k"); ok {
		t.Fatal("item with 100 s to live served 210 s after the save")
	}
}

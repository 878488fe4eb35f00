package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// TestSnapshotKeepsCASCounter deletes the item holding the newest CAS
// unique before a save: after the load, a new version of its key must not
// get that unique again, or a client holding it from before the restart
// would overwrite a value it never read (memcached's restart keeps its
// CAS counter, current_cas).
func TestSnapshotKeepsCASCounter(t *testing.T) {
	src, _ := newFakeCache(t)
	mustSet(t, src, "other", "x")
	_, stale, err := src.StoreCAS(ModeSet, []byte("k"), 0, 0, []byte("old"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if res := src.Delete([]byte("k")); res != Stored {
		t.Fatalf("delete = %v", res)
	}
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	dst, _ := newFakeCache(t)
	if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	_, cas, err := dst.StoreCAS(ModeSet, []byte("k"), 0, 0, []byte("new"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if cas <= stale {
		t.Errorf("cas of the new k after the load %d, want above %d, given out before the save", cas, stale)
	}
	if res := mustStore(t, dst, ModeCAS, "k", "stale write", 0, 0, stale); res != Exists {
		t.Errorf("cas with the unique of the deleted k = %v, want Exists", res)
	}
}

// v1Snapshot returns a version 1 snapshot, the format before the CAS
// counter, the pending flush and the marks: one item, key k, value v, CAS
// unique cas, and an end record whose CAS field is endCAS.
func v1Snapshot(savedAt int64, cas, endCAS uint64) []byte {
	b := []byte(snapMagic)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, snapFlagCAS)
	b = binary.LittleEndian.AppendUint64(b, uint64(savedAt))
	b = binary.LittleEndian.AppendUint32(b, 1) // value length
	b = binary.LittleEndian.AppendUint32(b, 9) // flags
	b = binary.LittleEndian.AppendUint64(b, 0) // exptime
	b = binary.LittleEndian.AppendUint64(b, cas)
	b = append(b, 1, 'k', 'v')
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint64(b, endCAS)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint64(b, 1) // record count
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, snapTable))
}

// TestSnapshotLoadsVersion1 loads a snapshot in the format before the CAS
// counter was saved: its end record holds no counter, and new uniques
// continue after the largest one it holds.
func TestSnapshotLoadsVersion1(t *testing.T) {
	clk := newFakeClock()
	dst := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	st, err := dst.load(bytes.NewReader(v1Snapshot(clk.Now().Unix(), 40, 0)))
	if err != nil || st.Items != 1 {
		t.Fatalf("load of a version 1 snapshot: %+v, %v", st, err)
	}
	// It holds no last access and no marks: the item is as just stored.
	if a := accessOf(t, dst, clk, "k"); a != (access{last: clk.Now().Unix()}) {
		t.Fatalf("k after the load: %+v, want accessed now, never fetched", a)
	}
	if got, ok := readItem(t, dst, "k"); !ok || got != (snapItem{"v", 9, 0, 40}) {
		t.Fatalf("k after the load %+v (found %v), want v, flags 9, cas 40", got, ok)
	}
	if _, cas, err := dst.StoreCAS(ModeSet, []byte("n"), 0, 0, []byte("v"), 0); err != nil || cas <= 40 {
		t.Fatalf("new item's cas %d (err %v), want above 40", cas, err)
	}
	// A version 1 end record with a counter is damage.
	if err := CheckSnapshot(bytes.NewReader(v1Snapshot(clk.Now().Unix(), 40, 7))); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("version 1 end record with a counter: %v, want ErrBadSnapshot", err)
	}
}

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

// TestSnapshotLoadsVersion1 loads a snapshot in the format before the CAS
// counter was saved: its end record holds no counter, and new uniques
// continue after the largest one it holds.
func TestSnapshotLoadsVersion1(t *testing.T) {
	src, _ := newFakeCache(t)
	_, kept, err := src.StoreCAS(ModeSet, []byte("k"), 0, 0, []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	binary.LittleEndian.PutUint32(b[8:], 1)
	end := len(b) - 4 - 8 - snapRecordSize
	binary.LittleEndian.PutUint64(b[end+16:], 0)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], snapTable))
	dst, _ := newFakeCache(t)
	st, err := dst.load(bytes.NewReader(b))
	if err != nil || st.Items != 1 {
		t.Fatalf("load of a version 1 snapshot: %+v, %v", st, err)
	}
	if got, ok := readItem(t, dst, "k"); !ok || got.value != "v" || got.cas != kept {
		t.Fatalf("k after the load %+v (found %v), want v with cas %d", got, ok, kept)
	}
	// A version 1 end record with a counter is damage.
	binary.LittleEndian.PutUint64(b[end+16:], 7)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], snapTable))
	if err := CheckSnapshot(bytes.NewReader(b)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("version 1 end record with a counter: %v, want ErrBadSnapshot", err)
	}
}

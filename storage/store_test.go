package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestStoreModes(t *testing.T) {
	tests := []struct {
		name      string
		existing  bool // "k" holds "old" with flags 7, exptime 1000
		mode      StoreMode
		badCAS    bool // send a CAS that does not match
		goodCAS   bool // send the item's CAS
		want      StoreResult
		wantValue string // "" = missing
		wantFlags uint32
	}{
		{"set missing", false, ModeSet, false, false, Stored, "new", 3},
		{"set existing", true, ModeSet, false, false, Stored, "new", 3},
		{"add missing", false, ModeAdd, false, false, Stored, "new", 3},
		{"add existing", true, ModeAdd, false, false, NotStored, "old", 7},
		{"replace missing", false, ModeReplace, false, false, NotStored, "", 0},
		{"replace existing", true, ModeReplace, false, false, Stored, "new", 3},
		{"append missing", false, ModeAppend, false, false, NotStored, "", 0},
		{"append existing", true, ModeAppend, false, false, Stored, "oldnew", 7},
		{"prepend missing", false, ModePrepend, false, false, NotStored, "", 0},
		{"prepend existing", true, ModePrepend, false, false, Stored, "newold", 7},
		{"append good cas", true, ModeAppend, false, true, Stored, "oldnew", 7},
		{"append bad cas", true, ModeAppend, true, false, Exists, "old", 7},
		{"cas missing", false, ModeCAS, true, false, NotFound, "", 0},
		{"cas missing zero", false, ModeCAS, false, false, NotFound, "", 0},
		{"cas match", true, ModeCAS, false, true, Stored, "new", 3},
		{"cas mismatch", true, ModeCAS, true, false, Exists, "old", 7},
		{"cas zero on existing", true, ModeCAS, false, false, Exists, "old", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFakeCache(t)
			var cas uint64
			if tt.existing {
				mustStore(t, c, ModeSet, "k", "old", 7, 1000, 0)
				it, _ := lookup(c, "k")
				cas = it.CAS
				if it.Exptime == 0 {
					t.Fatal("exptime not kept")
				}
			}
			var send uint64
			switch {
			case tt.badCAS:
				send = cas + 100
			case tt.goodCAS:
				send = cas
			}
			res := mustStore(t, c, tt.mode, "k", "new", 3, 0, send)
			if res != tt.want {
				t.Fatalf("result = %v, want %v", res, tt.want)
			}
			it, ok := lookup(c, "k")
			switch {
			case tt.wantValue == "" && ok:
				t.Fatalf("item present: %q", it.Value)
			case tt.wantValue != "" && !ok:
				t.Fatal("item missing")
			case ok && (string(it.Value) != tt.wantValue || it.Flags != tt.wantFlags):
				t.Fatalf("item = %q flags %d, want %q flags %d", it.Value, it.Flags, tt.wantValue, tt.wantFlags)
			}
			if ok && tt.existing && (tt.mode == ModeAppend || tt.mode == ModePrepend) && res == Stored && it.Exptime == 0 {
				t.Fatal("append/prepend lost the exptime")
			}
		})
	}
}

func TestCASChangesOnEveryModification(t *testing.T) {
	c, _ := newFakeCache(t)
	seen := map[uint64]string{}
	check := func(op string) {
		t.Helper()
		it, ok := lookup(c, "k")
		if !ok {
			t.Fatalf("%s: item missing", op)
		}
		if it.CAS == 0 {
			t.Fatalf("%s: CAS is 0", op)
		}
		if prev, dup := seen[it.CAS]; dup {
			t.Fatalf("%s: CAS %d already given by %s", op, it.CAS, prev)
		}
		seen[it.CAS] = op
	}
	mustSet(t, c, "k", "1")
	check("set")
	mustSet(t, c, "k", "2")
	check("set again")
	mustStore(t, c, ModeReplace, "k", "3", 0, 0, 0)
	check("replace")
	mustStore(t, c, ModeAppend, "k", "4", 0, 0, 0)
	check("append")
	mustStore(t, c, ModePrepend, "k", "5", 0, 0, 0)
	check("prepend")
	c.Incr([]byte("k"), 1, false)
	check("incr")
	c.Incr([]byte("k"), 1, true)
	check("decr")
	c.Incr([]byte("k"), 1000000, false)
	check("incr longer")
	it, _ := lookup(c, "k")
	if res := mustStore(t, c, ModeCAS, "k", "6", 0, 0, it.CAS); res != Stored {
		t.Fatalf("cas = %v", res)
	}
	check("cas")

	// touch and gat do not change the CAS, as in memcached.
	it, _ = lookup(c, "k")
	c.Touch([]byte("k"), 100)
	c.GetAndTouch([]byte("k"), 200, nil)
	if it2, _ := lookup(c, "k"); it2.CAS != it.CAS {
		t.Fatalf("touch changed CAS %d -> %d", it.CAS, it2.CAS)
	}

	// Uniques grow across keys.
	mustSet(t, c, "other", "x")
	o, _ := lookup(c, "other")
	if o.CAS <= it.CAS {
		t.Fatalf("CAS of a later store %d <= %d", o.CAS, it.CAS)
	}
}

func TestStoreCASReturnsUnique(t *testing.T) {
	c, _ := newFakeCache(t)
	res, cas, err := c.StoreCAS(ModeSet, []byte("k"), 0, 0, []byte("v"), 0)
	if err != nil || res != Stored || cas == 0 {
		t.Fatalf("StoreCAS = %v, %d, %v", res, cas, err)
	}
	if it, _ := lookup(c, "k"); it.CAS != cas {
		t.Fatalf("item CAS %d, StoreCAS said %d", it.CAS, cas)
	}
	res, cas2, _ := c.StoreCAS(ModeAdd, []byte("k"), 0, 0, []byte("v"), 0)
	if res != NotStored || cas2 != 0 {
		t.Fatalf("add existing = %v, %d", res, cas2)
	}
}

func TestDisableCAS(t *testing.T) {
	c := newCache(t, Config{DisableCAS: true, NoCrawler: true})
	mustSet(t, c, "k", "v")
	it, _ := lookup(c, "k")
	if it.CAS != 0 {
		t.Fatalf("CAS = %d with DisableCAS", it.CAS)
	}
	// memcached -C: cas always fails with EXISTS on a present key.
	if res := mustStore(t, c, ModeCAS, "k", "w", 0, 0, 1); res != Exists {
		t.Fatalf("cas = %v, want Exists", res)
	}
	if res := mustStore(t, c, ModeCAS, "missing", "w", 0, 0, 1); res != NotFound {
		t.Fatalf("cas missing = %v, want NotFound", res)
	}
	if v, _ := value(c, "k"); v != "v" {
		t.Fatalf("value = %q", v)
	}
	if v, res := c.Incr([]byte("n"), 1, false); res != NotFound || v != 0 {
		t.Fatalf("incr missing = %d %v", v, res)
	}
}

func TestDeleteAndUnlink(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "k", "v")
	if res := c.Delete([]byte("k")); res != Stored {
		t.Fatalf("delete = %v", res)
	}
	if res := c.Delete([]byte("k")); res != NotFound {
		t.Fatalf("second delete = %v", res)
	}
	mustSet(t, c, "u", "v")
	if !c.Unlink([]byte("u")) || c.Unlink([]byte("u")) {
		t.Fatal("Unlink results wrong")
	}
	s := stats(c)
	if s.DeleteMisses != 1 || sumClass(s, func(cs ClassStats) uint64 { return cs.DeleteHits }) != 1 {
		t.Fatalf("delete_misses %d, delete_hits %d; want 1, 1 (Unlink does not count)",
			s.DeleteMisses, sumClass(s, func(cs ClassStats) uint64 { return cs.DeleteHits }))
	}
	if s.CurrItems != 0 {
		t.Fatalf("curr_items = %d", s.CurrItems)
	}

	mustSet(t, c, "d", "v")
	it, _ := lookup(c, "d")
	if res := c.DeleteCAS([]byte("d"), it.CAS+1); res != Exists {
		t.Fatalf("DeleteCAS mismatch = %v", res)
	}
	if res := c.DeleteCAS([]byte("d"), it.CAS); res != Stored {
		t.Fatalf("DeleteCAS match = %v", res)
	}
}

func sumClass(s Stats, f func(ClassStats) uint64) uint64 {
	var n uint64
	for _, cs := range s.Classes {
		n += f(cs)
	}
	return n
}

func TestTooLarge(t *testing.T) {
	c, _ := newFakeCache(t)
	// memcached's limit: 48-byte header + key + 1 + value + 2 + CAS 8
	// (+4 with flags) <= item_size_max.
	maxVal := 1<<20 - 48 - 1 - 1 - 2 - 8
	if !c.ItemFits(1, maxVal) || c.ItemFits(1, maxVal+1) {
		t.Fatalf("ItemFits boundary wrong at %d", maxVal)
	}
	if _, err := c.Store(ModeSet, []byte("k"), 0, 0, make([]byte, maxVal), 0); err != nil {
		t.Fatalf("largest value: %v", err)
	}
	if v, ok := value(c, "k"); !ok || len(v) != maxVal {
		t.Fatalf("largest value not stored (%d bytes)", len(v))
	}
	// A failed set removes the old value.
	_, err := c.Store(ModeSet, []byte("k"), 0, 0, make([]byte, maxVal+1), 0)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, ok := value(c, "k"); ok {
		t.Fatal("failed set left the old value")
	}
	// Flags take 4 bytes.
	if _, err := c.Store(ModeAdd, []byte("k"), 1, 0, make([]byte, maxVal), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("with flags: err = %v, want ErrTooLarge", err)
	}
	// Append beyond the limit is NOT_STORED, as in memcached.
	mustSet(t, c, "a", strings.Repeat("x", 1000))
	res, err := c.Store(ModeAppend, []byte("a"), 0, 0, make([]byte, maxVal-500), 0)
	if err != nil || res != NotStored {
		t.Fatalf("append too large = %v, %v", res, err)
	}
	if _, err := c.Store(ModeSet, []byte(strings.Repeat("k", KeyMaxLength+1)), 0, 0, nil, 0); !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("long key: %v", err)
	}
}

// TestLargeItemsClass: memcached's largest class is slab_chunk_max; an
// item larger than that is counted there. Its chunks are memcached's: a
// 700 KiB value takes one slab_chunk_max chunk, its last 188 KiB a chunk
// of the smallest class that holds them, and its header a small chunk.
func TestLargeItemsClass(t *testing.T) {
	c, _ := newFakeCache(t)
	cls := c.Classes()
	last := cls[len(cls)-1]
	if last.ChunkSize != 512<<10 || last.ChunksPerPage != 2 {
		t.Fatalf("last class = %+v", last)
	}
	v := strings.Repeat("v", 700<<10)
	mustSet(t, c, "big", v)
	if got, _ := value(c, "big"); got != v {
		t.Fatal("large value corrupted")
	}
	s := stats(c)
	if len(s.Classes) != len(cls) {
		t.Fatalf("%d classes in stats, %d in the table", len(s.Classes), len(cls))
	}
	if cs := s.Classes[last.ID-1]; cs.Number != 1 || cs.TotalPages != 1 || cs.TotalChunks != 2 || cs.UsedChunks != 1 {
		t.Fatalf("largest class stats %+v", cs)
	}
	if s.ActiveSlabs != 3 {
		t.Fatalf("active slabs %d, want 3 (the header's, the tail's and the largest)", s.ActiveSlabs)
	}
}

func TestEmptyValueAndBinary(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "e", "")
	if v, ok := value(c, "e"); !ok || v != "" {
		t.Fatalf("empty value = %q %v", v, ok)
	}
	bin := "a\r\nb\x00c"
	mustSet(t, c, "b", bin)
	if v, _ := value(c, "b"); v != bin {
		t.Fatalf("binary value = %q", v)
	}
}

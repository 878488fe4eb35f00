package storage

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestEvictionOrder(t *testing.T) {
	c, _ := func() (*Cache, *fakeClock) {
		clk := newFakeClock()
		return newCache(t, Config{Now: clk.Now, NoCrawler: true, MemoryLimit: 2 << 20}), clk
	}()
	val := strings.Repeat("v", 1000)
	key := func(i int) string { return fmt.Sprintf("k%04d", i) }
	cls := c.classFor(c.ntotal(len(key(0)), len(val)))
	capacity := 2 * c.classes[cls].perslab // both pages go to this class
	for i := 0; i < capacity; i++ {
		mustSet(t, c, key(i), val)
	}
	if s := stats(c); s.Evictions != 0 || s.CurrItems != uint64(capacity) {
		t.Fatalf("before: evictions %d items %d, want 0 %d", s.Evictions, s.CurrItems, capacity)
	}
	// Two fetches make k0000 ACTIVE (memcached needs two: the first only
	// marks it fetched); one fetch of k0005 does not protect it.
	value(c, key(0))
	value(c, key(0))
	value(c, key(5))
	const more = 20
	for i := capacity; i < capacity+more; i++ {
		mustSet(t, c, key(i), val)
	}
	if _, ok := value(c, key(0)); !ok {
		t.Fatal("active item was evicted")
	}
	for i := 1; i <= more; i++ {
		if _, ok := value(c, key(i)); ok {
			t.Fatalf("%s (least recently used) survived", key(i))
		}
	}
	for i := more + 1; i < capacity+more; i++ {
		if _, ok := value(c, key(i)); !ok {
			t.Fatalf("%s was evicted out of order", key(i))
		}
	}
	s := stats(c)
	cs := s.Classes[cls-1]
	if s.Evictions != more || cs.Evicted != more || cs.EvictedUnfetched != more-1 || s.CurrItems != uint64(capacity) {
		t.Fatalf("evictions %d (class %d) unfetched %d items %d", s.Evictions, cs.Evicted, cs.EvictedUnfetched, s.CurrItems)
	}
	if cs.EvictedTime != 0 || cs.OutOfMemory != 0 {
		t.Fatalf("evicted_time %d outofmemory %d", cs.EvictedTime, cs.OutOfMemory)
	}
}

func TestMemoryBound(t *testing.T) {
	const limit = 32 << 20
	c := newCache(t, Config{MemoryLimit: limit, NoCrawler: true})
	rng := rand.New(rand.NewPCG(1, 2))
	present, checks := 0, 0
	stores := 20000
	if raceEnabled {
		stores = 1000
	}
	for i := 0; i < stores; i++ {
		// Log-uniform sizes from 1 byte to 1 MiB: every class is hit.
		n := int(math.Exp2(rng.Float64() * 20))
		if !c.ItemFits(10, n) {
			n = 1000
		}
		key := fmt.Sprintf("key%05d", rng.IntN(20000))
		v := strings.Repeat(key[3:], n/5+1)[:n]
		if _, err := c.Store(ModeSet, []byte(key), 0, 0, []byte(v), 0); err != nil {
			t.Fatalf("store %d (%d bytes): %v", i, n, err)
		}
		if i%97 == 0 {
			checks++
			if got, ok := value(c, key); ok {
				present++
				if got != v {
					t.Fatalf("%s corrupted", key)
				}
			}
			if s := stats(c); s.TotalMalloced > uint64(memBound(t, c, limit)) {
				t.Fatalf("malloced %d over limit %d and first pages", s.TotalMalloced, limit)
			}
		}
	}
	s := stats(c)
	var pages uint64
	for _, cs := range s.Classes {
		pages += uint64(cs.TotalPages) * uint64(max(cs.ChunkSize*cs.ChunksPerPage, SlabPageSize))
	}
	if bound := uint64(memBound(t, c, limit)); s.TotalMalloced > bound || pages > bound || s.CurrItems == 0 {
		t.Fatalf("malloced %d pages %d items %d", s.TotalMalloced, pages, s.CurrItems)
	}
	if present < checks*9/10 {
		t.Fatalf("just-stored items found %d of %d times", present, checks)
	}
	t.Logf("items %d evictions %d slabs moved %d rescues %d evicted by moves %d",
		s.CurrItems, s.Evictions, s.SlabsMoved, s.SlabReassignRescues, s.SlabReassignEvictionsNomem)
	if s.Evictions == 0 {
		t.Fatalf("no evictions: test did not stress memory")
	}
	checkConsistency(t, c)
}

// checkConsistency checks the class bookkeeping against the hash index
// while the cache is idle.
func checkConsistency(t *testing.T, c *Cache) {
	t.Helper()
	var inHash uint64
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		for b := i; b < c.numBuckets(s.buckets); b += numStripes {
			for ref := c.bucket(s.buckets, uint64(b)); ref != 0; ref = c.hnext(c.hdr(ref)) {
				if c.hdr(ref).bits.Load()&bitLinked == 0 {
					t.Errorf("unlinked item in the hash index")
				}
				inHash++
			}
		}
		s.mu.Unlock()
	}
	var s Stats
	c.ReadStats(&s)
	if inHash != s.CurrItems || int64(inHash) != c.items.Load() {
		t.Fatalf("hash holds %d items, curr_items %d, counter %d", inHash, s.CurrItems, c.items.Load())
	}
	// Every chunk is free, an item, or a body chunk of a linked chained
	// item; every chained item's chain is whole; each class counts the
	// items on its pages, and the largest class the chained ones too.
	var chained, bodies, reached int
	items := make([]int, len(c.classes))
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		cl.mu.Lock()
		free := 0
		for _, id := range cl.pages {
			for j := 0; j < cl.perslab; j++ {
				ref := makeRef(id, j*cl.size)
				b := c.hdr(ref).bits.Load()
				switch {
				case b&bitSlabbed != 0:
					free++
				case b&bitChunk != 0:
					bodies++
					if ob := c.hdr(itemRef(c.chunk(ref).owner)).bits.Load(); ob&(bitLinked|bitChained) != bitLinked|bitChained {
						t.Errorf("class %d: a body chunk whose owner is not a linked chained item", i)
					}
				case b&bitLinked != 0 && b&bitChained != 0:
					chained++
					for r := c.chainFirst(ref, b); r != 0; r = itemRef(c.chunk(r).next) {
						if c.chunk(r).bits.Load()&bitChunk == 0 || itemRef(c.chunk(r).owner) != ref {
							t.Errorf("class %d: a chain holds a chunk that is not its own", i)
						}
						reached++
					}
				case b&bitLinked != 0:
					items[i]++
				default:
					t.Errorf("class %d: a chunk in flight in an idle cache", i)
				}
			}
		}
		if free != cl.nfree {
			t.Errorf("class %d: %d free chunks, free list holds %d", i, free, cl.nfree)
		}
		cl.mu.Unlock()
	}
	items[c.largest] += chained
	if bodies != reached {
		t.Errorf("%d body chunks in pages, %d reached from chained items", bodies, reached)
	}
	for _, cs := range s.Classes {
		if uint64(items[cs.ID]) != cs.Number {
			t.Fatalf("class %d: %d items in its pages (and chained), %d counted", cs.ID, items[cs.ID], cs.Number)
		}
	}
}

func TestNoEvict(t *testing.T) {
	c := newCache(t, Config{MemoryLimit: 2 << 20, NoEvict: true, NoCrawler: true})
	val := strings.Repeat("v", 1000)
	mustSet(t, c, "first", val)
	var err error
	n := 0
	for ; n < 10000; n++ {
		if _, err = c.Store(ModeSet, []byte(fmt.Sprint("k", n)), 0, 0, []byte(val), 0); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrNoMemory) {
		t.Fatalf("after %d stores err = %v, want ErrNoMemory", n, err)
	}
	if _, ok := value(c, "first"); !ok {
		t.Fatal("an item was evicted with NoEvict")
	}
	// A failed set drops the old value, as memcached does.
	if _, err := c.Store(ModeSet, []byte("first"), 0, 0, []byte(val), 0); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("set over full memory: %v", err)
	}
	if _, ok := value(c, "first"); ok {
		t.Fatal("failed set kept the old value")
	}
	// ... which frees a chunk for the next store.
	if _, err := c.Store(ModeSet, []byte("again"), 0, 0, []byte(val), 0); err != nil {
		t.Fatalf("store after a set freed a chunk: %v", err)
	}
	s := stats(c)
	if s.Evictions != 0 || sumClass(s, func(cs ClassStats) uint64 { return cs.OutOfMemory }) < 2 {
		t.Fatalf("evictions %d outofmemory %d", s.Evictions, sumClass(s, func(cs ClassStats) uint64 { return cs.OutOfMemory }))
	}
	// Expired items are still reclaimed with NoEvict.
	clk := newFakeClock()
	c2 := newCache(t, Config{MemoryLimit: 2 << 20, NoEvict: true, NoCrawler: true, Now: clk.Now})
	for i := 0; i < 3000; i++ {
		if _, err := c2.Store(ModeSet, []byte(fmt.Sprint("k", i)), 0, 1, []byte(val), 0); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		if i == 1500 {
			clk.Advance(5 * time.Second)
		}
	}
	if s := stats(c2); s.Reclaimed == 0 {
		t.Fatal("no expired item reclaimed at the tail")
	}
}

func TestSetMemoryLimit(t *testing.T) {
	c := newCache(t, Config{MemoryLimit: 16 << 20, NoCrawler: true})
	val := strings.Repeat("v", 2000)
	fill := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.Store(ModeSet, []byte(fmt.Sprint("k", i)), 0, 0, []byte(val), 0); err != nil {
				t.Fatalf("store: %v", err)
			}
		}
	}
	fill(20000)
	if s := stats(c); s.TotalMalloced != 16<<20 {
		t.Fatalf("malloced %d", s.TotalMalloced)
	}
	if err := c.SetMemoryLimit(8 << 20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pages released", func() bool { return stats(c).TotalMalloced <= 8<<20 })
	s := stats(c)
	if s.LimitMaxbytes != 8<<20 || s.CurrItems == 0 {
		t.Fatalf("limit %d items %d", s.LimitMaxbytes, s.CurrItems)
	}
	fill(20000)
	if s := stats(c); s.TotalMalloced > 8<<20 {
		t.Fatalf("malloced %d over the lowered limit", s.TotalMalloced)
	}
	if err := c.SetMemoryLimit(32 << 20); err != nil {
		t.Fatal(err)
	}
	fill(20000)
	if s := stats(c); s.TotalMalloced <= 8<<20 || s.TotalMalloced > 32<<20 {
		t.Fatalf("malloced %d after growing the limit", s.TotalMalloced)
	}
	if err := c.SetMemoryLimit(-1); !errors.Is(err, ErrMemoryLimit) {
		t.Fatalf("negative limit: %v", err)
	}
	checkConsistency(t, c)
}

func TestStatsAndReset(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "a", "1")
	mustSet(t, c, "b", "22")
	value(c, "a")
	value(c, "missing")
	s := stats(c)
	cs := s.Classes[0]
	if s.CurrItems != 2 || s.TotalItems != 2 || cs.Number != 2 || cs.NumberHot != 2 || cs.GetHits != 1 ||
		cs.HitsToHot != 1 || cs.CmdSet != 2 || s.GetMisses != 1 || cs.TotalPages != 1 || cs.UsedChunks != 2 ||
		cs.FreeChunks != cs.ChunksPerPage-2 || s.ActiveSlabs != 1 || s.TotalMalloced != SlabPageSize {
		t.Fatalf("stats %+v class %+v", s, cs)
	}
	// memcached's ITEM_ntotal: its header, key, NUL, value, CRLF, CAS.
	wantBytes := uint64(2*(mcItemHeader+1+1+2+8) + 1 + 2)
	if s.Bytes != wantBytes || cs.MemRequested != wantBytes {
		t.Fatalf("bytes %d mem_requested %d, want %d", s.Bytes, cs.MemRequested, wantBytes)
	}
	if s.LimitMaxbytes != 64<<20 || s.HashPowerLevel != 16 || s.HashBytes != 4<<16 {
		t.Fatalf("limit %d hash power %d bytes %d", s.LimitMaxbytes, s.HashPowerLevel, s.HashBytes)
	}
	c.ResetStats()
	s = stats(c)
	cs = s.Classes[0]
	if s.GetMisses != 0 || cs.GetHits != 0 || cs.CmdSet != 0 || s.TotalItems != 0 {
		t.Fatalf("counters not reset: %+v", s)
	}
	if s.CurrItems != 2 || s.Bytes != wantBytes || cs.TotalPages != 1 {
		t.Fatalf("state reset: %+v", s)
	}
	// ReadStats reuses the slice.
	prev := &s.Classes[0]
	c.ReadStats(&s)
	if &s.Classes[0] != prev {
		t.Fatal("ReadStats did not reuse Classes")
	}
}

// TestPageMoveRescuesItems empties a page of one class for another class;
// the live items of the page move to free chunks of their class's other
// page instead of being evicted.
func TestPageMoveRescuesItems(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true, MemoryLimit: 2 << 20})
	key := func(i int) string { return fmt.Sprintf("k%04d", i) }
	val := func(i int) string { return strings.Repeat(key(i), 200) } // 1000 bytes
	cls := c.classFor(c.ntotal(len(key(0)), len(val(0))))
	n := 2 * c.classes[cls].perslab
	for i := 0; i < n; i++ {
		mustSet(t, c, key(i), val(i))
	}
	for i := 0; i < n; i += 2 {
		c.Delete([]byte(key(i)))
	}
	// Memory is full: a page of the class goes to the small items'
	// class, its live items moved to the free chunks of the other.
	mustSet(t, c, "small", "x")
	small := c.classFor(c.ntotal(5, 1))
	if err := c.Reassign(cls, small); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the page move to finish", func() bool { return !c.rebalBusy.Load() })
	s := stats(c)
	if s.SlabsMoved != 1 || s.SlabReassignRescues == 0 || s.SlabReassignEvictionsNomem != 0 || s.Evictions != 0 {
		t.Fatalf("moved %d rescued %d evicted %d/%d", s.SlabsMoved, s.SlabReassignRescues, s.SlabReassignEvictionsNomem, s.Evictions)
	}
	for i := 1; i < n; i += 2 {
		if v, ok := value(c, key(i)); !ok || v != val(i) {
			t.Fatalf("%s lost or corrupted by the page move (found %v)", key(i), ok)
		}
	}
	if _, ok := value(c, "small"); !ok {
		t.Fatal("small item not stored")
	}
	checkConsistency(t, c)
}

// memBound is what a cache with memory limit may have malloced: the limit,
// and past it the first page of each class that got one once memory was
// full (memcached's do_slabs_newslab grants those), at most one page per
// class.
func memBound(t *testing.T, c *Cache, limit int64) int64 {
	t.Helper()
	c.pageMu.Lock()
	over := c.overdraft
	c.pageMu.Unlock()
	if most := int64(c.largest) * SlabPageSize; over > most+int64(SlabPageSize) {
		t.Fatalf("first pages past the limit: %d bytes, more than one page per class", over)
	}
	return limit + over
}

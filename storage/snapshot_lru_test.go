package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// access is what mg's l and h (and me) show of an item, the last access
// as a Unix time, and whether it is ACTIVE.
type access struct {
	last            int64
	fetched, active bool
}

func accessOf(t *testing.T, c *Cache, clk *fakeClock, key string) access {
	t.Helper()
	var a access
	if !c.MetaDebug([]byte(key), func(e MetaEntry) {
		a = access{clk.Now().Unix() - int64(e.Idle()), e.Fetched(), e.b&bitActive != 0}
	}) {
		t.Fatalf("%q missing", key)
	}
	return a
}

func saveLoad(t *testing.T, src, dst *Cache) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotKeepsLastAccess saves items last accessed at different
// times, some never fetched, some fetched once, some twice (ACTIVE), and
// loads them minutes later: each keeps its last access (what mg's l
// counts from, also for accesses older than the loading cache's start)
// and its fetched and active marks (mg's h), as memcached's restart keeps
// them. The loading cache's uptime and time stay its own.
func TestSnapshotKeepsLastAccess(t *testing.T) {
	clk := newFakeClock()
	src := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	var keys []string
	for i := range 9 {
		keys = append(keys, fmt.Sprint("k", i))
		mustSet(t, src, keys[i], "v")
		clk.Advance(time.Second)
	}
	clk.Advance(5 * time.Minute)
	for _, k := range keys[3:6] {
		value(src, k)
	}
	clk.Advance(time.Minute)
	for _, k := range keys[6:] {
		value(src, k)
		value(src, k)
	}
	clk.Advance(10 * time.Minute)
	before := map[string]access{}
	for _, k := range keys {
		before[k] = accessOf(t, src, clk, k)
	}
	if a, b, c := before["k0"], before["k3"], before["k6"]; a.fetched || !b.fetched || b.active || !c.active || a.last == c.last {
		t.Fatalf("before the save: %+v %+v %+v", a, b, c)
	}
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}

	clk.Advance(2 * time.Minute)
	dst := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	uptime, now := dst.Uptime(), dst.CurrentTime()
	if _, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		got, want := accessOf(t, dst, clk, k), before[k]
		if got.last < want.last-1 || got.last > want.last+1 || got.fetched != want.fetched || got.active != want.active {
			t.Errorf("%s after the load: %+v, want %+v", k, got, want)
		}
	}
	if u, n := dst.Uptime(), dst.CurrentTime(); u != uptime || n != now || n != clk.Now().Unix() {
		t.Errorf("after the load: uptime %d, time %d; want %d, %d", u, n, uptime, now)
	}
	// Items stored after the load count from the same clock.
	mustStore(t, dst, ModeSet, "new", "v", 0, 100, 0)
	if a := accessOf(t, dst, clk, "new"); a.last != clk.Now().Unix() {
		t.Errorf("new item's last access %d, want %d", a.last, clk.Now().Unix())
	}
	if it, ok := lookup(dst, "new"); !ok || it.Exptime != clk.Now().Unix()+100 {
		t.Errorf("new item's exptime %d, want %d", it.Exptime, clk.Now().Unix()+100)
	}

	// A cache that holds items keeps its clock (their times are rel
	// times): accesses from before its start read as its start.
	busy := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	mustStore(t, busy, ModeSet, "x", "v", 0, 100, 0)
	exp := clk.Now().Unix() + 100
	if _, err := busy.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if it, ok := lookup(busy, "x"); !ok || it.Exptime != exp {
		t.Errorf("x's exptime after a load %d, want %d", it.Exptime, exp)
	}
	if got, want := accessOf(t, busy, clk, "k8"), before["k8"]; got.last != busy.ProcessStarted() || got.fetched != want.fetched {
		t.Errorf("k8 loaded into a cache holding items: %+v, want last access %d", got, busy.ProcessStarted())
	}

	// A clock set back since the save: the accesses it has not reached
	// read as now.
	back := &fakeClock{t: clk.Now().Add(-time.Hour)}
	old := newCache(t, Config{Clock: back, NoCrawler: true})
	if _, err := old.load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		got, want := accessOf(t, old, back, k), before[k]
		if got.last != back.Now().Unix() || got.fetched != want.fetched {
			t.Errorf("%s loaded an hour back: %+v, want last access %d, fetched %v", k, got, back.Now().Unix(), want.fetched)
		}
	}
}

// TestSnapshotEvictsLeastRecentlyUsed fills a cache, reads a quarter of
// its items (spread over every page) a while later, saves it and loads it
// into a cache of the same size: storing new items then evicts items
// never read, as the saved cache does, not the first ones in page order.
// With the segmented LRU the read items are those read twice (ACTIVE);
// with the flat one (no maintainer) those read once over a minute after
// they were stored (memcached's do_item_update relinks them).
func TestSnapshotEvictsLeastRecentlyUsed(t *testing.T) {
	for _, flat := range []bool{false, true} {
		t.Run(fmt.Sprint("flat=", flat), func(t *testing.T) {
			clk := newFakeClock()
			cfg := Config{Now: clk.Now, NoCrawler: true, MemoryLimit: 4 << 20, SlabAutomove: -1, NoLRUMaintainer: flat}
			src := newCache(t, cfg)
			val := strings.Repeat("v", 1000)
			n := 4 * src.classes[src.classFor(src.ntotal(6, len(val)))].perslab
			var read, unread []string
			for i := range n {
				k := fmt.Sprintf("k%05d", i)
				mustSet(t, src, k, val)
				if i%4 == 1 {
					read = append(read, k)
				} else {
					unread = append(unread, k)
				}
			}
			if s := stats(src); s.Evictions != 0 || s.CurrItems != uint64(n) {
				t.Fatalf("after the fill: %d items, %d evictions", s.CurrItems, s.Evictions)
			}
			clk.Advance(2 * time.Minute)
			for _, k := range read {
				value(src, k)
				if !flat {
					value(src, k)
				}
			}
			clk.Advance(time.Minute)
			var buf bytes.Buffer
			if _, err := src.Save(&buf); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute)
			dst := newCache(t, cfg)
			if st, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil || st.Items != n {
				t.Fatalf("load: %+v, %v", st, err)
			}
			// The saved cache and the loaded one evict alike.
			for name, c := range map[string]*Cache{"saved": src, "loaded": dst} {
				want := uint64(len(unread) / 2)
				for i := 0; stats(c).Evictions < want; i++ {
					if i > 2*n {
						t.Fatalf("%s: %d evictions after %d stores", name, stats(c).Evictions, i)
					}
					mustSet(t, c, fmt.Sprintf("new%05d", i), val)
				}
				lost := 0
				for _, k := range read {
					if pageOfKey(c, k) == 0 {
						lost++
					}
				}
				if lost != 0 {
					t.Errorf("%s: %d of the %d items read were evicted before the %d never read", name, lost, len(read), len(unread))
				}
			}
		})
	}
}

// TestSnapshotLoadOrdersLRU loads items read in random order, at many
// different times: every LRU list of every class then holds its items
// most recent first, not in the order of the snapshot (slab pages).
func TestSnapshotLoadOrdersLRU(t *testing.T) {
	clk := newFakeClock()
	src := newCache(t, Config{Now: clk.Now, NoCrawler: true, NoLRUMaintainer: true})
	var keys []string
	for i := range 2000 {
		keys = append(keys, fmt.Sprint("key", i))
		mustSet(t, src, keys[i], strings.Repeat("x", 1+i%700))
	}
	clk.Advance(2 * time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		value(src, k) // over a minute since the store: relinked, access time now
		if i%7 == 0 {
			clk.Advance(time.Second)
		}
	}
	for _, segmented := range []bool{true, false} {
		dst := newCache(t, Config{Now: clk.Now, NoCrawler: true, NoLRUMaintainer: !segmented})
		saveLoad(t, src, dst)
		linked := 0
		for i := 1; i < len(dst.classes); i++ {
			cl := &dst.classes[i]
			cl.mu.Lock()
			for lru := range cl.lru {
				var last uint32
				for r := cl.lru[lru].head; r != 0; r = dst.next(dst.hdr(r)) {
					at := dst.hdr(r).atime.Load()
					if r != cl.lru[lru].head && at > last {
						t.Errorf("segmented=%v: class %d list %d: an item accessed at %d after one accessed at %d", segmented, i, lru, at, last)
						break
					}
					last = at
					linked++
				}
			}
			cl.mu.Unlock()
		}
		if linked != len(keys) {
			t.Errorf("segmented=%v: %d items on the lists, want %d", segmented, linked, len(keys))
		}
	}
}

// pausingReader gives the first half of a snapshot, then waits, at most
// three seconds, for the LRU maintainer to make two passes before it gives
// the rest.
type pausingReader struct {
	r      *bytes.Reader
	half   int64
	c      *Cache
	paused bool
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if !p.paused && p.r.Size()-int64(p.r.Len()) >= p.half {
		p.paused = true
		j := p.c.juggles.Load()
		for deadline := time.Now().Add(3 * time.Second); p.c.juggles.Load() < j+2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return p.r.Read(b[:min(len(b), 4096)])
}

// TestSnapshotLoadHoldsMaintainer loads, into a cache whose maintainer
// runs, items whose last accesses are not in the order of the snapshot:
// the maintainer must not move the first loaded items to COLD during the
// load, so that COLD then holds the items least recently used, every one
// accessed no later than any item in HOT.
func TestSnapshotLoadHoldsMaintainer(t *testing.T) {
	clk := newFakeClock()
	src := newCache(t, Config{Now: clk.Now, NoCrawler: true, NoLRUMaintainer: true})
	var keys []string
	for i := range 3000 {
		keys = append(keys, fmt.Sprint("key", i))
		mustSet(t, src, keys[i], strings.Repeat("x", 100))
	}
	clk.Advance(2 * time.Minute)
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		value(src, k)
		if i%10 == 0 {
			clk.Advance(time.Second)
		}
	}
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	dst := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	if _, err := dst.load(&pausingReader{r: bytes.NewReader(buf.Bytes()), half: int64(buf.Len() / 2), c: dst}); err != nil {
		t.Fatal(err)
	}
	// Let the maintainer balance the lists.
	j := dst.juggles.Load()
	waitFor(t, "maintainer passes", func() bool { return dst.juggles.Load() >= j+2 })
	cl := &dst.classes[dst.classFor(dst.ntotal(7, 100))]
	cl.mu.Lock()
	defer cl.mu.Unlock()
	newestCold, oldestHot := uint32(0), ^uint32(0)
	for r := cl.lru[lruCold].head; r != 0; r = dst.next(dst.hdr(r)) {
		newestCold = max(newestCold, dst.hdr(r).atime.Load())
	}
	for r := cl.lru[lruHot].head; r != 0; r = dst.next(dst.hdr(r)) {
		oldestHot = min(oldestHot, dst.hdr(r).atime.Load())
	}
	if cl.lru[lruCold].n == 0 || cl.lru[lruHot].n == 0 || newestCold > oldestHot {
		t.Fatalf("%d items in COLD, the newest accessed at %d; %d in HOT, the oldest at %d", cl.lru[lruCold].n, newestCold, cl.lru[lruHot].n, oldestHot)
	}
}

// listOf returns the LRU list key's item is on.
func listOf(t *testing.T, c *Cache, key string) int {
	t.Helper()
	hv := c.hashKey([]byte(key))
	s := c.lockStripe(hv)
	defer s.mu.Unlock()
	r, h := c.findRawLocked(s, []byte(key), hv)
	if r == 0 {
		t.Fatalf("%q missing", key)
	}
	return bitsLRU(h.bits.Load())
}

// TestSnapshotKeepsLRULists saves items spread over HOT, WARM and COLD
// and loads them into a cache whose LRU is segmented too: each goes back
// to its list, as memcached's restart keeps them, not all to HOT, which
// would evict the items that were in HOT (and WARM) first once the
// maintainer ran. A cache with the flat LRU loads them into COLD, as it
// stores every item. The shares and age factors are set so that the
// maintainers move nothing while the test looks.
func TestSnapshotKeepsLRULists(t *testing.T) {
	clk := newFakeClock()
	tune := func(c *Cache) {
		if err := c.TuneLRU(40, 40, 1e6, 1e6); err != nil {
			t.Fatal(err)
		}
	}
	src := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	tune(src)
	var keys []string
	for i := range 300 {
		keys = append(keys, fmt.Sprint("key", i))
		mustSet(t, src, keys[i], strings.Repeat("x", 100))
	}
	j := src.juggles.Load()
	waitFor(t, "maintainer passes", func() bool { return src.juggles.Load() >= j+2 })
	// Move every third item of COLD to WARM, as the maintainer does with
	// an ACTIVE one.
	for i, k := range keys {
		if i%3 != 0 || listOf(t, src, k) != lruCold {
			continue
		}
		hv := src.hashKey([]byte(k))
		s := src.lockStripe(hv)
		r, h := src.findRawLocked(s, []byte(k), hv)
		cl := &src.classes[bitsClass(h.bits.Load())]
		cl.mu.Lock()
		src.lruUnlinkLocked(cl, r, h)
		src.lruLinkLocked(cl, lruWarm, r, h)
		cl.mu.Unlock()
		s.mu.Unlock()
	}
	j = src.juggles.Load()
	waitFor(t, "maintainer passes", func() bool { return src.juggles.Load() >= j+2 })
	want := map[string]int{}
	count := map[int]int{}
	for _, k := range keys {
		want[k] = listOf(t, src, k)
		count[want[k]]++
	}
	if count[lruHot] == 0 || count[lruWarm] == 0 || count[lruCold] == 0 {
		t.Fatalf("items per list before the save: %v, want some in each of HOT, WARM, COLD", count)
	}

	seg := newCache(t, Config{Now: clk.Now, NoCrawler: true})
	tune(seg)
	saveLoad(t, src, seg)
	for _, k := range keys {
		if got := listOf(t, seg, k); got != want[k] {
			t.Errorf("segmented: %q loaded into list %d, was in %d", k, got, want[k])
		}
	}
	flat := newCache(t, Config{Now: clk.Now, NoCrawler: true, NoLRUMaintainer: true})
	saveLoad(t, src, flat)
	for _, k := range keys {
		if got := listOf(t, flat, k); got != lruCold {
			t.Errorf("flat: %q loaded into list %d, want COLD", k, got)
		}
	}
}

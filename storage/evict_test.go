package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pageOfKey returns the page holding key's item, or 0 when it is absent.
func pageOfKey(c *Cache, key string) uint32 {
	hv := c.hashKey([]byte(key))
	s := c.stripeFor(hv)
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, _ := c.findRawLocked(s, []byte(key), hv)
	return ref.pageID()
}

// policyCache fills a 4-page cache with 1 KB items, one page every ten
// seconds, and returns it with the keys of each page, oldest page first.
func policyCache(t *testing.T, ev Eviction, noEvict bool) (*Cache, *fakeClock, [][]string) {
	t.Helper()
	clk := newFakeClock()
	c := newCache(t, Config{
		Now: clk.Now, NoCrawler: true, MemoryLimit: 4 << 20,
		SlabAutomove: -1, Eviction: ev, NoEvict: noEvict,
	})
	cls := c.classFor(c.ntotal(8, 1000))
	per := c.classes[cls].perslab
	pages := make([][]string, 4)
	for p := range pages {
		clk.Advance(10 * time.Second)
		for i := range per {
			k := fmt.Sprintf("p%d-%05d", p, i)
			mustSet(t, c, k, strings.Repeat("v", 1000))
			pages[p] = append(pages[p], k)
		}
		if id := pageOfKey(c, pages[p][0]); id == 0 || pageOfKey(c, pages[p][per-1]) != id {
			t.Fatalf("page %d's keys are not in one page", p)
		}
	}
	if s := stats(c); s.TotalMalloced != 4<<20 || s.Evictions != 0 {
		t.Fatalf("after the fill: %d bytes of pages, %d evictions", s.TotalMalloced, s.Evictions)
	}
	return c, clk, pages
}

// missing returns, for each page, how many of its keys are gone.
func missing(c *Cache, pages [][]string) []int {
	out := make([]int, len(pages))
	for p, keys := range pages {
		for _, k := range keys {
			if pageOfKey(c, k) == 0 {
				out[p]++
			}
		}
	}
	return out
}

// storeNew stores one more 1 KB item, which needs memory.
func storeNew(t *testing.T, c *Cache) {
	t.Helper()
	mustSet(t, c, "new-key", strings.Repeat("n", 1000))
}

func TestEvictLRU(t *testing.T) {
	c, _, pages := policyCache(t, EvictLRU, false)
	storeNew(t, c)
	got := missing(c, pages)
	// One item goes: the least recently used, the first stored.
	if got[0] != 1 || got[1]+got[2]+got[3] != 0 || pageOfKey(c, pages[0][0]) != 0 {
		t.Fatalf("missing per page %v, want only %s", got, pages[0][0])
	}
	if s := stats(c); s.Evictions != 1 || s.SlabEvictions != 0 {
		t.Fatalf("evictions %d, slab evictions %d", s.Evictions, s.SlabEvictions)
	}
	checkConsistency(t, c)
}

func TestEvictLRA(t *testing.T) {
	c, clk, pages := policyCache(t, EvictLRA, false)
	// Read the oldest page: the second is now least recently accessed.
	clk.Advance(10 * time.Second)
	for _, k := range pages[0] {
		if !c.Get([]byte(k), nil) {
			t.Fatalf("%s missing before the eviction", k)
		}
	}
	victim := pageOfKey(c, pages[1][0])
	storeNew(t, c)
	if got := missing(c, pages); fmt.Sprint(got) != fmt.Sprint([]int{0, len(pages[1]), 0, 0}) {
		t.Fatalf("missing per page %v, want all of page 1 and nothing else", got)
	}
	if pageOfKey(c, "new-key") != victim {
		t.Fatal("the new item is not in the evicted page")
	}
	s := stats(c)
	if s.SlabEvictions != 1 || s.Evictions != uint64(len(pages[1])) {
		t.Fatalf("slab evictions %d, evictions %d", s.SlabEvictions, s.Evictions)
	}
	checkConsistency(t, c)
}

func TestEvictLRC(t *testing.T) {
	c, clk, pages := policyCache(t, EvictLRC, false)
	// Reading the oldest page does not save it: it was created first.
	clk.Advance(10 * time.Second)
	for _, k := range pages[0] {
		c.Get([]byte(k), nil)
	}
	storeNew(t, c)
	if got := missing(c, pages); fmt.Sprint(got) != fmt.Sprint([]int{len(pages[0]), 0, 0, 0}) {
		t.Fatalf("missing per page %v, want all of page 0 and nothing else", got)
	}
	// The reused page is now the newest: the next page evicted is page 1.
	for i := range len(pages[0]) {
		mustSet(t, c, fmt.Sprintf("more-%05d", i), strings.Repeat("m", 1000))
	}
	if got := missing(c, pages); got[1] != len(pages[1]) || got[2]+got[3] != 0 {
		t.Fatalf("second eviction: missing per page %v, want page 1 next", got)
	}
	checkConsistency(t, c)
}

func TestEvictRandom(t *testing.T) {
	c, _, pages := policyCache(t, EvictRandom, false)
	storeNew(t, c)
	got := missing(c, pages)
	whole := 0
	for p, n := range got {
		switch n {
		case 0:
		case len(pages[p]):
			whole++
		default:
			t.Fatalf("missing per page %v: part of a page evicted", got)
		}
	}
	if whole != 1 || stats(c).SlabEvictions != 1 {
		t.Fatalf("missing per page %v, want exactly one whole page", got)
	}
	checkConsistency(t, c)
}

func TestEvictNone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ev      Eviction
		noEvict bool
	}{{"NoEvict", 0, true}, {"EvictNone", EvictNone, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, pages := policyCache(t, tc.ev, tc.noEvict)
			if tc.name == "EvictNone" {
				// The zero Eviction is the default, LRU: set none at
				// run time.
				if err := c.SetEviction(EvictNone); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.Store(ModeSet, []byte("new-key"), 0, 0, []byte(strings.Repeat("n", 1000)), 0)
			if !errors.Is(err, ErrNoMemory) {
				t.Fatalf("store with eviction off: %v, want ErrNoMemory", err)
			}
			if got := missing(c, pages); fmt.Sprint(got) != "[0 0 0 0]" {
				t.Fatalf("missing per page %v, want nothing evicted", got)
			}
			if s := stats(c); s.Evictions != 0 || s.Classes[c.classFor(c.ntotal(7, 1000))-1].OutOfMemory != 1 {
				t.Fatalf("evictions %d", s.Evictions)
			}
		})
	}
}

// TestEvictPageAcrossClasses shows that a slab policy serves any class: a
// small item takes the least recently accessed page of the 1 KB class, also
// when that class is busy at the time (the maintainer holds it now and then).
func TestEvictPageAcrossClasses(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) { testEvictPageAcrossClasses(t, busy) })
	}
}

func testEvictPageAcrossClasses(t *testing.T, busy bool) {
	c, clk, pages := policyCache(t, EvictLRU, false)
	clk.Advance(10 * time.Second)
	for _, p := range []int{0, 2, 3} {
		for _, k := range pages[p] {
			c.Get([]byte(k), nil)
		}
	}
	if err := c.SetEviction(EvictLRA | EvictLRU); err != nil {
		t.Fatal(err)
	}
	if busy {
		cl := &c.classes[c.classFor(c.ntotal(8, 1000))]
		cl.mu.Lock()
		time.AfterFunc(20*time.Millisecond, cl.mu.Unlock)
	}
	mustSet(t, c, "small", "x")
	if got := missing(c, pages); fmt.Sprint(got) != fmt.Sprint([]int{0, len(pages[1]), 0, 0}) {
		t.Fatalf("missing per page %v, want all of page 1", got)
	}
	if s := stats(c); s.Classes[c.classFor(c.ntotal(5, 1))-1].TotalPages != 1 {
		t.Fatal("the small item's class did not get the page")
	}
	checkConsistency(t, c)
}

func TestParseEviction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Eviction
		err  bool
	}{
		{"lru", EvictLRU, false}, {"random", EvictRandom, false}, {"lra", EvictLRA, false},
		{"lrc", EvictLRC, false}, {"none", EvictNone, false}, {"0", EvictNone, false},
		{"5", EvictLRA | EvictLRU, false}, {"lra+lru", EvictLRA | EvictLRU, false},
		{"15", 15, false}, {"16", 0, true}, {"-1", 0, true}, {"lfu", 0, true}, {"", 0, true},
	} {
		got, err := ParseEviction(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseEviction(%q) = %v, %v", tc.in, got, err)
		}
	}
	if s := (EvictLRA | EvictLRU).String(); s != "lra+lru" {
		t.Errorf("String = %q", s)
	}
}

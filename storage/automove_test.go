package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// shiftWorkload runs a cache whose item sizes shift from ~100 bytes to ~1
// KB: first it fills the 6 MB with more small items than they hold, then
// it runs get-or-set (a miss stores the key) on random keys, for a while
// over the small keys, then over 3,000 large keys, which fit only if the
// large class gets most of the pages. The clock ticks every perTick
// requests, and each tick lets the automover decide (and waits for the
// page it asked for to move). It returns the hit ratio of the last
// lateTicks ticks.
func shiftWorkload(t *testing.T, automove int) (late float64, s Stats) {
	t.Helper()
	clk := newFakeClock()
	c := newCache(t, Config{
		Now: clk.Now, NoCrawler: true, MemoryLimit: 6 << 20,
		SlabAutomove: automove, SlabAutomoveWindow: 10,
	})
	const (
		smallKeys, largeKeys = 45000, 3000
		smallTicks, ticks    = 12, 45
		lateTicks            = 8
	)
	perTick := 6000
	if raceEnabled {
		perTick = 2000
	}
	small, large := strings.Repeat("s", 100), strings.Repeat("L", 1000)
	for i := range smallKeys {
		mustSet(t, c, fmt.Sprintf("s%05d", i), small)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var hits, gets int
	for tick := range ticks {
		keys, val, prefix := smallKeys, small, "s"
		if tick >= smallTicks {
			keys, val, prefix = largeKeys, large, "L"
		}
		for range perTick {
			key := fmt.Sprintf("%s%05d", prefix, rng.IntN(keys))
			hit := c.Get([]byte(key), nil)
			if !hit {
				mustSet(t, c, key, val)
			}
			if tick >= ticks-lateTicks {
				gets++
				if hit {
					hits++
				}
			}
		}
		clk.Advance(time.Second)
		c.automoveTick()
		waitFor(t, "the page move to finish", func() bool { return !c.rebalBusy.Load() })
	}
	checkConsistency(t, c)
	return float64(hits) / float64(gets), stats(c)
}

// largeClass is the class of shiftWorkload's large items.
func largeClass(t *testing.T) int {
	c, _ := newFakeCache(t)
	return c.classFor(c.ntotal(6, 1000))
}

// TestAutomoveKeepsHitRatio shows the automover at work: when item sizes
// shift, slab_automove=1 moves the small items' pages to the large items'
// class and the hit ratio recovers; with automove off the large class
// keeps the one page it got, and most requests miss.
func TestAutomoveKeepsHitRatio(t *testing.T) {
	on, son := shiftWorkload(t, 1)
	off, soff := shiftWorkload(t, -1)
	t.Logf("late hit ratio: automove on %.3f (%d pages moved), off %.3f (%d moved)", on, son.SlabsMoved, off, soff.SlabsMoved)
	if on < 0.9 {
		t.Errorf("automove on: hit ratio %.3f, want >= 0.9", on)
	}
	if off > 0.5 {
		t.Errorf("automove off: hit ratio %.3f, want <= 0.5", off)
	}
	if son.SlabsMoved < 3 || son.SlabReassignEvictionsNomem == 0 {
		t.Errorf("automove on: %d pages moved, %d items evicted by the moves", son.SlabsMoved, son.SlabReassignEvictionsNomem)
	}
	// Off, the large class keeps the one page it got first.
	if p := soff.Classes[largeClass(t)-1].TotalPages; p != 1 {
		t.Errorf("automove off: the large class has %d pages, want 1", p)
	}
}

// TestReassign moves pages by hand as memcached's "slabs reassign" does,
// with memcached's refusals, in memcached's order.
func TestReassign(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true, MemoryLimit: 8 << 20, SlabAutomove: -1})
	val := strings.Repeat("v", 100)
	cls := c.classFor(c.ntotal(6, len(val)))
	n := 3 * c.classes[cls].perslab
	for i := range n {
		mustSet(t, c, fmt.Sprintf("k%05d", i), val)
	}
	other := cls + 3
	waitIdle := func() {
		t.Helper()
		waitFor(t, "the mover", func() bool { return !stats(c).SlabReassignRunning })
	}
	for _, tc := range []struct {
		src, dst int
		want     error
	}{
		{cls, cls, ErrSameClass},
		{-1, -1, ErrSameClass},
		{0, cls, ErrNoSpare}, // the global pool is empty
		{other, cls, ErrNoSpare},
		{cls, c.largest + 1, ErrBadClass},
		{-2, cls, ErrBadClass},
		{cls, -1, ErrBadClass},
		{-1, cls, ErrBadClass}, // no other class has pages to spare
	} {
		if err := c.Reassign(tc.src, tc.dst); !errors.Is(err, tc.want) {
			t.Errorf("Reassign(%d, %d) = %v, want %v", tc.src, tc.dst, err, tc.want)
		}
	}
	pages := func(id int) int { return int(c.classes[id].npages.Load()) }
	if err := c.Reassign(cls, other); err != nil {
		t.Fatalf("Reassign(%d, %d): %v", cls, other, err)
	}
	waitIdle()
	if pages(cls) != 2 || pages(other) != 1 {
		t.Fatalf("after a move: %d and %d pages, want 2 and 1", pages(cls), pages(other))
	}
	// To the global pool and back.
	if err := c.Reassign(cls, 0); err != nil {
		t.Fatalf("Reassign(%d, 0): %v", cls, err)
	}
	waitIdle()
	if s := stats(c); s.SlabGlobalPagePool != 1 || pages(cls) != 1 {
		t.Fatalf("pool %d pages, class %d pages", s.SlabGlobalPagePool, pages(cls))
	}
	if err := c.Reassign(cls, other); !errors.Is(err, ErrNoSpare) {
		t.Fatalf("last page: %v, want ErrNoSpare", err)
	}
	// -1 picks a class with pages to spare: other has one, cls one.
	if err := c.Reassign(-1, cls); !errors.Is(err, ErrBadClass) {
		t.Fatalf("Reassign(-1) with no spare class: %v", err)
	}
	s := stats(c)
	if s.SlabsMoved != 2 || s.SlabReassignEvictionsNomem == 0 {
		t.Fatalf("moved %d, evicted %d", s.SlabsMoved, s.SlabReassignEvictionsNomem)
	}
	checkConsistency(t, c)

	d := newCache(t, Config{Now: clk.Now, NoCrawler: true, NoSlabReassign: true})
	if err := d.Reassign(1, 2); !errors.Is(err, ErrReassignDisabled) {
		t.Fatalf("NoSlabReassign: %v", err)
	}
	if d.Automove() != 1 {
		t.Fatalf("NoSlabReassign: automove %d, want memcached's 1 (without effect)", d.Automove())
	}
}

// TestReassignBusy checks that a second Reassign while a page is moving is
// refused with ErrBusy.
func TestReassignBusy(t *testing.T) {
	c, _ := newFakeCache(t)
	c.rebalBusy.Store(true) // as if the mover were at work
	if err := c.Reassign(1, 2); !errors.Is(err, ErrBusy) {
		t.Fatalf("Reassign while busy = %v, want ErrBusy", err)
	}
	c.rebalBusy.Store(false)
	if err := c.Reassign(1, 2); !errors.Is(err, ErrNoSpare) {
		t.Fatalf("Reassign when idle = %v, want ErrNoSpare", err)
	}
}

// TestAutomoveAggressive checks slab_automove=2: every eviction asks for a
// page from a class with pages to spare.
func TestAutomoveAggressive(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true, MemoryLimit: 4 << 20, SlabAutomove: -1})
	if err := c.SetAutomove(3); !errors.Is(err, ErrBadSetting) {
		t.Fatalf("SetAutomove(3) = %v", err)
	}
	small := strings.Repeat("s", 100)
	for i := range 4 * 6898 {
		mustSet(t, c, fmt.Sprintf("s%05d", i), small)
	}
	large := strings.Repeat("L", 1000)
	largeCls := c.classFor(c.ntotal(6, len(large)))
	if err := c.SetAutomove(2); err != nil {
		t.Fatal(err)
	}
	// Each eviction asks for a page; the mover moves one at a time.
	for i := 0; i < 20000 && c.classes[largeCls].npages.Load() < 3; i++ {
		mustSet(t, c, fmt.Sprintf("L%05d", i), large)
		if i%100 == 0 {
			waitFor(t, "the mover", func() bool { return !c.rebalBusy.Load() })
		}
	}
	if n := c.classes[largeCls].npages.Load(); n < 3 {
		t.Fatalf("the evicting class has %d pages, want pages to follow its evictions", n)
	}
	if err := c.SetAutomove(0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mover", func() bool { return !c.rebalBusy.Load() })
	n := c.classes[largeCls].npages.Load()
	for i := range 5000 {
		mustSet(t, c, fmt.Sprintf("M%05d", i), large)
	}
	if m := c.classes[largeCls].npages.Load(); m != n {
		t.Fatalf("with automove 0 the class went from %d to %d pages", n, m)
	}
	checkConsistency(t, c)
}

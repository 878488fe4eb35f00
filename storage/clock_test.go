package storage

import (
	"maps"
	"testing"
	"time"
)

// TestWallClockSteps steps the wall clock an hour forward and two back
// while the monotonic clock runs on, as NTP or an operator may do to a
// running server: no item's remaining time changes, none expires early,
// the cache's time (memcached's "time" stat) does not jump, and no age
// (LRU tails, last access, idle time) goes negative and wraps.
func TestWallClockSteps(t *testing.T) {
	const day = 24 * 3600
	clk := newFakeClock()
	c := newCache(t, Config{Clock: clk, NoCrawler: true})
	start := clk.Now().Unix()
	exptimes := map[string]int64{
		"short":    10,
		"long":     2 * 3600,
		"absolute": start + 40*day, // beyond 30 days: a Unix time
		"never":    0,
	}
	for k, exp := range exptimes {
		mustStore(t, c, ModeSet, k, "v", 0, exp, 0)
	}
	ttls := func() map[string]int64 {
		t.Helper()
		out := map[string]int64{}
		for k := range exptimes {
			var ttl int64
			if !c.MetaDebug([]byte(k), func(e MetaEntry) { ttl = e.TTL() }) {
				t.Fatalf("%s is gone at %s", k, clk.Now().UTC())
			}
			out[k] = ttl
		}
		return out
	}
	clk.Advance(3 * time.Second)
	want := ttls()
	if want["short"] != 7 || want["never"] != -1 || want["absolute"] != 40*day-3 {
		t.Fatalf("TTLs %v", want)
	}
	now := c.CurrentTime()
	for _, step := range []time.Duration{time.Hour, -2 * time.Hour, time.Hour} {
		clk.StepWall(step)
		if got := ttls(); !maps.Equal(got, want) {
			t.Fatalf("after a wall step of %v: TTLs %v, want %v", step, got, want)
		}
		if got := c.CurrentTime(); got != now {
			t.Fatalf("after a wall step of %v: CurrentTime %d, want %d", step, got, now)
		}
		s := stats(c)
		for _, cs := range s.Classes {
			if cs.AgeHot > 3 || cs.AgeWarm > 3 || cs.Age > 3 {
				t.Fatalf("after a wall step of %v: class %d ages hot %d warm %d cold %d", step, cs.ID, cs.AgeHot, cs.AgeWarm, cs.Age)
			}
		}
		var idle uint32
		c.MetaDebug([]byte("long"), func(e MetaEntry) { idle = e.Idle() })
		if idle > 3 {
			t.Fatalf("after a wall step of %v: idle %d", step, idle)
		}
		it, _ := lookup(c, "never")
		if it.LastAccess > now || it.LastAccess < now-3 {
			t.Fatalf("after a wall step of %v: last access %d, now %d", step, it.LastAccess, now)
		}
	}
	// Time itself still counts: "short" lives its 10 seconds, no more.
	clk.Advance(6 * time.Second)
	if _, ok := value(c, "short"); !ok {
		t.Fatal("short expired after 9 s of its 10")
	}
	clk.Advance(time.Second)
	if _, ok := value(c, "short"); ok {
		t.Fatal("short alive after its 10 s")
	}
	delete(exptimes, "short")
	if got := ttls(); got["long"] != want["long"]-7 || got["absolute"] != want["absolute"]-7 {
		t.Fatalf("TTLs after 7 s: %v, want 7 less than %v", got, want)
	}
}

// TestAgesNeverWrap reads ages with a current time a second older than
// an item's last access, as happens when the clock ticks between a
// goroutine's reading of it and another's bump of an item: the ages are
// 0, not 2^32-1.
func TestAgesNeverWrap(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Config{Now: clk.Now, NoCrawler: true, SlabAutomove: -1})
	mustSet(t, c, "k", "v")
	clk.Advance(-time.Second)
	now := c.relNow()
	for _, cs := range stats(c).Classes {
		if cs.AgeHot != 0 || cs.AgeWarm != 0 || cs.Age != 0 {
			t.Errorf("class %d ages hot %d warm %d cold %d, want 0", cs.ID, cs.AgeHot, cs.AgeWarm, cs.Age)
		}
	}
	var idle uint32
	c.MetaDebug([]byte("k"), func(e MetaEntry) { idle = e.Idle() })
	if idle != 0 {
		t.Errorf("idle %d, want 0", idle)
	}
	cl := &c.classes[c.classFor(c.ntotal(1, 1))]
	cl.mu.Lock()
	// An item younger than the tail age limit stays where it is.
	moved := c.pullTailLocked(cl, lruHot, 1<<40, 10, false, now)
	cl.mu.Unlock()
	if moved != 0 {
		t.Errorf("pullTailLocked moved %d items of age 0 with a limit of 10 s", moved)
	}
	if age, ok := c.tailAge(cl, now); !ok || age != 0 {
		t.Errorf("tailAge = %d, %v; want 0, true", age, ok)
	}
}

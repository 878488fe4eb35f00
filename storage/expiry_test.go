package storage

import (
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	const month = 30 * 24 * 3600
	tests := []struct {
		name    string
		exptime func(now int64) int64
		alive   []time.Duration // offsets at which the item must be found
		gone    time.Duration   // first offset at which it must be gone; 0 = never
	}{
		{"never", func(int64) int64 { return 0 }, []time.Duration{0, 365 * 24 * time.Hour}, 0},
		{"relative", func(int64) int64 { return 10 }, []time.Duration{0, 9 * time.Second}, 10 * time.Second},
		{"relative one second", func(int64) int64 { return 1 }, []time.Duration{0}, time.Second},
		{"relative 30 days", func(int64) int64 { return month }, []time.Duration{month*time.Second - time.Second}, month * time.Second},
		{"absolute", func(now int64) int64 { return now + month + 100 }, []time.Duration{(month + 99) * time.Second}, (month + 100) * time.Second},
		{"absolute in the past", func(now int64) int64 { return now - 10 }, nil, -1},
		{"absolute before start", func(int64) int64 { return month + 1 }, nil, -1},
		{"negative", func(int64) int64 { return -1 }, nil, -1},
		{"very negative", func(int64) int64 { return -1 << 40 }, nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newCache(t, Config{Now: clk.Now, NoCrawler: true})
			start := clk.Now()
			mustStore(t, c, ModeSet, "k", "v", 0, tt.exptime(start.Unix()), 0)
			at := func(d time.Duration) bool {
				clk.mu.Lock()
				clk.t = start.Add(d)
				clk.mu.Unlock()
				_, ok := value(c, "k")
				return ok
			}
			for _, d := range tt.alive {
				if !at(d) {
					t.Fatalf("item gone at +%v", d)
				}
			}
			switch {
			case tt.gone < 0:
				if at(0) {
					t.Fatal("item stored already expired is visible")
				}
			case tt.gone > 0:
				if at(tt.gone) {
					t.Fatalf("item alive at +%v", tt.gone)
				}
				if s := stats(c); s.GetExpired != 1 || s.GetMisses != 1 || s.CurrItems != 0 {
					t.Fatalf("get_expired %d get_misses %d curr_items %d", s.GetExpired, s.GetMisses, s.CurrItems)
				}
			}
		})
	}
}

func TestExptimeReported(t *testing.T) {
	c, clk := newFakeCache(t)
	mustStore(t, c, ModeSet, "k", "v", 0, 100, 0)
	it, _ := lookup(c, "k")
	if want := clk.Now().Unix() + 100; it.Exptime != want {
		t.Fatalf("Exptime = %d, want %d", it.Exptime, want)
	}
	if c.CurrentTime() != clk.Now().Unix() {
		t.Fatalf("CurrentTime = %d, want %d", c.CurrentTime(), clk.Now().Unix())
	}
	if c.Uptime() != 2 || c.ProcessStarted() != clk.Now().Unix()-62 {
		t.Fatalf("Uptime %d ProcessStarted %d", c.Uptime(), c.ProcessStarted())
	}
	clk.Advance(5 * time.Second)
	if c.Uptime() != 7 {
		t.Fatalf("Uptime after 5s = %d", c.Uptime())
	}
}

func TestRealClock(t *testing.T) {
	c := newCache(t, Config{NoCrawler: true})
	if d := c.CurrentTime() - time.Now().Unix(); d < -1 || d > 1 {
		t.Fatalf("CurrentTime off by %d s", d)
	}
	start := c.Uptime()
	waitFor(t, "the clock to tick", func() bool { return c.Uptime() > start })
}

func TestTouchAndGAT(t *testing.T) {
	c, clk := newFakeCache(t)
	mustStore(t, c, ModeSet, "k", "v", 0, 10, 0)
	if res := c.Touch([]byte("k"), 100); res != Stored {
		t.Fatalf("touch = %v", res)
	}
	clk.Advance(50 * time.Second)
	if _, ok := value(c, "k"); !ok {
		t.Fatal("touched item expired at its old time")
	}
	var got Item
	if !c.GetAndTouch([]byte("k"), 1000, func(it Item) { got = it }) {
		t.Fatal("gat missed")
	}
	if string(got.Value) != "v" || got.Exptime != clk.Now().Unix()+1000 {
		t.Fatalf("gat item %q exptime %d", got.Value, got.Exptime)
	}
	clk.Advance(900 * time.Second)
	if _, ok := value(c, "k"); !ok {
		t.Fatal("gat exptime not applied")
	}
	// touch to a negative exptime expires the item (memcached 1.6.18).
	if res := c.Touch([]byte("k"), -1); res != Stored {
		t.Fatalf("touch -1 = %v", res)
	}
	if _, ok := value(c, "k"); ok {
		t.Fatal("item alive after touch -1")
	}
	if res := c.Touch([]byte("missing"), 10); res != NotFound {
		t.Fatalf("touch missing = %v", res)
	}
	if c.GetAndTouch([]byte("missing"), 10, nil) {
		t.Fatal("gat on missing key hit")
	}
	s := stats(c)
	if s.TouchMisses != 2 || sumClass(s, func(cs ClassStats) uint64 { return cs.TouchHits }) != 3 {
		t.Fatalf("touch_misses %d touch_hits %d", s.TouchMisses, sumClass(s, func(cs ClassStats) uint64 { return cs.TouchHits }))
	}
	// gat counts as touch, not get (memcached 1.6.18).
	if s.GetMisses != 1 {
		t.Fatalf("get_misses = %d, want 1 (only the plain get)", s.GetMisses)
	}
}

func TestFetchedAndLastAccess(t *testing.T) {
	c, clk := newFakeCache(t)
	mustSet(t, c, "k", "v")
	set := clk.Now().Unix()
	clk.Advance(3 * time.Second)
	it, _ := lookup(c, "k")
	if it.Fetched || it.LastAccess != set {
		t.Fatalf("first get: fetched %v last access %d, want false %d", it.Fetched, it.LastAccess, set)
	}
	it, _ = lookup(c, "k")
	if !it.Fetched {
		t.Fatal("second get: not fetched")
	}
}

func TestStoreOnExpiredKey(t *testing.T) {
	c, clk := newFakeCache(t)
	mustStore(t, c, ModeSet, "k", "v", 0, 1, 0)
	clk.Advance(2 * time.Second)
	// add succeeds on an expired key, and the lookup counts get_expired,
	// as memcached's do_store_item does.
	if res := mustStore(t, c, ModeAdd, "k", "w", 0, 0, 0); res != Stored {
		t.Fatalf("add on expired key = %v", res)
	}
	if s := stats(c); s.GetExpired != 1 || s.CurrItems != 1 {
		t.Fatalf("get_expired %d curr_items %d", s.GetExpired, s.CurrItems)
	}
}

func TestFlushAll(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		name := "cas"
		if noCAS {
			name = "nocas"
		}
		t.Run(name+"/immediate", func(t *testing.T) {
			clk := newFakeClock()
			c := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			mustSet(t, c, "old", "1")
			clk.Advance(time.Second)
			mustSet(t, c, "same-second", "1")
			c.FlushAll(0)
			mustSet(t, c, "after", "1")
			if _, ok := value(c, "old"); ok {
				t.Fatal("old item survived flush_all")
			}
			if _, ok := value(c, "same-second"); ok {
				t.Fatal("item stored in the flush second survived")
			}
			// memcached: with CAS an item stored after the flush in the same
			// second survives; with -C it is flushed too (its time is not
			// after oldest_live) until the clock moves.
			_, ok := value(c, "after")
			if ok == noCAS {
				t.Fatalf("item stored after flush visible = %v", ok)
			}
			clk.Advance(time.Second)
			mustSet(t, c, "later", "1")
			if _, ok := value(c, "later"); !ok {
				t.Fatal("item stored a second after the flush is gone")
			}
			if s := stats(c); s.GetFlushed < 2 {
				t.Fatalf("get_flushed = %d", s.GetFlushed)
			}
		})
		t.Run(name+"/delayed", func(t *testing.T) {
			// memcached: flush_all N sets oldest_live to now+N-1 with CAS
			// and to now+N with -C; items last updated at or before it
			// are gone once the clock reaches it.
			clk := newFakeClock()
			c := newCache(t, Config{Now: clk.Now, NoCrawler: true, DisableCAS: noCAS})
			mustSet(t, c, "a", "1")
			c.FlushAll(2)
			mustSet(t, c, "b", "1")
			if _, ok := value(c, "a"); !ok {
				t.Fatal("item flushed before the delay")
			}
			clk.Advance(time.Second)
			if _, ok := value(c, "a"); ok != noCAS {
				t.Fatalf("at +1s item visible = %v", ok)
			}
			clk.Advance(time.Second)
			for _, k := range []string{"a", "b"} {
				if _, ok := value(c, k); ok {
					t.Fatalf("%s survived a delayed flush", k)
				}
			}
			mustSet(t, c, "c", "1")
			if _, ok := value(c, "c"); ok == noCAS {
				t.Fatalf("item stored at +2s visible = %v", ok)
			}
			clk.Advance(time.Second)
			mustSet(t, c, "d", "1")
			if _, ok := value(c, "d"); !ok {
				t.Fatal("item stored after the flush time is gone")
			}
		})
	}
}

func TestFlushAllCountsForOtherCommands(t *testing.T) {
	c, clk := newFakeCache(t)
	mustSet(t, c, "k", "1")
	clk.Advance(time.Second)
	c.FlushAll(0)
	if res := c.Delete([]byte("k")); res != NotFound {
		t.Fatalf("delete of flushed item = %v", res)
	}
	if res := mustStore(t, c, ModeReplace, "k", "2", 0, 0, 0); res != NotStored {
		t.Fatalf("replace of flushed item = %v", res)
	}
}

package storage

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Clock (or, by its Now, a Config.Now) that moves only
// when told to.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time     // the wall clock
	mono time.Duration // the monotonic clock
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Unix(1_700_000_000, 0)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Monotonic() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mono
}

// Advance lets d pass: both clocks move.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mono += d
	f.mu.Unlock()
}

// StepWall steps the wall clock alone, as NTP or date(1) does.
func (f *fakeClock) StepWall(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// newCache returns a Cache closed at the end of the test; a nil clock gives
// a fake one.
func newCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newFakeCache returns a Cache on a fake clock, without crawler.
func newFakeCache(t testing.TB) (*Cache, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	return newCache(t, Config{Now: clk.Now, NoCrawler: true}), clk
}

func mustStore(t testing.TB, c *Cache, mode StoreMode, key, value string, flags uint32, exptime int64, cas uint64) StoreResult {
	t.Helper()
	res, err := c.Store(mode, []byte(key), flags, exptime, []byte(value), cas)
	if err != nil {
		t.Fatalf("Store(%d, %q): %v", mode, key, err)
	}
	return res
}

func mustSet(t testing.TB, c *Cache, key, value string) {
	t.Helper()
	if res := mustStore(t, c, ModeSet, key, value, 0, 0, 0); res != Stored {
		t.Fatalf("set %q = %v, want Stored", key, res)
	}
}

// lookup returns a copy of the item under key.
func lookup(c *Cache, key string) (Item, bool) {
	var it Item
	ok := c.Get([]byte(key), func(i Item) {
		it = i
		it.Key = bytes.Clone(i.Key)
		it.Value = i.AppendValue(nil)
		it.cache = nil
	})
	return it, ok
}

func value(c *Cache, key string) (string, bool) {
	it, ok := lookup(c, key)
	return string(it.Value), ok
}

func stats(c *Cache) Stats {
	var s Stats
	c.ReadStats(&s)
	return s
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

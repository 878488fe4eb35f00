package storage

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRefWidthFollowsLimit checks that only a cache beyond what 32-bit refs
// address pays for wider ones: a larger header and two-word buckets.
func TestRefWidthFollowsLimit(t *testing.T) {
	for _, tc := range []struct {
		limit    int64
		noCAS    bool
		wide     bool
		hdr      uint32
		maxLimit int64
	}{
		{64 << 20, false, false, headerSize, MaxNarrowLimit},
		{64 << 20, true, false, headerSizeNoCAS, MaxNarrowLimit},
		{MaxNarrowLimit, false, false, headerSize, MaxNarrowLimit},
		{MaxNarrowLimit + 1, false, true, headerSizeWide, MaxNarrowLimit + SlabPageSize},
		{100 << 30, false, true, headerSizeWide, 100 << 30},
		{100 << 30, true, true, headerSizeWide, 100 << 30},
	} {
		c := newCache(t, Config{MemoryLimit: tc.limit, DisableCAS: tc.noCAS, NoCrawler: true})
		s := stats(c)
		wantHash := uint64(4 << 16)
		if tc.wide {
			wantHash = 8 << 16
		}
		if c.wide != tc.wide || c.hdrSize != tc.hdr || s.HashBytes != wantHash || c.maxLimit() != tc.maxLimit {
			t.Errorf("limit %d: wide %v header %d hash bytes %d max limit %d, want %v %d %d %d",
				tc.limit, c.wide, c.hdrSize, s.HashBytes, c.maxLimit(), tc.wide, tc.hdr, wantHash, tc.maxLimit)
		}
		if s.LimitMaxbytes != uint64(tc.limit) || s.TotalMalloced != 0 {
			t.Errorf("limit %d: limit_maxbytes %d total_malloced %d", tc.limit, s.LimitMaxbytes, s.TotalMalloced)
		}
		if err := c.SetMemoryLimit(tc.maxLimit + 1); !errors.Is(err, ErrMemoryLimit) {
			t.Errorf("limit %d: raising past %d: %v", tc.limit, tc.maxLimit, err)
		}
		if err := c.SetMemoryLimit(tc.maxLimit); err != nil {
			t.Errorf("limit %d: raising to %d: %v", tc.limit, tc.maxLimit, err)
		}
		c.Close()
	}
	if _, err := New(Config{MemoryLimit: MaxMemoryLimit + 1}); !errors.Is(err, ErrMemoryLimit) {
		t.Errorf("limit past MaxMemoryLimit: %v", err)
	}
}

// newWideCache returns a cache with wide refs whose pages all have ids
// past MaxNarrowPages, so that every ref needs its high half, and whose
// memory limit is then lowered to limit so that it evicts and moves pages.
func newWideCache(t *testing.T, cfg Config, limit int64) *Cache {
	t.Helper()
	cfg.MemoryLimit = MaxNarrowLimit + 8<<30
	c := newCache(t, cfg)
	if !c.wide {
		t.Fatal("a cache over MaxNarrowLimit has narrow refs")
	}
	c.pageMu.Lock()
	c.nextID = MaxNarrowPages + 1
	c.pageMu.Unlock()
	if err := c.SetMemoryLimit(limit); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWideRefs runs stores of every size, overwrites, deletes, evictions,
// page moves and hash expansions on a cache whose refs all exceed 32 bits.
func TestWideRefs(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		t.Run(fmt.Sprint("noCAS=", noCAS), func(t *testing.T) {
			// Small enough that chained large items (which take their
			// own size) still fill it and evict.
			const limit = 32 << 20
			c := newWideCache(t, Config{DisableCAS: noCAS, HashPowerInit: 12, NoCrawler: true}, limit)
			rng := rand.New(rand.NewPCG(3, 4))
			stores := 30000
			if raceEnabled {
				stores = 12000
			}
			want := map[string]string{}
			for i := 0; i < stores; i++ {
				// Mostly small items, so that the table expands; some of
				// every size up to 1 MiB, so that every class is used.
				n := 1 + rng.IntN(60)
				if i%40 == 0 {
					n = int(math.Exp2(rng.Float64() * 20))
				}
				if !c.ItemFits(10, n) {
					n = 1000
				}
				key := fmt.Sprintf("key%05d", rng.IntN(20000))
				v := strings.Repeat(key[3:], n/5+1)[:n]
				if i%11 == 0 {
					c.Delete([]byte(key))
					delete(want, key)
					continue
				}
				if _, err := c.Store(ModeSet, []byte(key), 0, 0, []byte(v), 0); err != nil {
					t.Fatalf("store %d (%d bytes): %v", i, n, err)
				}
				want[key] = v
			}
			present := 0
			for key, v := range want {
				got, ok := value(c, key)
				if ok {
					present++
					if got != v {
						t.Fatalf("%s corrupted: %d bytes, want %d", key, len(got), len(v))
					}
				}
			}
			s := stats(c)
			t.Logf("items %d present %d of %d evictions %d hash power %d", s.CurrItems, present, len(want), s.Evictions, s.HashPowerLevel)
			if s.Evictions == 0 || s.HashPowerLevel == 12 || present == 0 || s.TotalMalloced > uint64(memBound(t, c, limit)) {
				t.Fatalf("evictions %d hash power %d present %d malloced %d: the test did not exercise the cache",
					s.Evictions, s.HashPowerLevel, present, s.TotalMalloced)
			}
			checkConsistency(t, c)
			// Every live item is in a page whose refs need the high half.
			n := 0
			c.DumpHash(func(it *DumpItem) bool {
				hv := c.hashKey(it.Key)
				st := c.stripeFor(hv)
				st.mu.Lock()
				ref, _ := c.findRawLocked(st, it.Key, hv)
				st.mu.Unlock()
				if ref>>32 == 0 {
					t.Errorf("%s at ref %#x, which 32 bits hold", it.Key, ref)
					return false
				}
				n++
				return true
			})
			if n == 0 {
				t.Fatal("no items dumped")
			}
		})
	}
}

// TestInitialMalloced is memcached's t/64bit.t: a 4098 MB cache that
// starts with just over 4 GiB taken has room for one page.
func TestInitialMalloced(t *testing.T) {
	const initial = 1<<32 + 32
	c := newCache(t, Config{MemoryLimit: 4098 << 20, NoEvict: true, InitialMalloced: initial, NoCrawler: true})
	if s := stats(c); s.TotalMalloced != initial || s.LimitMaxbytes != 4297064448 || s.ActiveSlabs != 0 {
		t.Fatalf("total_malloced %d limit_maxbytes %d active_slabs %d", s.TotalMalloced, s.LimitMaxbytes, s.ActiveSlabs)
	}
	val := []byte(strings.Repeat("a", 400<<10))
	var stored int
	for i := range 5 {
		_, err := c.Store(ModeSet, []byte(fmt.Sprint("big", i)), 0, 0, val, 0)
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, ErrNoMemory):
			t.Fatal(err)
		}
	}
	if s := stats(c); stored != 2 || s.TotalMalloced != initial+SlabPageSize || s.ActiveSlabs != 1 {
		t.Fatalf("stored %d total_malloced %d active_slabs %d", stored, s.TotalMalloced, s.ActiveSlabs)
	}
	// A class without pages gets one past the limit, as in memcached,
	// and keeps it: the maintainer's balance does not take it back.
	small := []byte(strings.Repeat("s", 100<<10))
	stored = 0
	for i := range 12 {
		_, err := c.Store(ModeSet, []byte(fmt.Sprint("small", i)), 0, 0, small, 0)
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, ErrNoMemory):
			t.Fatal(err)
		}
	}
	c.balance()
	if s := stats(c); stored != 10 || s.TotalMalloced != initial+2*SlabPageSize || s.ActiveSlabs != 2 || s.CurrItems != 12 {
		t.Fatalf("stored %d total_malloced %d active_slabs %d curr_items %d", stored, s.TotalMalloced, s.ActiveSlabs, s.CurrItems)
	}
	if _, err := New(Config{InitialMalloced: -1}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("negative InitialMalloced: %v", err)
	}
}

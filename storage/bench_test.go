package storage

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
)

func TestGetHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, limit := range []int64{0, MaxNarrowLimit + 1<<30} {
		getHitAllocatesNothing(t, Config{MemoryLimit: limit, NoCrawler: true})
	}
}

func getHitAllocatesNothing(t *testing.T, cfg Config) {
	c := newCache(t, cfg)
	mustSet(t, c, "key", "value")
	key := []byte("key")
	var n int
	fn := func(it Item) { n += len(it.Value) }
	if a := testing.AllocsPerRun(1000, func() { c.Get(key, fn) }); a != 0 {
		t.Fatalf("Get hit allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(1000, func() { c.Get([]byte("missing"), fn) }); a != 0 {
		t.Fatalf("Get miss allocates %.1f times", a)
	}
	val := []byte("value")
	if a := testing.AllocsPerRun(1000, func() { c.Store(ModeSet, key, 0, 0, val, 0) }); a != 0 {
		t.Fatalf("Store allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(1000, func() { c.Incr([]byte("key"), 1, false) }); a != 0 {
		t.Fatalf("Incr allocates %.1f times", a)
	}
	if n == 0 {
		t.Fatal("callback not called")
	}
}

// An eviction reported to the eviction hook allocates nothing: a full
// cache evicts on every set.
func TestEvictingStoreAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := newCache(t, Config{MemoryLimit: 2 << 20, NoCrawler: true})
	var evicted int
	c.SetEvictionHook(func(ev EvictedItem) { evicted += len(ev.Key) })
	val := make([]byte, 1000)
	key := make([]byte, 0, 32)
	i := 0
	set := func() {
		key = strconv.AppendInt(key[:0], int64(i), 10)
		i++
		if _, err := c.Store(ModeSet, key, 0, 0, val, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 10000 { // fill the cache
		set()
	}
	if evicted == 0 {
		t.Fatal("filling the cache evicted nothing")
	}
	before := evicted
	if a := testing.AllocsPerRun(1000, set); a != 0 {
		t.Fatalf("an evicting Store allocates %.1f times", a)
	}
	if evicted == before {
		t.Fatal("the measured stores evicted nothing")
	}
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("bench:key:" + strconv.Itoa(i))
	}
	return keys
}

// filledCache returns a cache holding n items of 100 bytes, and their keys.
func filledCache(b *testing.B, cfg Config, n int) (*Cache, [][]byte) {
	c := newCache(b, cfg)
	keys := benchKeys(n)
	val := make([]byte, 100)
	for _, k := range keys {
		if _, err := c.Store(ModeSet, k, 0, 0, val, 0); err != nil {
			b.Fatal(err)
		}
	}
	return c, keys
}

func BenchmarkGetHit(b *testing.B) {
	c, keys := filledCache(b, Config{NoCrawler: true}, 10000)
	var n int
	fn := func(it Item) { n += len(it.Value) }
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Get(keys[i%len(keys)], fn)
	}
}

// BenchmarkGetHitWide is BenchmarkGetHit on a cache past MaxNarrowLimit,
// whose refs are 48 bits wide.
func BenchmarkGetHitWide(b *testing.B) {
	c, keys := filledCache(b, Config{MemoryLimit: MaxNarrowLimit + 1<<30, NoCrawler: true}, 10000)
	var n int
	fn := func(it Item) { n += len(it.Value) }
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Get(keys[i%len(keys)], fn)
	}
}

func BenchmarkSet(b *testing.B) {
	for _, size := range []int{100, 4096} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			c := newCache(b, Config{NoCrawler: true})
			keys := benchKeys(10000)
			val := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.Store(ModeSet, keys[i%len(keys)], 0, 0, val, 0)
			}
		})
	}
}

// BenchmarkSetEvicting stores far more than fits, so every set evicts.
func BenchmarkSetEvicting(b *testing.B) {
	c := newCache(b, Config{NoCrawler: true, MemoryLimit: 8 << 20})
	keys := benchKeys(200000)
	val := make([]byte, 200)
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Store(ModeSet, keys[i%len(keys)], 0, 0, val, 0)
	}
}

// BenchmarkParallelMix is 90% gets and 10% sets from GOMAXPROCS
// goroutines over 100k keys.
func BenchmarkParallelMix(b *testing.B) {
	c := newCache(b, Config{NoCrawler: true})
	keys := benchKeys(100000)
	val := make([]byte, 100)
	for _, k := range keys {
		c.Store(ModeSet, k, 0, 0, val, 0)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 1))
		var n int
		fn := func(it Item) { n += len(it.Value) }
		for pb.Next() {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(10) == 0 {
				c.Store(ModeSet, k, 0, 0, val, 0)
			} else {
				c.Get(k, fn)
			}
		}
	})
}

// BenchmarkGetHitRandom reads 100k items in random order, so that most
// lookups miss the CPU caches, as on a real server.
func BenchmarkGetHitRandom(b *testing.B) {
	c, keys := filledCache(b, Config{NoCrawler: true}, 100000)
	rng := rand.New(rand.NewPCG(1, 1))
	var n int
	fn := func(it Item) { n += len(it.Value) }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.Get(keys[rng.IntN(len(keys))], fn)
	}
}

// BenchmarkGetMulti looks up 10 random keys of 400k at a time, as a
// multi-key get does, with and without Prefetch first; ns/op is per batch.
func BenchmarkGetMulti(b *testing.B) {
	c, keys := filledCache(b, Config{NoCrawler: true, MemoryLimit: 256 << 20}, 400000)
	var n int
	fn := func(it Item) { n += len(it.Value) }
	for _, pf := range []bool{false, true} {
		b.Run(fmt.Sprintf("prefetch=%v", pf), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			batch := make([][]byte, 10)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					batch[i] = keys[rng.IntN(len(keys))]
				}
				if pf {
					c.Prefetch(batch)
				}
				for _, k := range batch {
					c.Get(k, fn)
				}
			}
		})
	}
}

// BenchmarkExpand doubles a table of 2^18 buckets holding 1.4 items per
// bucket (just under the 1.5 that asks for a doubling), on a fresh cache
// each time, and reports the time per item moved.
func BenchmarkExpand(b *testing.B) {
	const power = 18
	const items = 14 << power / 10
	for b.Loop() {
		b.StopTimer()
		c, _ := filledCache(b, Config{NoCrawler: true, HashPowerInit: power, MemoryLimit: 256 << 20}, items)
		if p := c.hashPower.Load(); p != power {
			b.Fatalf("the table grew to power %d while filling", p)
		}
		b.StartTimer()
		c.expand(power + 1)
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*items), "ns/item")
}

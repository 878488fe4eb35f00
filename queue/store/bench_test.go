package store

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPutTake is one producer-consumer pair with SyncNever: a Put and
// a non-transactional Take per op.
func BenchmarkPutTake(b *testing.B) {
	for _, size := range []int{100, 4096} {
		b.Run(fmt.Sprintf("never/%dB", size), func(b *testing.B) {
			q := open(b, b.TempDir(), Config{})
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := q.Put(Item{Data: data}); err != nil {
					b.Fatal(err)
				}
				if _, _, ok, err := q.Take(time.Now(), false); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "put+take/s")
		})
	}
}

// BenchmarkPutTakeOpen is the same with reliable reads: Take in a
// transaction, then Confirm.
func BenchmarkPutTakeOpen(b *testing.B) {
	q := open(b, b.TempDir(), Config{})
	data := make([]byte, 100)
	b.ReportAllocs()
	for range b.N {
		if err := q.Put(Item{Data: data}); err != nil {
			b.Fatal(err)
		}
		_, xid, ok, err := q.Take(time.Now(), true)
		if !ok || err != nil {
			b.Fatal(ok, err)
		}
		if err := q.Confirm(xid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "put+take/s")
}

// BenchmarkPutAlways measures group commit: Puts/s of 100-byte items with
// SyncAlways from 1 and from 16 concurrent writers.
func BenchmarkPutAlways(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchPuts(b, writers, Config{Sync: SyncPolicy{Mode: SyncAlways}})
		})
	}
}

// BenchmarkPutInterval is the same with a 10ms background sync.
func BenchmarkPutInterval(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchPuts(b, writers, Config{Sync: SyncPolicy{Mode: SyncInterval, Every: 10 * time.Millisecond}})
		})
	}
}

func benchPuts(b *testing.B, writers int, cfg Config) {
	q := open(b, b.TempDir(), cfg)
	data := make([]byte, 100)
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := q.Put(Item{Data: data}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkMemoryPerItem reports the Go heap a queued 100-byte item costs.
func BenchmarkMemoryPerItem(b *testing.B) {
	const n = 100_000
	for range b.N {
		b.StopTimer()
		q, err := Open(b.TempDir(), "q", Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		data := make([]byte, 100)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for range n {
			if err := q.Put(Item{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/item")
		q.Close()
	}
}

// Command gcscale measures what the Go garbage collector costs a corvid
// storage.Cache holding millions of items.
//
// It loads -items small items into a storage.Cache, then for -duration runs
// gets and sets (90/10, random keys) from -workers goroutines while it
// forces a collection every -gc-every and allocates -garbage MB/s of
// short-lived garbage, as a server's connections would. It reports, for
// the measured phase only, the stop-the-world pauses from the runtime's
// /sched/pauses/total/gc:seconds histogram (each pause) and from
// debug.GCStats (per cycle), the part of each pause spent stopping the
// goroutines (/sched/pauses/stopping/gc:seconds: waiting for every thread
// to reach a safe point, which grows when the OS has descheduled one), the
// heap the collector has to scan
// (/gc/scan/heap:bytes), the live heap and the collector's CPU time.
//
// Because the cache keeps items in slab pages outside the Go heap and its
// index is a slice of integers, the scanned heap stays small whatever the
// item count. -engine map stores the same items in a map[string][]byte
// instead, for comparison.
//
// The report goes to stdout as "name value" lines.
//
// Usage:
//
//	gcscale -items 10000000 -m 2048 -duration 10s
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// config holds the command-line settings.
type config struct {
	items    int
	value    int
	memMB    int64
	duration time.Duration
	workers  int
	gcEvery  time.Duration
	garbage  int // MB/s of short-lived allocations; 0 = none
	engine   string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.items, "items", 10_000_000, "items to load")
	flag.IntVar(&cfg.value, "value", 32, "value size in bytes")
	flag.Int64Var(&cfg.memMB, "m", 2048, "cache memory limit in MB (-m)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured get/set time")
	flag.IntVar(&cfg.workers, "workers", runtime.GOMAXPROCS(0), "goroutines running gets and sets")
	flag.DurationVar(&cfg.gcEvery, "gc-every", 100*time.Millisecond, "force a collection this often (0 = never)")
	flag.IntVar(&cfg.garbage, "garbage", 64, "MB/s of short-lived garbage allocated meanwhile")
	flag.StringVar(&cfg.engine, "engine", "storage", "storage (corvid's slab cache) or map (map[string][]byte, for comparison)")
	flag.Parse()
	if err := run(cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gcscale:", err)
		os.Exit(2)
	}
}

// engine is what the benchmark drives.
type engine interface {
	set(key, value []byte) bool
	get(key []byte) bool
	close()
}

type slabEngine struct{ c *storage.Cache }

func (e slabEngine) set(k, v []byte) bool {
	r, err := e.c.Store(storage.ModeSet, k, 0, 0, v, 0)
	return err == nil && r == storage.Stored
}

func (e slabEngine) get(k []byte) bool { return e.c.Get(k, func(storage.Item) {}) }
func (e slabEngine) close()            { e.c.Close() }

// mapEngine is the obvious Go cache: one string and one slice per item.
type mapEngine struct {
	mu sync.RWMutex // guards m
	m  map[string][]byte
}

func (e *mapEngine) set(k, v []byte) bool {
	e.mu.Lock()
	e.m[string(k)] = slices.Clone(v)
	e.mu.Unlock()
	return true
}

func (e *mapEngine) get(k []byte) bool {
	e.mu.RLock()
	_, ok := e.m[string(k)]
	e.mu.RUnlock()
	return ok
}

func (e *mapEngine) close() {}

func appendKey(b []byte, i int) []byte {
	return strconv.AppendInt(append(b, "gc:key:"...), int64(i), 10)
}

func run(cfg config, out, progress io.Writer) error {
	if cfg.items < 1 || cfg.value < 0 || cfg.workers < 1 || cfg.duration <= 0 || cfg.garbage < 0 {
		return errors.New("items, workers and duration must be positive; value and garbage not negative")
	}
	var e engine
	switch cfg.engine {
	case "storage":
		c, err := storage.New(storage.Config{MemoryLimit: cfg.memMB << 20, NoCrawler: true})
		if err != nil {
			return err
		}
		e = slabEngine{c}
	case "map":
		e = &mapEngine{m: make(map[string][]byte)}
	default:
		return fmt.Errorf("unknown engine %q", cfg.engine)
	}
	defer e.close()

	value := make([]byte, cfg.value)
	fmt.Fprintf(progress, "loading %d items of %d bytes ...\n", cfg.items, cfg.value)
	loadStart := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range cfg.workers {
		wg.Go(func() {
			var key []byte
			for i := w; i < cfg.items; i += cfg.workers {
				key = appendKey(key[:0], i)
				if !e.set(key, value) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	load := time.Since(loadStart)
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d sets failed during the load (raise -m)", n, cfg.items)
	}
	runtime.GC()

	samples := []metrics.Sample{
		{Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/gc/scan/heap:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/sched/pauses/stopping/gc:seconds"},
	}
	metrics.Read(samples)
	pausesBefore := copyHist(samples[0].Value.Float64Histogram())
	stoppingBefore := copyHist(samples[6].Value.Float64Histogram())
	cyclesBefore := samples[3].Value.Uint64()
	gcCPUBefore, cpuBefore := samples[4].Value.Float64(), samples[5].Value.Float64()
	var gcBefore debug.GCStats
	debug.ReadGCStats(&gcBefore)

	fmt.Fprintf(progress, "running gets and sets for %v with a collection every %v ...\n", cfg.duration, cfg.gcEvery)
	stop := make(chan struct{})
	var ops, misses atomic.Int64
	var maxScan atomic.Uint64
	for w := range cfg.workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var key []byte
			var n, miss int64
			for {
				select {
				case <-stop:
					ops.Add(n)
					misses.Add(miss)
					return
				default:
				}
				for range 256 {
					key = appendKey(key[:0], r.IntN(cfg.items))
					if r.IntN(10) == 0 {
						e.set(key, value)
					} else if !e.get(key) {
						miss++
					}
					n++
				}
			}
		})
	}
	if cfg.garbage > 0 {
		wg.Go(func() { makeGarbage(stop, cfg.garbage) })
	}
	wg.Go(func() {
		// Track the largest scannable heap seen during the run.
		s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > maxScan.Load() {
					maxScan.Store(v)
				}
			}
		}
	})
	start := time.Now()
	deadline := time.NewTimer(cfg.duration)
	var gcTick <-chan time.Time
	if cfg.gcEvery > 0 {
		t := time.NewTicker(cfg.gcEvery)
		defer t.Stop()
		gcTick = t.C
	}
wait:
	for {
		select {
		case <-gcTick:
			runtime.GC()
		case <-deadline.C:
			break wait
		}
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	metrics.Read(samples)
	pauses := diffHist(samples[0].Value.Float64Histogram(), pausesBefore)
	stopping := diffHist(samples[6].Value.Float64Histogram(), stoppingBefore)
	var gcAfter debug.GCStats
	debug.ReadGCStats(&gcAfter)
	cycles := samples[3].Value.Uint64() - cyclesBefore
	gcCPU := samples[4].Value.Float64() - gcCPUBefore
	cpu := samples[5].Value.Float64() - cpuBefore
	cyclePauses := gcAfter.Pause[:min(len(gcAfter.Pause), int(gcAfter.NumGC-gcBefore.NumGC))]
	slices.Sort(cyclePauses)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := func(name string, v any) { fmt.Fprintf(out, "%s %v\n", name, v) }
	w("engine", cfg.engine)
	w("items", cfg.items)
	w("value_bytes", cfg.value)
	w("load_seconds", fmt.Sprintf("%.2f", load.Seconds()))
	w("run_seconds", fmt.Sprintf("%.2f", elapsed.Seconds()))
	w("ops_per_sec", int64(float64(ops.Load())/elapsed.Seconds()))
	w("miss_ratio", fmt.Sprintf("%.4f", float64(misses.Load())/float64(max(ops.Load(), 1))))
	w("gc_cycles", cycles)
	w("stw_pauses", histCount(pauses))
	w("stw_pause_p50_us", fmt.Sprintf("%.1f", 1e6*histQuantile(pauses, 0.50)))
	w("stw_pause_p99_us", fmt.Sprintf("%.1f", 1e6*histQuantile(pauses, 0.99)))
	w("stw_pause_max_us", fmt.Sprintf("%.1f", 1e6*histQuantile(pauses, 1)))
	w("stw_stopping_p99_us", fmt.Sprintf("%.1f", 1e6*histQuantile(stopping, 0.99)))
	w("stw_stopping_max_us", fmt.Sprintf("%.1f", 1e6*histQuantile(stopping, 1)))
	w("cycle_pause_p99_us", fmt.Sprintf("%.1f", us(quantile(cyclePauses, 0.99))))
	w("cycle_pause_max_us", fmt.Sprintf("%.1f", us(quantile(cyclePauses, 1))))
	w("heap_scannable_bytes", samples[1].Value.Uint64())
	w("heap_scannable_max_bytes", max(maxScan.Load(), samples[1].Value.Uint64()))
	w("heap_live_bytes", samples[2].Value.Uint64())
	w("heap_sys_bytes", ms.HeapSys)
	w("gc_cpu_share", fmt.Sprintf("%.4f", gcCPU/max(cpu, 1e-9)))
	return nil
}

// makeGarbage allocates about mbps MB/s in short-lived 4 KB buffers.
func makeGarbage(stop <-chan struct{}, mbps int) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var sink [][]byte
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			sink = sink[:0]
			for range mbps << 20 / 100 / 4096 {
				sink = append(sink, make([]byte, 4096))
			}
		}
	}
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// quantile returns the q-quantile (0-1) of sorted durations, 0 when empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func copyHist(h *metrics.Float64Histogram) *metrics.Float64Histogram {
	return &metrics.Float64Histogram{Counts: slices.Clone(h.Counts), Buckets: slices.Clone(h.Buckets)}
}

// diffHist returns the values recorded in h since before.
func diffHist(h, before *metrics.Float64Histogram) *metrics.Float64Histogram {
	d := copyHist(h)
	for i := range d.Counts {
		d.Counts[i] -= before.Counts[i]
	}
	return d
}

func histCount(h *metrics.Float64Histogram) uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// histQuantile returns the upper bound of the bucket holding the
// q-quantile (0-1), or 0 when h is empty.
func histQuantile(h *metrics.Float64Histogram, q float64) float64 {
	n := histCount(h)
	if n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(n))), 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			if hi := h.Buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return h.Buckets[i]
		}
	}
	return 0
}

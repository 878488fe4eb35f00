package topk

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestExactWhileRoomLeft(t *testing.T) {
	tr := New(8, 0)
	for i, k := range []string{"a", "b", "a", "c", "a", "b"} {
		tr.Add([]byte(k), 1, t0.Add(time.Duration(i)*time.Second))
	}
	got := tr.Top(10, t0)
	want := []Entry{{"a", 3, 0}, {"b", 2, 0}, {"c", 1, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("Top = %v, want %v", got, want)
	}
	if got := tr.Top(2, t0); len(got) != 2 || got[1].Key != "b" {
		t.Fatalf("Top(2) = %v", got)
	}
}

// TestBounds checks Space-Saving's guarantees against exact counts: every
// held key's true count lies in [Weight-Err, Weight], and every key whose
// count exceeds total/k is held.
func TestBounds(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		k := 4 + r.IntN(30)
		tr := New(k, 0)
		exact := map[string]float64{}
		total := 0.0
		for range 2000 + r.IntN(5000) {
			key := fmt.Sprint("k", int(r.ExpFloat64()*float64(k)))
			w := float64(1 + r.IntN(4))
			tr.Add([]byte(key), w, t0)
			exact[key] += w
			total += w
		}
		held := map[string]bool{}
		for _, e := range tr.Top(k, t0) {
			held[e.Key] = true
			if c := exact[e.Key]; c > e.Weight || c < e.Weight-e.Err {
				t.Fatalf("seed %d: %s true %v outside [%v, %v]", seed, e.Key, c, e.Weight-e.Err, e.Weight)
			}
		}
		for key, c := range exact {
			if c > total/float64(k) && !held[key] {
				t.Fatalf("seed %d: %s has %v > total/k = %v but is not held", seed, key, c, total/float64(k))
			}
		}
	}
}

// TestZipfRecall measures the recall of the true top 16 keys of a Zipf(1.1)
// stream over 100,000 keys, sampled 1 in 16 as the server samples, with
// 128 counters.
func TestZipfRecall(t *testing.T) {
	const (
		keys    = 100_000
		n       = 1_000_000
		sample  = 16
		top     = 16
		counter = 128
	)
	r := rand.New(rand.NewPCG(7, 11))
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 5)), 1.1, 1, keys-1)
	// Shuffle key names so that rank does not follow name.
	perm := r.Perm(keys)
	exact := make([]int, keys)
	tr := New(counter, 0)
	buf := make([]byte, 0, 16)
	for i := range n {
		k := perm[z.Uint64()]
		exact[k]++
		if i%sample == 0 {
			buf = fmt.Appendf(buf[:0], "key:%d", k)
			tr.Add(buf, 1, t0)
		}
	}
	order := make([]int, keys)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return exact[b] - exact[a] })
	truth := map[string]bool{}
	for _, k := range order[:top] {
		truth[fmt.Sprintf("key:%d", k)] = true
	}
	found := 0
	for _, e := range tr.Top(top, t0) {
		if truth[e.Key] {
			found++
		}
	}
	recall := float64(found) / top
	t.Logf("recall of the top %d: %.3f", top, recall)
	if recall < 0.95 {
		t.Fatalf("recall %.3f < 0.95", recall)
	}
}

// TestDecayFollowsThePresent: keys hot an hour ago give way to keys hot
// now, although they were counted more in all.
func TestDecayFollowsThePresent(t *testing.T) {
	tr := New(16, time.Minute)
	now := t0
	for i := range 60 * 60 { // an hour of "old" at 10/s
		now = t0.Add(time.Duration(i) * time.Second)
		for range 10 {
			tr.Add([]byte("old"), 1, now)
		}
	}
	for range 5 * 60 { // five minutes of "new" at 2/s
		now = now.Add(time.Second)
		for range 2 {
			tr.Add([]byte("new"), 1, now)
		}
	}
	got := tr.Top(2, now)
	if got[0].Key != "new" {
		t.Fatalf("Top = %v, want new first", got)
	}
	// In a steady state a rate r with half-life h weighs r*h/ln 2.
	if w := got[0].Weight; w < 150 || w > 180 {
		t.Fatalf("new weighs %.1f, want about 2/s * 60 s / ln 2 = 173", w)
	}
	// Weights keep decaying with nothing added, through renormalisation.
	later := now.Add(300 * time.Minute)
	tr.Add([]byte("tick"), 1, later)
	got = tr.Top(3, later)
	if got[0].Key != "tick" || got[1].Weight > 1e-80 {
		t.Fatalf("after 300 half-lives: %v", got)
	}
}

func TestAddHeldKeyAllocatesNothing(t *testing.T) {
	tr := New(4, time.Minute)
	key := []byte("hot")
	tr.Add(key, 1, t0)
	if n := testing.AllocsPerRun(100, func() { tr.Add(key, 1, t0) }); n != 0 {
		t.Fatalf("Add of a held key allocates %v times", n)
	}
}

func TestConcurrentAdd(t *testing.T) {
	tr := New(8, time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				tr.Add([]byte(fmt.Sprint("k", (g*i)%20)), 1, time.Now())
			}
		}()
	}
	wg.Wait()
	if got := tr.Top(100, time.Now()); len(got) != 8 {
		t.Fatalf("%d entries, want 8", len(got))
	}
	tr.Reset()
	if got := tr.Top(100, time.Now()); len(got) != 0 {
		t.Fatalf("%d entries after Reset", len(got))
	}
}

// BenchmarkAdd counts keys drawn from Zipf(1.1), where most samples hit a
// held key, and uniformly from 100,000, where nearly every sample takes
// over the smallest counter.
func BenchmarkAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, 99_999)
	for _, bc := range []struct {
		name string
		next func() uint64
	}{
		{"zipf", z.Uint64},
		{"uniform", func() uint64 { return r.Uint64N(100_000) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := New(128, time.Minute)
			keys := make([][]byte, 4096)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key:%d", bc.next())
			}
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr.Add(keys[i&4095], 1, now)
				i++
			}
		})
	}
}

// TestIndexConsistent churns a small tracker with many keys and checks
// after every Add that the index and the heap agree.
func TestIndexConsistent(t *testing.T) {
	tr := New(8, time.Second)
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 20000 {
		key := fmt.Appendf(nil, "k%d", r.IntN(40))
		tr.Add(key, float64(1+r.IntN(3)), t0.Add(time.Duration(i)*time.Millisecond))
		used := 0
		for _, s := range tr.index {
			if s.hash != 0 {
				used++
			}
		}
		if used != len(tr.counters) || len(tr.heap) != len(tr.counters) {
			t.Fatalf("step %d: %d index slots and %d heap entries for %d counters", i, used, len(tr.heap), len(tr.counters))
		}
		for j, id := range tr.heap {
			c := &tr.counters[id]
			if int(c.pos) != j {
				t.Fatalf("step %d: counter %d is at heap position %d but records %d", i, id, j, c.pos)
			}
			s := tr.find(c.hash)
			if s < 0 || tr.index[s].id != id {
				t.Fatalf("step %d: counter %d (%s) not indexed under its id", i, id, c.key[:c.klen])
			}
			if j > 0 && tr.weight((j-1)/2) > c.w {
				t.Fatalf("step %d: heap order broken at %d", i, j)
			}
		}
	}
	// Keys over MaxKeyLen are ignored.
	tr.Reset()
	tr.Add(make([]byte, MaxKeyLen+1), 1, t0)
	if got := tr.Top(1, t0); len(got) != 0 {
		t.Fatalf("over-long key counted: %v", got)
	}
}

func TestAddNewKeyAllocatesNothing(t *testing.T) {
	tr := New(4, time.Minute)
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key%d", i)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() { tr.Add(keys[i%64], 1, t0); i++ }); n != 0 {
		t.Fatalf("Add of new keys allocates %v times", n)
	}
}

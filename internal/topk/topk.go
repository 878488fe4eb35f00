// Package topk finds the heaviest keys of a stream in fixed memory: the
// Space-Saving algorithm (Metwally, Agrawal and El Abbadi, 2005) with
// forward exponential decay, so that the ranking follows the present
// rather than the whole history.
//
// A Tracker keeps k counters. A key already counted adds its weight; a new
// key takes over the smallest counter and starts from that counter's
// value, which bounds its overestimate (Err). Any key whose true weight is
// above total/k is guaranteed to be held.
//
// Decay: a weight w added at time t counts w·2^(-(now-t)/halfLife) at time
// now. Instead of scaling every counter as time passes, weights are added
// scaled up by 2^((t-landmark)/halfLife) (forward decay); all counters then
// share one scale factor, the order stays right, and the factor is folded
// back into the counters only when it grows large.
package topk

import (
	"math"
	"slices"
	"sync"
	"time"
)

// rescaleAt is the exponent (in half-lives since the landmark) past which
// the counters are renormalised, well inside float64's range.
const rescaleAt = 256

// Tracker counts the heaviest keys. It is safe for concurrent use.
type Tracker struct {
	mu       sync.Mutex
	k        int
	halfLife float64 // seconds; 0 = no decay
	landmark time.Time
	idx      map[string]int // key -> position in heap
	heap     []counter      // min-heap on w
}

type counter struct {
	key string
	w   float64 // decayed weight, scaled to the landmark
	err float64 // overestimate bound, same scale
}

// Entry is one key of a ranking.
type Entry struct {
	Key string
	// Weight is the key's estimated decayed weight; the true weight lies
	// in [Weight-Err, Weight].
	Weight float64
	Err    float64
}

// New returns a Tracker holding k counters whose weights halve every
// halfLife (0: never).
func New(k int, halfLife time.Duration) *Tracker {
	k = max(k, 1)
	return &Tracker{
		k:        k,
		halfLife: halfLife.Seconds(),
		idx:      make(map[string]int, k),
		heap:     make([]counter, 0, k),
	}
}

// scale returns the factor a weight added at now is multiplied by.
func (t *Tracker) scale(now time.Time) float64 {
	if t.halfLife == 0 {
		return 1
	}
	if t.landmark.IsZero() {
		t.landmark = now
	}
	e := now.Sub(t.landmark).Seconds() / t.halfLife
	if e > rescaleAt {
		f := math.Exp2(-e)
		for i := range t.heap {
			t.heap[i].w *= f
			t.heap[i].err *= f
		}
		t.landmark, e = now, 0
	}
	return math.Exp2(e)
}

// Add counts weight for key at time now. Adding a key already held does
// not allocate.
func (t *Tracker) Add(key []byte, weight float64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := weight * t.scale(now)
	if i, ok := t.idx[string(key)]; ok {
		t.heap[i].w += w
		t.down(i)
		return
	}
	if len(t.heap) < t.k {
		t.heap = append(t.heap, counter{key: string(key), w: w})
		i := len(t.heap) - 1
		t.idx[t.heap[i].key] = i
		t.up(i)
		return
	}
	// Take over the smallest counter.
	min := &t.heap[0]
	delete(t.idx, min.key)
	min.key, min.err, min.w = string(key), min.w, min.w+w
	t.idx[min.key] = 0
	t.down(0)
}

// Top returns up to n keys, heaviest first, with weights decayed to now.
func (t *Tracker) Top(n int, now time.Time) []Entry {
	t.mu.Lock()
	f := 1 / t.scale(now)
	out := make([]Entry, len(t.heap))
	for i, c := range t.heap {
		out[i] = Entry{Key: c.key, Weight: c.w * f, Err: c.err * f}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.Weight > b.Weight:
			return -1
		case a.Weight < b.Weight:
			return 1
		}
		return 0
	})
	return out[:min(n, len(out))]
}

// Reset forgets every key.
func (t *Tracker) Reset() {
	t.mu.Lock()
	clear(t.idx)
	t.heap = t.heap[:0]
	t.landmark = time.Time{}
	t.mu.Unlock()
}

func (t *Tracker) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.idx[t.heap[i].key] = i
	t.idx[t.heap[j].key] = j
}

func (t *Tracker) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.heap[p].w <= t.heap[i].w {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *Tracker) down(i int) {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.heap[r].w < t.heap[l].w {
			m = r
		}
		if t.heap[i].w <= t.heap[m].w {
			return
		}
		t.swap(i, m)
		i = m
	}
}

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
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"
)

// rescaleAt is the exponent (in half-lives since the landmark) past which
// the counters are renormalised, well inside float64's range.
const rescaleAt = 256

// MaxKeyLen is the longest key a Tracker counts (memcached's limit); longer
// keys are ignored.
const MaxKeyLen = 250

// Tracker counts the heaviest keys. It is safe for concurrent use. Adding
// a key never allocates: keys are copied into the counters, which are
// found through a small open-addressing table of key hashes.
//
// Counters stay where they are; the min-heap orders their ids, so keeping
// it in order moves 4-byte ids rather than 300-byte counters, and the index
// of hashes never changes while a key is held.
type Tracker struct {
	mu       sync.Mutex
	k        int
	halfLife float64 // seconds; 0 = no decay
	landmark time.Time
	seed     maphash.Seed
	index    []slot    // open addressing, linear probing; len a power of two >= 2k
	counters []counter // the counters in use, by id
	heap     []int32   // counter ids, a min-heap on their w
}

// slot maps a key hash (never 0) to its counter's id.
type slot struct {
	hash uint64
	id   int32
}

type counter struct {
	w    float64 // decayed weight, scaled to the landmark
	err  float64 // overestimate bound, same scale
	pos  int32   // where the counter's id is in heap
	klen uint8
	hash uint64
	key  [MaxKeyLen]byte
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
	n := 4
	for n < 2*k {
		n *= 2
	}
	return &Tracker{
		k:        k,
		halfLife: halfLife.Seconds(),
		seed:     maphash.MakeSeed(),
		index:    make([]slot, n),
		counters: make([]counter, 0, k),
		heap:     make([]int32, 0, k),
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
		for i := range t.counters {
			t.counters[i].w *= f
			t.counters[i].err *= f
		}
		t.landmark, e = now, 0
	}
	return math.Exp2(e)
}

// Add counts weight for key at time now. It does not allocate.
func (t *Tracker) Add(key []byte, weight float64, now time.Time) {
	if len(key) > MaxKeyLen {
		return
	}
	hv := maphash.Bytes(t.seed, key) | 1 // 0 marks an empty slot
	t.mu.Lock()
	defer t.mu.Unlock()
	w := weight * t.scale(now)
	if s := t.find(hv); s >= 0 {
		c := &t.counters[t.index[s].id]
		if string(c.key[:c.klen]) != string(key) {
			return // a 64-bit hash collision: drop the sample
		}
		c.w += w
		t.down(int(c.pos))
		return
	}
	if len(t.counters) < t.k {
		id := int32(len(t.counters))
		t.counters = append(t.counters, counter{w: w, pos: int32(len(t.heap))})
		t.heap = append(t.heap, id)
		t.setKey(id, hv, key)
		t.up(len(t.heap) - 1)
		return
	}
	// Take over the smallest counter.
	id := t.heap[0]
	min := &t.counters[id]
	t.remove(min.hash)
	min.err, min.w = min.w, min.w+w
	t.setKey(id, hv, key)
	t.down(0)
}

// setKey stores key (hash hv) in counter id and indexes it.
func (t *Tracker) setKey(id int32, hv uint64, key []byte) {
	c := &t.counters[id]
	c.hash, c.klen = hv, uint8(len(key))
	copy(c.key[:], key)
	mask := len(t.index) - 1
	s := int(hv) & mask
	for t.index[s].hash != 0 {
		s = (s + 1) & mask
	}
	t.index[s] = slot{hv, id}
}

// find returns the index slot holding hv, or -1.
func (t *Tracker) find(hv uint64) int {
	mask := len(t.index) - 1
	for s := int(hv) & mask; ; s = (s + 1) & mask {
		switch t.index[s].hash {
		case hv:
			return s
		case 0:
			return -1
		}
	}
}

// remove deletes hv from the index, shifting later entries of its probe
// run back so that no tombstones are needed.
func (t *Tracker) remove(hv uint64) {
	s := t.find(hv)
	if s < 0 {
		return
	}
	mask := len(t.index) - 1
	for {
		t.index[s] = slot{}
		j := s
		for {
			j = (j + 1) & mask
			h := t.index[j].hash
			if h == 0 {
				return
			}
			home := int(h) & mask
			// Move j back to s unless its home lies cyclically in (s, j].
			if (j > s && (home <= s || home > j)) || (j < s && home <= s && home > j) {
				t.index[s] = t.index[j]
				s = j
				break
			}
		}
	}
}

// Top returns up to n keys, heaviest first, with weights decayed to now.
func (t *Tracker) Top(n int, now time.Time) []Entry {
	t.mu.Lock()
	f := 1 / t.scale(now)
	out := make([]Entry, len(t.counters))
	for i := range t.counters {
		c := &t.counters[i]
		out[i] = Entry{Key: string(c.key[:c.klen]), Weight: c.w * f, Err: c.err * f}
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
	clear(t.index)
	t.counters = t.counters[:0]
	t.heap = t.heap[:0]
	t.landmark = time.Time{}
	t.mu.Unlock()
}

func (t *Tracker) swap(i, j int) {
	h := t.heap
	h[i], h[j] = h[j], h[i]
	t.counters[h[i]].pos = int32(i)
	t.counters[h[j]].pos = int32(j)
}

// weight returns the weight of the counter at heap position i.
func (t *Tracker) weight(i int) float64 { return t.counters[t.heap[i]].w }

func (t *Tracker) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.weight(p) <= t.weight(i) {
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
		if r := l + 1; r < n && t.weight(r) < t.weight(l) {
			m = r
		}
		if t.weight(i) <= t.weight(m) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

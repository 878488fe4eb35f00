package loadgen

import (
	"math"
	"math/bits"
)

// Histogram records non-negative values (nanoseconds, in this package) in
// log-linear buckets, as HDR histograms do: values below 2^(subBits+1) are
// counted exactly, and every larger power-of-two range is split into
// 2^subBits equal buckets, so a reported percentile is within 1/2^subBits
// (0.8%) of the true value. Values above MaxValue are counted as MaxValue.
//
// The zero value is not usable; call NewHistogram. A Histogram is not safe
// for concurrent use.
type Histogram struct {
	counts []uint64
	total  uint64
	min    uint64
	max    uint64
	sum    float64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
	// maxBits bounds recorded values to 2^maxBits-1 ns (about 18 minutes).
	maxBits = 40
	// MaxValue is the largest value a Histogram tells apart.
	MaxValue = 1<<maxBits - 1
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, bucketIndex(MaxValue)+1), min: math.MaxUint64}
}

// bucketIndex maps v to its bucket: the identity below 2*subBuckets, then
// subBuckets buckets per power of two.
func bucketIndex(v uint64) int {
	n := bits.Len64(v)
	if n <= subBits+1 {
		return int(v)
	}
	shift := n - subBits - 1
	return shift*subBuckets + int(v>>shift)
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i - shift*subBuckets)
	return (m+1)<<shift - 1
}

// Record counts one value.
func (h *Histogram) Record(v uint64) {
	if v > MaxValue {
		v = MaxValue
	}
	h.counts[bucketIndex(v)]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Reset forgets every value.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.sum, h.min, h.max = 0, 0, math.MaxUint64, 0
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Min is the smallest value recorded, 0 when empty.
func (h *Histogram) Min() uint64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest value recorded (exact), 0 when empty.
func (h *Histogram) Max() uint64 { return h.max }

// Mean is the average of the values recorded, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Percentile returns the value below or at which q percent (0-100) of the
// recorded values lie: the highest value of the bucket holding the value
// of rank ceil(q/100 * count), capped at Max. It returns 0 when empty.
func (h *Histogram) Percentile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	q = min(max(q, 0), 100)
	rank := uint64(math.Ceil(q / 100 * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketHigh(i), h.max)
		}
	}
	return h.max
}

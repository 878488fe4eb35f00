package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramKnownData(t *testing.T) {
	h := NewHistogram()
	for v := uint64(1); v <= 100000; v++ {
		h.Record(v)
	}
	for _, tc := range []struct {
		q    float64
		want uint64
	}{
		{0, 1}, {1, 1000}, {50, 50000}, {90, 90000}, {99, 99000}, {99.9, 99900}, {100, 100000},
	} {
		got := h.Percentile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*(1+1.0/subBuckets) {
			t.Errorf("p%g = %d, want %d to %d", tc.q, got, tc.want, uint64(float64(tc.want)*(1+1.0/subBuckets)))
		}
	}
	if h.Count() != 100000 || h.Min() != 1 || h.Max() != 100000 {
		t.Errorf("count %d min %d max %d, want 100000 1 100000", h.Count(), h.Min(), h.Max())
	}
	if m := h.Mean(); m != 50000.5 {
		t.Errorf("mean %g, want 50000.5", m)
	}
}

func TestHistogramExactBelowLinearRange(t *testing.T) {
	h := NewHistogram()
	for v := range uint64(2 * subBuckets) {
		h.Record(v)
	}
	for v := range uint64(2 * subBuckets) {
		q := 100 * float64(v+1) / float64(2*subBuckets)
		if got := h.Percentile(q); got != v {
			t.Errorf("p%g = %d, want %d", q, got, v)
		}
	}
}

// TestHistogramAgainstSort compares percentiles of log-normal latencies
// with the exact order statistics.
func TestHistogramAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b := NewHistogram(), NewHistogram()
	var all []uint64
	for i := range 200000 {
		v := uint64(math.Exp(r.NormFloat64()*1.5 + 11)) // ~60 µs median, long tail
		all = append(all, v)
		if i%2 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	slices.Sort(all)
	for _, q := range []float64{50, 90, 99, 99.9, 99.99} {
		exact := all[int(math.Ceil(q/100*float64(len(all))))-1]
		got := a.Percentile(q)
		if got < exact || float64(got-exact) > float64(exact)/subBuckets {
			t.Errorf("p%g = %d, exact %d: more than 1/%d off", q, got, exact, subBuckets)
		}
	}
	if a.Max() != all[len(all)-1] || a.Min() != all[0] {
		t.Errorf("min/max %d/%d, want %d/%d", a.Min(), a.Max(), all[0], all[len(all)-1])
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.Percentile(50) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Error("empty histogram should report zeros")
	}
	h.Record(math.MaxUint64)
	if got := h.Percentile(100); got != MaxValue {
		t.Errorf("huge value reads %d, want MaxValue %d", got, uint64(MaxValue))
	}
	h.Reset()
	h.Record(7)
	if got := h.Percentile(99.9); got != 7 {
		t.Errorf("after Reset p99.9 = %d, want 7", got)
	}
	// Every bucket's range starts right after the previous one's.
	for i := 1; i <= bucketIndex(MaxValue); i++ {
		if bucketIndex(bucketHigh(i-1)+1) != i {
			t.Fatalf("bucket %d does not follow bucket %d", i, i-1)
		}
	}
}

package procs

import (
	"math"
	"runtime/metrics"
	"time"
)

// trackingPeriod is how many of a goroutine's scheduling transitions the
// runtime counts one of in /sched/latencies (gTrackingPeriod).
const trackingPeriod = 8

// latencies reads the time goroutines have spent runnable, waiting for a
// P, as the runtime samples it. It is not safe for concurrent use.
type latencies struct {
	s []metrics.Sample
}

func newLatencies() *latencies {
	return &latencies{s: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

// waited is the estimated total time goroutines have waited for a P,
// or false where the runtime does not report it.
func (l *latencies) waited() (time.Duration, bool) {
	metrics.Read(l.s)
	if l.s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, false
	}
	h := l.s[0].Value.Float64Histogram()
	var sum float64
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		sum += float64(n) * (lo + hi) / 2
	}
	return time.Duration(sum * trackingPeriod * float64(time.Second)), true
}

package procs

import (
	"math"
	"runtime/metrics"
	"time"
)

// trackingPeriod is how many of a goroutine's scheduling transitions the
// runtime counts one of in /sched/latencies (gTrackingPeriod).
const trackingPeriod = 8

// longWait is the shortest wait for a P that counts as queueing. A
// process whose P's thread runs whenever it is runnable makes a goroutine
// wait that long only behind a millisecond of other goroutines' work,
// which the CPU it uses shows too; one whose thread the machine's other
// processes keep off the CPU makes the goroutines made ready meanwhile
// wait for the thread's next time slice, milliseconds. Shorter waits are
// a light load's goroutines woken together and run one after another, as
// an event loop runs the events of one wake-up: a second P would only
// hand them to a second thread.
const longWait = time.Millisecond

// latencies reads the time goroutines have spent runnable, waiting for a
// P, in waits of longWait or more, as the runtime samples it. It is not
// safe for concurrent use.
type latencies struct {
	s []metrics.Sample
}

func newLatencies() *latencies {
	return &latencies{s: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

// waited is the estimated total time goroutines have waited for a P in
// waits of longWait or more, or false where the runtime does not report
// it.
func (l *latencies) waited() (time.Duration, bool) {
	metrics.Read(l.s)
	if l.s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, false
	}
	return longWaits(l.s[0].Value.Float64Histogram()), true
}

// longWaits estimates from a sampled histogram of scheduling latencies
// the total time spent in waits of longWait or more.
func longWaits(h *metrics.Float64Histogram) time.Duration {
	var sum float64
	for i, n := range h.Counts {
		if n == 0 || h.Buckets[i+1] <= longWait.Seconds() {
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
	return time.Duration(sum * trackingPeriod * float64(time.Second))
}

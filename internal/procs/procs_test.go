package procs

import (
	"context"
	"math"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

func TestNextTakesAndGivesBack(t *testing.T) {
	s := &Scaler{max: 3, cur: 1}
	steps := []struct {
		busy float64
		want int
	}{
		{0.2, 1},  // light: stays on one
		{0.85, 1}, // below upAt of one
		{0.95, 2}, // one is nearly all busy: take a second
		{1.85, 3}, // both busy: a third
		{2.9, 3},  // never past max
		{1.0, 3},  // 1.0 is not below downAt of two (0.8)
	}
	for i, st := range steps {
		if got := s.next(st.busy, 0); got != st.want {
			t.Fatalf("step %d: next(%v) = %d, want %d", i, st.busy, got, st.want)
		}
		s.cur = st.want
	}
	// Low load gives one back only after downAfter measurements in a
	// row; one busy measurement starts the count again.
	for i := 0; i < downAfter-1; i++ {
		if got := s.next(0.1, 0); got != 3 {
			t.Fatalf("gave back after %d low measurements", i+1)
		}
	}
	if got := s.next(0.85, 0); got != 3 {
		t.Fatalf("next(0.85) = %d at 3 Ps, want 3", got)
	}
	for i := 0; i < downAfter-1; i++ {
		s.next(0.1, 0)
	}
	if got := s.next(0.1, 0); got != 2 {
		t.Fatalf("after %d low measurements: %d Ps, want 2", downAfter, got)
	}
}

// TestNextQueue: goroutines waiting long for a P take one more only as a
// backlog of queueUpAt per P, which a few clients' goroutines queued
// while the thread is off the CPU do not make; the P is given back once
// fewer than queueDownAt per P of one fewer wait.
func TestNextQueue(t *testing.T) {
	s := &Scaler{max: 3, cur: 1}
	steps := []struct {
		queued float64
		want   int
	}{
		{1.5, 1}, // four clients, three of them waiting part of the time
		{3.0, 1},
		{4.5, 2}, // a backlog
		{6.0, 2}, // not 4 per P of two
		{8.5, 3},
	}
	for i, st := range steps {
		if got := s.next(0.3, st.queued); got != st.want {
			t.Fatalf("step %d: next(0.3, %v) = %d, want %d", i, st.queued, got, st.want)
		}
		s.cur = st.want
	}
	// At 3 Ps, 2.5 waiting is not below queueDownAt per P of two.
	for i := 0; i < downAfter; i++ {
		if got := s.next(0.3, 2.5); got != 3 {
			t.Fatalf("gave back with 2.5 waiting at 3 Ps (measurement %d)", i+1)
		}
	}
	for i := 0; i < downAfter-1; i++ {
		s.next(0.3, 1.5)
	}
	if got := s.next(0.3, 1.5); got != 2 {
		t.Fatalf("after %d measurements with 1.5 waiting: %d Ps, want 2", downAfter, got)
	}
}

// TestRunFollowsLoad drives Run with a fake clock of CPU time: it starts
// on one P, takes the second when that one is busy, gives it back when
// the load goes, and restores max when stopped.
func TestRunFollowsLoad(t *testing.T) {
	var mu sync.Mutex
	var used time.Duration
	rate := 0.0 // CPUs the fake process uses
	last := time.Now()
	var sets []int
	setCh := make(chan int, 100)
	s := &Scaler{max: 2, cur: 2,
		set: func(n int) { setCh <- n },
		cpu: func() (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			used += time.Duration(rate * float64(now.Sub(last)))
			last = now
			return used, true
		},
	}
	load := func(r float64) {
		mu.Lock()
		used += time.Duration(rate * float64(time.Since(last)))
		last = time.Now()
		rate = r
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	wait := func(want int) {
		t.Helper()
		select {
		case n := <-setCh:
			sets = append(sets, n)
			if n != want {
				t.Fatalf("GOMAXPROCS set to %d, want %d (sets %v)", n, want, sets)
			}
		case <-time.After(time.Duration(downAfter+50) * Interval):
			t.Fatalf("GOMAXPROCS not set to %d (sets %v)", want, sets)
		}
	}
	wait(1)
	load(1.0)
	wait(2)
	load(0.05)
	wait(1)
	cancel()
	wait(2)
	<-done
}

// TestLongWaits: only waits of longWait or more count, each at its
// bucket's middle, scaled by the runtime's sampling period.
func TestLongWaits(t *testing.T) {
	ms := time.Millisecond.Seconds()
	h := &metrics.Float64Histogram{
		Counts:  []uint64{5, 100, 3, 2, 1},
		Buckets: []float64{math.Inf(-1), 0, ms / 2, ms, 3 * ms, math.Inf(1)},
	}
	// Not the 105 waits under 1 ms; 2 waits of 1-3 ms (2 ms each), and
	// one of 3 ms or more (counted as 3 ms).
	want := time.Duration(trackingPeriod * (2*2 + 3) * float64(time.Millisecond))
	if got := longWaits(h); got != want {
		t.Errorf("longWaits = %v, want %v", got, want)
	}
}

package procs

import (
	"context"
	"fmt"
	"math"
	"runtime/metrics"
	"slices"
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
		{0.95, 1}, // one measurement at upAt is not enough
		{0.5, 1},
		{0.95, 1},
		{0.95, 2}, // one is nearly all busy: take a second
		{1.85, 2},
		{1.85, 3}, // both busy: a third
		{2.9, 3},  // never past max
		{1.8, 3},  // 1.8 is not below downAt of two (1.7)
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
	if got := s.next(1.8, 0); got != 3 {
		t.Fatalf("next(1.8) = %d at 3 Ps, want 3", got)
	}
	for i := 0; i < downAfter-1; i++ {
		s.next(0.1, 0)
	}
	if got := s.next(0.1, 0); got != 2 {
		t.Fatalf("after %d low measurements: %d Ps, want 2", downAfter, got)
	}
}

// TestNextAfterBurst: a light load that follows a burst goes back to one
// P, though it keeps that one more than half busy (four clients at full
// speed use 0.6-0.8 of a CPU on one P, more on two): a second P would only hand its requests
// between two threads for as long as it lasts.
func TestNextAfterBurst(t *testing.T) {
	s := &Scaler{max: 2, cur: 1}
	s.next(0.5, 4.5)
	if got := s.next(0.5, 4.5); got != 2 {
		t.Fatalf("a burst's backlog: next = %d, want 2", got)
	}
	s.cur = 2
	for i := 0; i < downAfter-1; i++ {
		if got := s.next(0.8, 0.3); got != 2 {
			t.Fatalf("gave back after %d measurements", i+1)
		}
	}
	if got := s.next(0.8, 0.3); got != 1 {
		t.Fatalf("light load at 0.8 of a CPU for %d measurements: %d Ps, want 1", downAfter, got)
	}
	s.cur = 1
	// On one P it stays: below upAt and no backlog.
	for i := 0; i < 3*downAfter; i++ {
		if got := s.next(0.8, 1.5); got != 1 {
			t.Fatalf("light load took a second P back (measurement %d)", i+1)
		}
	}
}

// TestNextFlap: a P taken again soon after it was given back is held
// twice as long each time before it is given back again, up to maxHold;
// taken again after flapWindow, it is given back after downAfter again.
func TestNextFlap(t *testing.T) {
	s := &Scaler{max: 2, cur: 1}
	// giveBack runs low measurements until the P is given back and
	// returns how many it took.
	giveBack := func() int {
		t.Helper()
		for i := 1; i <= 10*maxHold; i++ {
			if got := s.next(0.3, 0); got == 1 {
				s.cur = 1
				return i
			}
		}
		t.Fatal("never gave the P back")
		return 0
	}
	up := func() {
		t.Helper()
		s.next(0.3, 8)
		if got := s.next(0.3, 8); got != 2 {
			t.Fatalf("backlog: next = %d, want 2", got)
		}
		s.cur = 2
	}
	up()
	if n := giveBack(); n != downAfter {
		t.Fatalf("first give-back after %d measurements, want %d", n, downAfter)
	}
	for want := 2 * downAfter; want <= maxHold; want *= 2 {
		up() // at once: a flap
		if n := giveBack(); n != want {
			t.Fatalf("give-back after %d measurements, want %d", n, want)
		}
	}
	up()
	if n := giveBack(); n != maxHold {
		t.Fatalf("give-back after %d measurements, want at most maxHold (%d)", n, maxHold)
	}
	// A quiet spell on one P past flapWindow: the next burst is no flap.
	for i := 0; i < flapWindow; i++ {
		s.next(0.3, 0)
	}
	up()
	if n := giveBack(); n != downAfter {
		t.Fatalf("give-back after a burst past flapWindow: %d measurements, want %d", n, downAfter)
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
		{4.5, 1},
		{4.5, 2}, // a backlog, twice in a row
		{6.0, 2}, // not 4 per P of two
		{8.5, 2},
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

// TestNextFlapSeveralPs: a burst that comes back soon after a light spell
// gave back several Ps, one after the other, and takes them all again is
// one flap: the next give-back waits twice as long, not twice as long for
// each P taken back.
func TestNextFlapSeveralPs(t *testing.T) {
	const max = 4
	s := &Scaler{max: max, cur: 1}
	burst := func() {
		t.Helper()
		for i := 0; i < 4*max && s.cur < max; i++ {
			s.cur = s.next(float64(s.cur), 0)
		}
		if s.cur != max {
			t.Fatalf("a burst took %d Ps, want %d", s.cur, max)
		}
	}
	// giveBacks runs idle measurements until one P is left and returns
	// how many each give-back took.
	giveBacks := func() []int {
		t.Helper()
		var took []int
		n := 0
		for i := 0; i < 10*max*maxHold && s.cur > 1; i++ {
			n++
			if got := s.next(0, 0); got != s.cur {
				s.cur = got
				took = append(took, n)
				n = 0
			}
		}
		if s.cur != 1 {
			t.Fatal("idle: never back to one P")
		}
		return took
	}
	burst()
	for _, n := range giveBacks() {
		if n != downAfter {
			t.Fatalf("first idle spell: give-backs after %v measurements, want %d each", n, downAfter)
		}
	}
	for want := 2 * downAfter; want <= maxHold; want *= 2 {
		burst() // at once after the last give-back: a flap
		for _, n := range giveBacks() {
			if n != want {
				t.Fatalf("idle after a burst that came back at once: give-back after %d measurements, want %d", n, want)
			}
		}
	}
}

// followRecorder is a Scaler that follows the runtime's default, with
// fakes that record each hand-back to the runtime (follow, which returns
// the next of defaults, or max once none is left) and each GOMAXPROCS set, with the measurement
// they came at.
type followRecorder struct {
	s        *Scaler
	tick     int
	defaults []int
	events   []string
	reads    int
	in       defaultInputs
	ok       bool
}

func newFollowRecorder(held, max int, in defaultInputs) *followRecorder {
	r := &followRecorder{in: in, ok: true}
	r.s = &Scaler{max: max, cur: held,
		set: func(n int) { r.events = append(r.events, fmt.Sprintf("%d set %d", r.tick, n)) },
		follow: func() int {
			r.events = append(r.events, fmt.Sprintf("%d follow", r.tick))
			if len(r.defaults) == 0 {
				return r.s.max // the default as it was
			}
			n := r.defaults[0]
			r.defaults = r.defaults[1:]
			return n
		},
		inputs:   func() (defaultInputs, bool) { r.reads++; return r.in, r.ok },
		followed: in, known: true,
	}
	return r
}

// measure runs followDefault for n measurements.
func (r *followRecorder) measure(n int) {
	for range n {
		r.tick++
		r.s.followDefault()
	}
}

// TestFollowDefaultUnchanged: while what the runtime's default is
// computed from stays the same, the Scaler neither hands GOMAXPROCS back
// to the runtime nor sets it: neither stops the world.
func TestFollowDefaultUnchanged(t *testing.T) {
	in := defaultInputs{cpus: 4, limit: "max 100000\n"}
	r := newFollowRecorder(2, 4, in)
	r.measure(20 * followEvery)
	if r.reads != 20 {
		t.Fatalf("inputs read %d times in %d measurements, want 20", r.reads, 20*followEvery)
	}
	if len(r.events) != 0 {
		t.Fatalf("unchanged inputs: %v, want no hand-back and no set", r.events)
	}
	// Once they change, the next check hands GOMAXPROCS back once; the
	// Scaler then holds no more than the new default.
	r.in.limit = "150000 100000\n"
	r.defaults = []int{2}
	r.measure(10 * followEvery)
	want := []string{fmt.Sprint(21*followEvery, " follow")}
	if !slices.Equal(r.events, want) {
		t.Fatalf("after a change: %v, want %v", r.events, want)
	}
	if r.s.max != 2 || r.s.cur != 2 {
		t.Fatalf("after a change: max %d, holds %d, want 2 and 2", r.s.max, r.s.cur)
	}
}

// TestFollowDefaultChanged: inputs that change at each check make the
// Scaler hand GOMAXPROCS back to the runtime at each, every followEvery
// measurements, and set again the Ps it held, up to the new default.
func TestFollowDefaultChanged(t *testing.T) {
	r := newFollowRecorder(2, 2, defaultInputs{cpus: 2})
	r.defaults = []int{1, 2, 2}
	for i := range 3 {
		r.in.cpus = 3 + i
		r.measure(followEvery)
	}
	want := []string{
		fmt.Sprint(followEvery, " follow"), // to 1: holds 1, already set
		fmt.Sprint(2*followEvery, " follow"), fmt.Sprint(2*followEvery, " set 1"),
		fmt.Sprint(3*followEvery, " follow"), fmt.Sprint(3*followEvery, " set 1"),
	}
	if !slices.Equal(r.events, want) {
		t.Fatalf("changing inputs: %v, want %v", r.events, want)
	}
	if r.s.max != 2 || r.s.cur != 1 {
		t.Fatalf("max %d, holds %d, want 2 and 1", r.s.max, r.s.cur)
	}
}

// TestFollowDefaultUnread: where the inputs cannot be read, the Scaler
// hands GOMAXPROCS back every followFallback checks.
func TestFollowDefaultUnread(t *testing.T) {
	r := newFollowRecorder(1, 2, defaultInputs{})
	r.s.known = false
	r.ok = false
	r.defaults = []int{2, 2}
	r.measure(2 * followFallback * followEvery)
	want := []string{
		fmt.Sprint(followFallback*followEvery, " follow"), fmt.Sprint(followFallback*followEvery, " set 1"),
		fmt.Sprint(2*followFallback*followEvery, " follow"), fmt.Sprint(2*followFallback*followEvery, " set 1"),
	}
	if !slices.Equal(r.events, want) {
		t.Fatalf("unread inputs: %v, want %v", r.events, want)
	}
}

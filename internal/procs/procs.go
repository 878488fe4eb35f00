// Package procs fits GOMAXPROCS to the load of a process whose work is
// moving requests between sockets.
//
// Each request a proxy serves is read by one goroutine and answered by
// another. With one processor (P) they run on one thread, one after the
// other, as an event loop would run them. With two, the Go scheduler
// wakes a second thread whenever a goroutine becomes runnable while a P
// is idle, and on a small machine shared with the load generator and the
// servers that hand-off is what a light load's tail latency is made of.
// A Scaler therefore keeps the process on as few Ps as its load needs:
// one while it uses less than most of one CPU, one more whenever the Ps
// it has are nearly all busy, up to the most it was given, and one fewer
// once the load has stayed well below what one fewer could carry.
package procs

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

const (
	// Interval is how often the load is measured.
	Interval = 100 * time.Millisecond
	// upAt is the CPU used, as a fraction of the Ps held, at which one
	// more is taken.
	upAt = 0.7
	// downAt is the CPU used, as a fraction of one P fewer, below which
	// one is given back once it has stayed there for downAfter
	// measurements.
	downAt    = 0.4
	downAfter = 20
)

// A Scaler sets GOMAXPROCS between 1 and Max from the CPU the process
// used over each Interval.
type Scaler struct {
	max  int
	cur  int
	log  *slog.Logger // nil: silent
	low  int          // consecutive measurements below downAt
	set  func(int)
	cpu  func() (time.Duration, bool)
	last time.Duration
	at   time.Time
}

// New returns a Scaler for up to max Ps (max < 1: GOMAXPROCS as it is
// now), which logs each change at debug level to log (nil: nowhere), or
// nil where the process's CPU time cannot be read.
func New(max int, log *slog.Logger) *Scaler {
	if max < 1 {
		max = runtime.GOMAXPROCS(0)
	}
	if _, ok := cpuTime(); !ok {
		return nil
	}
	return &Scaler{max: max, cur: max, log: log, set: func(n int) { runtime.GOMAXPROCS(n) }, cpu: cpuTime}
}

// Procs is the number of Ps the Scaler holds now.
func (s *Scaler) Procs() int { return s.cur }

// Run starts on one P and adjusts until ctx is done, then gives back all
// max Ps. A nil Scaler does nothing.
func (s *Scaler) Run(ctx context.Context) {
	if s == nil {
		return
	}
	defer s.setProcs(s.max)
	s.setProcs(1)
	s.last, _ = s.cpu()
	s.at = time.Now()
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			used, ok := s.cpu()
			if !ok {
				continue
			}
			wall := now.Sub(s.at)
			if wall <= 0 {
				continue
			}
			busy := float64(used-s.last) / float64(wall)
			s.last, s.at = used, now
			if n := s.next(busy); n != s.cur {
				if s.log != nil {
					s.log.Debug("processors", "from", s.cur, "to", n, "cpu_used", float64(int(busy*100))/100)
				}
				s.setProcs(n)
			}
		}
	}
}

func (s *Scaler) setProcs(n int) {
	if n != s.cur {
		s.cur = n
		s.set(n)
	}
}

// next is the number of Ps to hold after a measurement in which the
// process used busy CPUs.
func (s *Scaler) next(busy float64) int {
	switch {
	case s.cur < s.max && busy >= upAt*float64(s.cur):
		s.low = 0
		return s.cur + 1
	case s.cur > 1 && busy < downAt*float64(s.cur-1):
		s.low++
		if s.low >= downAfter {
			s.low = 0
			return s.cur - 1
		}
	default:
		s.low = 0
	}
	return s.cur
}

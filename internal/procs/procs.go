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
//
// The load is measured two ways: the CPU time the process used, and the
// time its goroutines waited for a P (the runtime's scheduling
// latencies). On a machine kept busy by other processes a P's thread
// gets only part of a CPU, so a P that never idles may use well under
// upAt of one; its goroutines then queue for the thread's next time
// slice, milliseconds, and a second P, on a second thread, is what wins
// the process its share. Shorter waits are not counted (see longWait). Time a thread waits for a
// CPU after sleeping is not counted: a light load on a busy machine
// waits that way on any number of Ps.
package procs

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"
)

const (
	// Interval is how often the load is measured.
	Interval = 100 * time.Millisecond
	// upAt is the CPU used, as a fraction of the Ps held, at which one
	// more is taken.
	upAt = 0.9
	// queueUpAt is the number of goroutines waiting for a P (see
	// longWait), on average over a measurement and per P held, at which
	// one more is taken: a backlog that a few clients' goroutines, all
	// waiting while the P's thread is off the CPU, cannot make. On a busy
	// machine a light load's tail is not shortened by a second P, which
	// only hands its work between two threads.
	queueUpAt = 4.0
	// upAfter is how many measurements in a row must ask for one more P
	// (by CPU or by backlog): a light load near upAt of one P crosses it
	// for one measurement now and then, and would then run on two for a
	// while.
	upAfter = 2
	// downAt is the CPU used, as a fraction of one P fewer, below which
	// one is given back once it has stayed there, and the goroutines
	// waiting below queueDownAt per P of one fewer, for downAfter
	// measurements. A load the Ps left carry below downAt of them stays
	// below upAt there, with room for what a second thread costs (more
	// CPU per request on more Ps: the hand-offs between threads); set
	// lower, a light load that comes after a burst would run on the
	// burst's Ps for as long as it lasts.
	downAt      = 0.85
	queueDownAt = 1.0
	downAfter   = 20
	// flapWindow is how many measurements after giving a P back taking
	// one again counts as a flap: each flap doubles the measurements the
	// next give-back waits for, up to maxHold (once, however many Ps the
	// load takes back).
	flapWindow = 10 * downAfter
	maxHold    = 32 * downAfter
	// followEvery is how many measurements apart a Scaler that follows
	// the runtime's default GOMAXPROCS reads what the default is
	// computed from (see defaultInputs), and hands GOMAXPROCS back to
	// the runtime when it changed. Each hand-back stops the world twice
	// (once to set the default, once to set the Ps held again), so
	// where those inputs cannot be read it hands GOMAXPROCS back only
	// every followFallback such checks.
	followEvery    = 50
	followFallback = 6
)

// A Scaler sets GOMAXPROCS between 1 and Max from the CPU the process
// used, and the time its goroutines waited for a P, over each Interval.
type Scaler struct {
	max      int
	cur      int
	log      *slog.Logger // nil: silent
	low      int          // consecutive measurements below downAt
	high     int          // consecutive measurements at upAt or queueUpAt
	hold     int          // measurements below downAt a give-back waits for (0: downAfter)
	recent   int          // measurements left of flapWindow since the last give-back
	doubled  bool         // hold has doubled since the last give-back (a burst that takes several Ps back is one flap)
	set      func(int)
	cpu      func() (time.Duration, bool)
	wait     func() (time.Duration, bool) // time goroutines waited for a P
	last     time.Duration
	lastWait time.Duration
	at       time.Time
	// follow, when max follows the runtime's default GOMAXPROCS (the
	// CPUs, affinity and cgroup limit the process has), sets GOMAXPROCS
	// to that default and returns it: setting GOMAXPROCS stops the
	// runtime from following a change of them itself.
	follow func() int
	ticks  int
	// inputs reads what the runtime's default GOMAXPROCS is computed
	// from (ok false where it cannot). follow runs only when they
	// changed since followed was read (known: it was), or every
	// followFallback checks while they cannot be read (unread counts
	// those checks).
	inputs   func() (in defaultInputs, ok bool)
	followed defaultInputs
	known    bool
	unread   int
}

// New returns a Scaler for up to max Ps, which logs each change at debug
// level to log (nil: nowhere), or nil where the process's CPU time cannot
// be read. With max < 1 it runs on up to GOMAXPROCS as the runtime sets it
// by default, following changes of the CPUs and cgroup limit the process
// has, as the runtime would, unless the GOMAXPROCS environment variable
// sets it (see envProcs).
func New(max int, log *slog.Logger) *Scaler {
	if _, ok := cpuTime(); !ok {
		return nil
	}
	s := &Scaler{max: max, log: log, set: func(n int) { runtime.GOMAXPROCS(n) }, cpu: cpuTime, wait: newLatencies().waited}
	if max < 1 {
		s.max = runtime.GOMAXPROCS(0)
		if !envProcs() {
			s.follow = func() int {
				runtime.SetDefaultGOMAXPROCS()
				return runtime.GOMAXPROCS(0)
			}
			// The inputs first, then the default: a change between
			// the two is seen again at the first check, and makes
			// one hand-back too many, not one too few. Where
			// GOMAXPROCS already is the default, setting it again
			// does not stop the world.
			s.inputs = newInputs()
			s.followed, s.known = s.inputs()
			s.max = s.follow()
		}
	}
	s.cur = s.max
	return s
}

// envProcs reports whether the GOMAXPROCS environment variable sets
// GOMAXPROCS: the runtime ignores it, and follows the CPUs and cgroup
// limit, unless it is a positive number.
func envProcs() bool {
	n, err := strconv.ParseInt(os.Getenv("GOMAXPROCS"), 10, 32)
	return err == nil && n > 0
}

// Run starts on one P and adjusts until ctx is done, then gives back all
// max Ps, or, when it follows the runtime's default, hands GOMAXPROCS
// back to the runtime. A nil Scaler does nothing.
func (s *Scaler) Run(ctx context.Context) {
	if s == nil {
		return
	}
	defer func() {
		if s.follow != nil {
			// Hand GOMAXPROCS back to the runtime, which follows the
			// CPUs and cgroup limit again.
			s.cur = s.follow()
			return
		}
		s.setProcs(s.max)
	}()
	s.setProcs(1)
	s.last, _ = s.cpu()
	s.lastWait = s.waited()
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
			waited := s.waited()
			busy := float64(used-s.last) / float64(wall)
			queued := float64(max(waited-s.lastWait, 0)) / float64(wall)
			s.last, s.lastWait, s.at = used, waited, now
			s.followDefault()
			if n := s.next(busy, queued); n != s.cur {
				if s.log != nil {
					s.log.Debug("processors", "from", s.cur, "to", n, "cpu_used", float64(int(busy*100))/100, "queued", float64(int(queued*100))/100)
				}
				s.setProcs(n)
			}
		}
	}
}

// waited is the time goroutines have waited for a P, or 0 where it
// cannot be read.
func (s *Scaler) waited() time.Duration {
	if s.wait == nil {
		return 0
	}
	d, _ := s.wait()
	return d
}

// followDefault, when the Scaler follows the runtime's default
// GOMAXPROCS, reads what it is computed from every followEvery
// measurements and, when that changed (or every followFallback checks
// where it cannot be read), reads the default again and holds no more
// Ps than it.
func (s *Scaler) followDefault() {
	if s.follow == nil {
		return
	}
	if s.ticks++; s.ticks < followEvery {
		return
	}
	s.ticks = 0
	var in defaultInputs
	ok := false
	if s.inputs != nil {
		in, ok = s.inputs()
	}
	if ok {
		s.unread = 0
		if s.known && in == s.followed {
			return // the default is what it was
		}
	} else if s.unread++; s.unread < followFallback {
		return
	}
	s.unread = 0
	s.followed, s.known = in, ok
	held := s.cur
	s.cur = s.follow() // GOMAXPROCS is now the default
	if s.cur != s.max && s.log != nil {
		s.log.Debug("processors available", "from", s.max, "to", s.cur)
	}
	s.max = s.cur
	s.setProcs(min(held, s.max))
}

func (s *Scaler) setProcs(n int) {
	if n != s.cur {
		s.cur = n
		s.set(n)
	}
}

// next is the number of Ps to hold after a measurement in which the
// process used busy CPUs and queued goroutines waited for a P on
// average.
func (s *Scaler) next(busy, queued float64) int {
	if s.hold == 0 {
		s.hold = downAfter
	}
	flapped := s.recent > 0
	if flapped {
		s.recent--
	}
	switch {
	case s.cur < s.max && (busy >= upAt*float64(s.cur) || queued >= queueUpAt*float64(s.cur)):
		s.low = 0
		if s.high++; s.high < upAfter {
			return s.cur
		}
		s.high = 0
		// A load that needs the P given back soon after has it for
		// longer next time; one that did not starts again from
		// downAfter.
		if flapped {
			if !s.doubled {
				s.hold = min(2*s.hold, maxHold)
				s.doubled = true
			}
		} else {
			s.hold = downAfter
		}
		return s.cur + 1
	case s.cur > 1 && busy < downAt*float64(s.cur-1) && queued < queueDownAt*float64(s.cur-1):
		s.high = 0
		s.low++
		if s.low >= s.hold {
			s.low = 0
			s.recent = flapWindow
			s.doubled = false
			return s.cur - 1
		}
	default:
		s.low, s.high = 0, 0
	}
	return s.cur
}

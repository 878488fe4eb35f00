package storage

import (
	"math"
	"time"
)

// Memcached keeps time as seconds since process start ("rel time") in a
// 32-bit counter. Its process_started is placed ITEM_UPDATE_INTERVAL+2
// seconds before the real start so that relative times are never small;
// corvid does the same so that every stat and expiry matches.
//
// As memcached's, the counter runs on the monotonic clock: the wall clock
// is read once, at start, for process_started, and client exptimes given
// as Unix times are converted against it when they arrive (realtime).
// Stepping the wall clock afterwards (NTP, date) then changes no item's
// remaining time and no age; the "time" stat, process_started plus the
// counter, keeps counting from where it was.
const (
	itemUpdateInterval = 60
	clockOffset        = itemUpdateInterval + 2
	// realtimeMaxDelta is the largest exptime taken as relative (30 days).
	realtimeMaxDelta = 60 * 60 * 24 * 30
)

// Clock is a source of time for a Cache: a wall clock and a monotonic
// one. The system's clocks are used unless Config.Clock is set; a test
// clock can step the two apart, as NTP or an operator steps the wall
// clock of a running server. A Clock must be safe for concurrent use.
type Clock interface {
	// Now returns the wall-clock time.
	Now() time.Time
	// Monotonic returns the time elapsed since a fixed origin on a
	// clock that is never stepped; it never decreases.
	Monotonic() time.Duration
}

// systemClock is the system's wall clock and Go's monotonic clock.
type systemClock struct{ origin time.Time }

func (s systemClock) Now() time.Time           { return time.Now() }
func (s systemClock) Monotonic() time.Duration { return time.Since(s.origin) }

// funcClock is Config.Now as a Clock: both readings come from now, so
// the monotonic one follows every step of a test clock. (With time.Now,
// Sub uses Go's monotonic readings.)
type funcClock struct {
	now    func() time.Time
	origin time.Time
}

func (f funcClock) Now() time.Time           { return f.now() }
func (f funcClock) Monotonic() time.Duration { return f.now().Sub(f.origin) }

// startClock sets the cache's clock (Config.Clock, else Config.Now, else
// the system's, ticking) and reads process_started from it.
func (c *Cache) startClock(clock Clock, now func() time.Time) {
	switch {
	case clock != nil:
	case now != nil:
		clock = funcClock{now: now, origin: now()}
	default:
		clock, c.ticking = systemClock{origin: time.Now()}, true
	}
	c.clock = clock
	wall, mono := clock.Now(), clock.Monotonic()
	c.started.Store(wall.Unix() - clockOffset)
	// The counter ticks when the wall clock's second did at start.
	c.mono0 = mono - time.Duration(wall.Nanosecond())
	c.curTime.Store(c.readClock())
}

// readClock reads current_time from the monotonic clock.
func (c *Cache) readClock() uint32 {
	return c.relFromElapsed(c.clock.Monotonic() - c.mono0)
}

// relFromElapsed converts the time elapsed since the second the cache
// started in to rel time, clamped to uint32.
func (c *Cache) relFromElapsed(d time.Duration) uint32 {
	s := int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		s-- // whole seconds, rounded down
	}
	return clampRel(s + clockOffset + int64(c.relBack.Load()))
}

// maxClockBack bounds how far a snapshot load moves process_started back:
// rel times stay far from the end of their 32 bits.
const maxClockBack = 20 * 365 * 24 * 60 * 60

// moveClockBack moves process_started back to the Unix time to, when it
// is earlier, as memcached's restart takes the saved process_started
// back: rel time 0 is then to, and the rel clock reads that many seconds
// more, so that rel times from before this cache's start (the last
// accesses of the items of a snapshot) can be held. Times as Unix
// seconds (the "time" stat, exptimes) and the uptime do not change. It
// must only be called while the cache holds no item: the rel times of
// items would move. It reports whether it moved the clock.
func (c *Cache) moveClockBack(to int64) bool {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	d := c.started.Load() - to
	if d <= 0 || d > maxClockBack || int64(c.relBack.Load())+d > maxClockBack {
		return false
	}
	c.relBack.Add(uint32(d))
	c.started.Add(-d)
	c.curTime.Store(c.readClock())
	return true
}

// clampRel clamps seconds to a rel time.
func clampRel(s int64) uint32 {
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// relNow returns memcached's current_time: seconds since ProcessStarted.
// With the system's clock it is a ticking counter updated by the clock
// goroutine; with a test clock it is read on every call, so a test can
// move time by hand.
func (c *Cache) relNow() uint32 {
	if !c.ticking {
		return c.readClock()
	}
	return c.curTime.Load()
}

// since returns the seconds from rel time t to now, or 0 when t is later:
// an item's access time can be a tick newer than a now read just before
// another goroutine bumped it, and an age must not wrap to 2^32-1.
func since(now, t uint32) uint32 {
	if t > now {
		return 0
	}
	return now - t
}

// relFromUnix converts a Unix time to rel time, clamped to uint32.
func (c *Cache) relFromUnix(unix int64) uint32 {
	return clampRel(unix - c.started.Load())
}

// realtime converts a client exptime to rel time as memcached's realtime()
// does: 0 is never; up to 30 days is relative to now; above that it is an
// absolute Unix time, and one at or before process start is already
// expired. Negative exptimes are already expired too (memcached maps them
// to an absolute time before its start).
func (c *Cache) realtime(exptime int64, now uint32) uint32 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1
	case exptime > realtimeMaxDelta:
		if exptime <= c.started.Load() {
			return 1
		}
		return c.relFromUnix(exptime)
	}
	r := int64(now) + exptime
	if r > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(r)
}

// unixFromRel converts a rel time back to Unix seconds; 0 stays 0.
func (c *Cache) unixFromRel(rel uint32) int64 {
	if rel == 0 {
		return 0
	}
	return int64(rel) + c.started.Load()
}

// runClock advances curTime once a second until stop is closed. It runs
// only with the system's clock, whose timers are monotonic too.
func (c *Cache) runClock() {
	defer c.wg.Done()
	for {
		c.clockMu.Lock()
		d := c.clock.Monotonic() - c.mono0
		c.curTime.Store(c.relFromElapsed(d))
		c.clockMu.Unlock()
		next := d.Truncate(time.Second) + time.Second
		t := time.NewTimer(next - d + time.Millisecond)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Uptime returns seconds since the cache started, as memcached's "uptime"
// stat. It is safe for concurrent use.
func (c *Cache) Uptime() int64 {
	return int64(c.relNow()) - itemUpdateInterval - int64(c.relBack.Load())
}

// CurrentTime returns the cache's current Unix time in seconds, as
// memcached's "time" stat: ProcessStarted plus the cache clock, which
// advances in whole seconds on the monotonic clock, so a step of the wall
// clock after start does not move it. It is safe for concurrent use.
func (c *Cache) CurrentTime() int64 {
	return int64(c.relNow()) + c.started.Load()
}

// ProcessStarted returns the Unix time that rel times count from
// (memcached's process_started): 62 seconds before New was called, as in
// memcached, or, after loading a snapshot, the earlier one of the cache
// that saved it (as memcached's restart keeps it). Item exptimes are
// stored relative to it. It is safe for concurrent use.
func (c *Cache) ProcessStarted() int64 {
	return c.started.Load()
}

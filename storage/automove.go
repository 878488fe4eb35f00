package storage

// The automover is memcached 1.6's slab_automove=1 algorithm: once a
// second (a tick of the cache's clock) it records, for each class, whether
// it evicted or ran out of memory, whether it gained pages, and the age of
// its COLD tail, keeping the last SlabAutomoveWindow seconds. It then asks
// for one page move:
//   - to the global pool, from a class holding more than 2.5 pages of free
//     chunks that neither evicted nor grew during the whole window;
//   - otherwise, once the window has filled, from the class whose items are
//     oldest on average over the window (with more than two pages) to the
//     class evicting in more than half of the window whose items are
//     youngest, when those are younger than SlabAutomoveRatio times the
//     oldest and it evicted in the last second.
//
// slab_automove=2 instead asks for a page from any class with pages to
// spare on every eviction (lru.go).

// Thresholds of memcached's slab_automove.c.
const (
	automoveMinSourcePages = 2   // a source keeps more than this many pages
	automoveReclaimPages   = 2.5 // free pages' worth of chunks to give back
)

// automoveSample is one class's second in the window.
type automoveSample struct {
	age            uint32 // COLD tail age
	evicted, dirty bool
}

// automoveState is the automover's memory; guarded by Cache.amMu.
type automoveState struct {
	window  []automoveSample // class id * window size + second
	size    int
	cur     int      // seconds recorded
	evicted []uint64 // per class, evictions plus out-of-memory at the last tick
	pages   []int32  // per class, pages at the last tick
	last    uint32   // rel time of the last tick
}

// SetAutomove sets slab_automove at run time, as memcached's "slabs
// automove": 0 off, 1 the background automover, 2 a page move asked for on
// every eviction. It fails with ErrBadSetting for other values. It is safe
// for concurrent use.
func (c *Cache) SetAutomove(n int) error {
	if n < 0 || n > 2 {
		return ErrBadSetting
	}
	c.automove.Store(int32(n))
	return nil
}

// Automove returns the current slab_automove mode (0, 1 or 2). As in
// memcached, it has no effect when NoSlabReassign is set. It is safe for
// concurrent use.
func (c *Cache) Automove() int { return int(c.automove.Load()) }

// SetAutomoveRatio sets slab_automove_ratio at run time, as memcached's
// "slabs automove ratio", which takes any number; it refuses only NaN. It
// is safe for concurrent use.
func (c *Cache) SetAutomoveRatio(r float64) error {
	if r != r {
		return ErrBadSetting
	}
	c.amMu.Lock()
	c.amRatio = r
	c.amMu.Unlock()
	return nil
}

// AutomoveRatio returns the current slab_automove_ratio. It is safe for
// concurrent use.
func (c *Cache) AutomoveRatio() float64 {
	c.amMu.Lock()
	defer c.amMu.Unlock()
	return c.amRatio
}

// newAutomoveState sizes the automover's window for n classes.
func newAutomoveState(n, window int) automoveState {
	return automoveState{
		window:  make([]automoveSample, n*window),
		size:    window,
		evicted: make([]uint64, n),
		pages:   make([]int32, n),
	}
}

// automoveTick runs the automover once per tick of the clock: the
// maintainer calls it on every pass, and only the first call in a second
// does anything.
func (c *Cache) automoveTick() {
	if c.automove.Load() != 1 || c.cfg.NoSlabReassign {
		return
	}
	now := c.relNow()
	c.amMu.Lock()
	if now == c.am.last {
		c.amMu.Unlock()
		return
	}
	c.am.last = now
	// The move is asked for under amMu, so that a caller that finds this
	// second done also finds its move under way. A move in progress makes
	// this one wait for a later tick.
	if src, dst := c.automoveDecideLocked(now); src >= 0 && dst >= 0 {
		_ = c.Reassign(src, dst)
	}
	c.amMu.Unlock()
}

// automoveDecideLocked records this second and returns the move to make,
// or -1, -1. The caller holds amMu.
func (c *Cache) automoveDecideLocked(now uint32) (src, dst int) {
	a := &c.am
	a.cur++
	src, dst = -1, -1
	oldest, youngest := -1, -1
	var oldestAge uint64
	youngestAge := ^uint64(0)
	youngestEvicting := false
	for n := 1; n <= c.largest; n++ {
		cl := &c.classes[n]
		evicted := cl.cnt.evicted.Load() + cl.cnt.outOfMemory.Load()
		pages := cl.npages.Load()
		cl.mu.Lock()
		var age uint32
		if t := cl.lru[lruCold].tail; t != 0 && !c.closed {
			age = since(now, c.hdr(t).atime.Load())
		}
		free := cl.nfree
		cl.mu.Unlock()

		w := a.window[n*a.size : (n+1)*a.size]
		cur := &w[a.cur%a.size]
		*cur = automoveSample{age: age}
		if evicted > a.evicted[n] {
			cur.evicted, cur.dirty = true, true
		}
		if pages > a.pages[n] {
			cur.dirty = true
		}
		a.evicted[n], a.pages[n] = evicted, pages

		var sumAge uint64
		dirty, evictions := false, 0
		for _, s := range w {
			sumAge += uint64(s.age)
			dirty = dirty || s.dirty
			if s.evicted {
				evictions++
			}
		}
		avg := sumAge / uint64(a.size)
		if src != -1 {
			continue // keep recording the other classes' seconds
		}
		if float64(free) > float64(cl.perslab)*automoveReclaimPages && !dirty {
			src, dst = n, 0
			continue
		}
		if avg > oldestAge && pages > automoveMinSourcePages {
			oldest, oldestAge = n, avg
		}
		if avg < youngestAge && evictions > a.size/2 {
			youngest, youngestAge = n, avg
			youngestEvicting = cur.evicted
		}
	}
	if src != -1 {
		return src, dst
	}
	if youngest != -1 && oldest != -1 && a.cur > a.size && youngestEvicting &&
		float64(youngestAge) < float64(oldestAge)*c.amRatio {
		return oldest, youngest
	}
	return src, dst
}

// balance is the maintainer's once-a-second page pass: it releases pages
// while the cache is over a lowered memory limit.
func (c *Cache) balance() {
	c.moveGate.RLock() // a Save in progress holds pages in place
	defer c.moveGate.RUnlock()
	for moved := 0; moved < 64 && c.overLimit(); moved++ {
		v := c.oldestClass(nil, 1)
		if v == nil || !c.releaseOne(v) {
			break
		}
	}
}

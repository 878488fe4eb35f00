package storage

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Eviction is an eviction policy: what a store evicts when memory is full,
// as twemcache's eviction strategies, with twemcache's numbers. The slab
// policies evict every item of one page, which then serves the class that
// needed memory, whatever class it belonged to. Policies combine: a store
// tries the higher bits first (EvictLRA|EvictLRU tries a page, then an
// item).
type Eviction uint8

// Eviction policies.
const (
	// EvictNone evicts nothing: a store that finds no memory fails with
	// ErrNoMemory (memcached's -M).
	EvictNone Eviction = 0
	// EvictLRU evicts the least recently used items of the item's own
	// class (memcached's segmented LRU, the default).
	EvictLRU Eviction = 1
	// EvictRandom evicts a page chosen at random.
	EvictRandom Eviction = 2
	// EvictLRA evicts the page least recently accessed: the one whose
	// items were least recently read or written.
	EvictLRA Eviction = 4
	// EvictLRC evicts the page least recently created: the one that was
	// given to its class longest ago, whatever its use since.
	EvictLRC Eviction = 8

	evictInvalid Eviction = 16
	evictSlab             = EvictRandom | EvictLRA | EvictLRC
)

var evictionNames = [...]struct {
	e    Eviction
	name string
}{{EvictLRC, "lrc"}, {EvictLRA, "lra"}, {EvictRandom, "random"}, {EvictLRU, "lru"}}

// String returns the policy's name ("lru", "random", "lra", "lrc",
// "none"), or the names of a combination joined by "+" ("lra+lru").
func (e Eviction) String() string {
	if e == EvictNone {
		return "none"
	}
	if e >= evictInvalid {
		return strconv.Itoa(int(e))
	}
	var b strings.Builder
	for _, n := range evictionNames {
		if e&n.e != 0 {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(n.name)
		}
	}
	return b.String()
}

// ParseEviction parses a policy: a name String returns, names joined by
// "+", or twemcache's number (0 to 15).
func ParseEviction(s string) (Eviction, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n >= int(evictInvalid) {
			return 0, ErrBadSetting
		}
		return Eviction(n), nil
	}
	if s == "none" {
		return EvictNone, nil
	}
	var e Eviction
	for _, part := range strings.Split(s, "+") {
		found := false
		for _, n := range evictionNames {
			if part == n.name {
				e |= n.e
				found = true
			}
		}
		if !found {
			return 0, ErrBadSetting
		}
	}
	return e, nil
}

// SetEviction changes the eviction policy at run time, as twemcache's
// "config evict". It is safe for concurrent use.
func (c *Cache) SetEviction(e Eviction) error {
	if e >= evictInvalid {
		return ErrBadSetting
	}
	c.evict.Store(uint32(e))
	return nil
}

// Eviction returns the current eviction policy. It is safe for concurrent
// use.
func (c *Cache) Eviction() Eviction { return Eviction(c.evict.Load()) }

// touchPage records an access to the page holding ref, for EvictLRA. It
// writes at most once a second per page.
func (c *Cache) touchPage(ref itemRef, now uint32) {
	if p := &c.pageAtime[ref.pageID()]; p.Load() != now {
		p.Store(now)
	}
}

// countEvictionLocked counts the eviction of a live item of class cl, as
// memcached counts one at the LRU tail.
func (c *Cache) countEvictionLocked(cl *class, h *itemHeader, b uint32, now uint32) {
	cl.cnt.evicted.Add(1)
	cl.cnt.evictedTime.Store(uint64(since(now, h.atime.Load())))
	if h.exptime != 0 {
		cl.cnt.evictedNonzero.Add(1)
	}
	if b&bitFetched == 0 {
		cl.cnt.evictedUnfetched.Add(1)
	}
	if b&bitActive != 0 {
		cl.cnt.evictedActive.Add(1)
	}
}

// randomPageTries bounds the pages EvictRandom looks at (twemcache's
// SLAB_RAND_MAX_TRIES).
const randomPageTries = 50

// evictPageLocked frees memory for dst by evicting a whole page chosen by
// the slab bits of ev: the least recently created (EvictLRC) or accessed
// (EvictLRA) page, else a random one (EvictRandom). The page then belongs
// to dst. It reports whether a page was evicted. The caller holds dst.mu;
// other class locks are only tried. It evicts nothing while a Save holds
// pages in place (moveGate).
func (c *Cache) evictPageLocked(dst *class, ev Eviction, now uint32) bool {
	if !c.moveGate.TryRLock() {
		return false
	}
	defer c.moveGate.RUnlock()
	maxID := c.maxPageID.Load()
	var victim uint32
	if ev&(EvictLRC|EvictLRA) != 0 {
		times := c.pageAtime
		if ev&EvictLRC != 0 {
			times = c.pageCtime
		}
		var best uint32
		for id := uint32(1); id <= maxID; id++ {
			if c.pageOwner[id].Load() == 0 {
				continue
			}
			if t := times[id].Load(); victim == 0 || t < best {
				victim, best = id, t
			}
		}
		if victim != 0 && c.evictPage(dst, victim, now) {
			return true
		}
	}
	if ev&EvictRandom != 0 && maxID > 0 {
		for range randomPageTries {
			id := 1 + rand.Uint32N(maxID)
			if c.pageOwner[id].Load() != 0 && c.evictPage(dst, id, now) {
				return true
			}
		}
	}
	return false
}

// evictPage evicts page id for dst (see evictPageLocked). When the page's
// class is busy (the maintainer, the mover), it waits for it without
// holding dst, as stealPageLocked does, rather than pass over the page the
// policy chose.
func (c *Cache) evictPage(dst *class, id uint32, now uint32) bool {
	owner := int(c.pageOwner[id].Load())
	if owner == 0 {
		return false
	}
	v := &c.classes[owner]
	var ok bool
	switch {
	case v == dst:
		ok = c.evictPageOfLocked(v, nil, id, now)
	case v.mu.TryLock():
		ok = c.evictPageOfLocked(v, dst, id, now)
		v.mu.Unlock()
	default:
		dst.mu.Unlock()
		v.mu.Lock()
		ok = c.evictPageOfLocked(v, nil, id, now)
		v.mu.Unlock()
		dst.mu.Lock()
		if c.closed {
			return false // a closed cache has released every page
		}
	}
	if ok {
		c.addPageLocked(dst, id)
	}
	return ok
}

// evictPageOfLocked evicts every item of page id, which class v owns. The
// caller holds v.mu and, when not nil, dst.mu.
func (c *Cache) evictPageOfLocked(v, dst *class, id uint32, now uint32) bool {
	idx := slices.Index(v.pages, id)
	if idx < 0 {
		return false // moved while v was unlocked
	}
	if _, ok := c.clearPageLocked(v, dst, idx, now, true); !ok {
		return false
	}
	c.pageEvictions.Add(1)
	return true
}

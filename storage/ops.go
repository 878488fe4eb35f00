package storage

import "fmt"

// findLocked returns the live item stored under key, or 0. An expired or
// flushed item found on the way is unlinked and counted (get_expired,
// get_flushed), as memcached's do_item_get does for every command. The
// caller holds the key's stripe lock.
func (c *Cache) findLocked(s *stripe, key []byte, hv uint64, now uint32) (itemRef, *itemHeader) {
	ref, h := c.findRawLocked(s, key, hv)
	if ref == 0 {
		return 0, nil
	}
	switch {
	case c.isFlushed(h, now):
		c.getFlushed.Add(1)
	case isExpired(h, now):
		c.getExpired.Add(1)
	default:
		return ref, h
	}
	c.unlinkLocked(s, ref, h, hv)
	return 0, nil
}

// unlinkLocked removes a linked item and frees it. The caller holds its
// stripe lock.
func (c *Cache) unlinkLocked(s *stripe, ref itemRef, h *itemHeader, hv uint64) {
	cl := &c.classes[bitsClass(h.bits.Load())]
	cl.mu.Lock()
	c.unlinkBothLocked(s, cl, ref, h, hv)
	cl.mu.Unlock()
}

// linkLocked makes an in-flight item visible: it gets a new CAS unique and
// the current time, goes into the hash index and at the head of its class's
// HOT LRU. The caller holds the key's stripe lock. It returns the CAS.
func (c *Cache) linkLocked(s *stripe, ref itemRef, h *itemHeader, hv uint64, now uint32) uint64 {
	h.atime.Store(now)
	c.touchPage(ref, now)
	var cas uint64
	if c.useCAS {
		cas = c.casID.Add(1)
		h.cas = cas
	}
	c.hashInsertLocked(s, ref, h, hv)
	cl := &c.classes[bitsClass(h.bits.Load())]
	cl.mu.Lock()
	h.bits.Or(bitLinked)
	c.lruLinkLocked(cl, c.lruSettings().newItemLRU(h.exptime, now), ref, h)
	cl.mu.Unlock()
	c.totalItems.Add(1)
	c.maybeExpand(c.items.Add(1))
	return cas
}

// replaceLocked links the in-flight item ref in place of the linked item
// old (if not 0), as memcached's item_replace, taking the class lock once
// when both are in the same class. It returns the new CAS. The caller
// holds the key's stripe lock.
func (c *Cache) replaceLocked(s *stripe, old itemRef, oh *itemHeader, ref itemRef, h *itemHeader, hv uint64, now uint32) uint64 {
	if old == 0 || bitsClass(oh.bits.Load()) != bitsClass(h.bits.Load()) {
		if old != 0 {
			c.unlinkLocked(s, old, oh, hv)
		}
		return c.linkLocked(s, ref, h, hv, now)
	}
	h.atime.Store(now)
	c.touchPage(ref, now)
	var cas uint64
	if c.useCAS {
		cas = c.casID.Add(1)
		h.cas = cas
	}
	c.hashRemoveLocked(s, old, oh, hv)
	c.hashInsertLocked(s, ref, h, hv)
	cl := &c.classes[bitsClass(h.bits.Load())]
	cl.mu.Lock()
	c.lruUnlinkLocked(cl, old, oh)
	oh.bits.And(^uint32(bitLinked))
	c.freeChunkLocked(cl, old, oh)
	h.bits.Or(bitLinked)
	c.lruLinkLocked(cl, c.lruSettings().newItemLRU(h.exptime, now), ref, h)
	cl.mu.Unlock()
	c.totalItems.Add(1)
	return cas
}

// bumpLocked marks a fetched item as memcached's do_item_bump does: the
// first fetch sets FETCHED, the next ACTIVE (refreshing the access time
// unless the item is in COLD); the LRU tails act on the bits later. With
// the flat LRU it sets FETCHED and relinks the item at the head of its
// list when its access time is over a minute old (do_item_update). It
// returns the bits from before. The caller holds the stripe lock.
func (c *Cache) bumpLocked(ref itemRef, h *itemHeader, now uint32) uint32 {
	b := h.bits.Load()
	if !c.lruSettings().Segmented {
		if b&bitFetched == 0 {
			h.bits.Or(bitFetched)
		}
		if h.atime.Load()+itemUpdateInterval < now {
			cl := &c.classes[bitsClass(b)]
			cl.mu.Lock()
			if nb := h.bits.Load(); nb&bitLinked != 0 {
				c.lruUnlinkLocked(cl, ref, h)
				h.atime.Store(now)
				c.lruLinkLocked(cl, bitsLRU(nb), ref, h)
			}
			cl.mu.Unlock()
		}
		return b
	}
	if b&bitActive == 0 {
		if b&bitFetched == 0 {
			h.bits.Or(bitFetched)
		} else {
			h.bits.Or(bitActive)
			if bitsLRU(b) != lruCold {
				h.atime.Store(now)
			}
		}
	}
	return b
}

// updateLocked refreshes an item's access time as memcached's
// do_item_update does, moving an ACTIVE COLD item to WARM. The caller holds
// the stripe lock.
func (c *Cache) updateLocked(h *itemHeader, ref itemRef, now uint32) {
	h.atime.Store(now)
	b := h.bits.Load()
	if bitsLRU(b) != lruCold || b&bitActive == 0 || !c.lruSettings().Segmented {
		return
	}
	cl := &c.classes[bitsClass(b)]
	cl.mu.Lock()
	if b = h.bits.Load(); b&bitLinked != 0 && bitsLRU(b) == lruCold {
		h.bits.And(^uint32(bitActive))
		c.lruUnlinkLocked(cl, ref, h)
		c.lruLinkLocked(cl, lruWarm, ref, h)
	}
	cl.mu.Unlock()
}

// item returns the view of a linked item passed to callbacks; b is the
// item's bits before this access.
func (c *Cache) item(ref itemRef, h *itemHeader, b uint32, atime uint32) Item {
	it := Item{
		Key:        c.itemKey(ref, b),
		Flags:      h.flags,
		CAS:        c.getCAS(h),
		Exptime:    c.unixFromRel(h.exptime),
		LastAccess: c.unixFromRel(atime),
		Fetched:    b&bitFetched != 0,
	}
	if b&bitChained != 0 {
		it.cache, it.chain, it.n, it.ref = c, c.chainFirst(ref, b), int(h.nbytes), ref
		it.Value = c.firstPiece(it.chain, it.n)
	} else {
		it.Value = c.itemValue(ref, h, b)
	}
	return it
}

// Get looks key up. On a hit it calls fn (if not nil) with the item while
// the item is locked, marks the item fetched and returns true; fn must not
// call the Cache, and must copy what it keeps of Key and Value. A miss,
// including an expired or flushed item, returns false. Get allocates
// nothing. It is safe for concurrent use.
func (c *Cache) Get(key []byte, fn func(Item)) bool {
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return false
	}
	ref, h := c.findLocked(s, key, hv, now)
	if ref == 0 {
		s.mu.Unlock()
		c.getMisses.Add(1)
		return false
	}
	atime := h.atime.Load()
	b := c.bumpLocked(ref, h, now)
	c.touchPage(ref, now)
	if fn != nil {
		fn(c.item(ref, h, b, atime))
	}
	s.mu.Unlock()
	c.classes[bitsClass(b)].cnt.hits[bitsLRU(b)].Add(1)
	return true
}

// GetAndTouch is memcached's gat: Get that also sets the item's exptime
// (converted as in Store) before calling fn. Hits and misses count as
// touch_hits and touch_misses, as in memcached. It is safe for concurrent
// use.
func (c *Cache) GetAndTouch(key []byte, exptime int64, fn func(Item)) bool {
	return c.touch(key, exptime, fn)
}

// Touch sets the exptime of a stored item, as memcached's touch. It returns
// Stored (TOUCHED) or NotFound. It is safe for concurrent use.
func (c *Cache) Touch(key []byte, exptime int64) StoreResult {
	if c.touch(key, exptime, nil) {
		return Stored
	}
	return NotFound
}

// touch is Touch and GetAndTouch: fn, when not nil, sees the touched item.
func (c *Cache) touch(key []byte, exptime int64, fn func(Item)) bool {
	hv := c.hashKey(key)
	now := c.relNow()
	exp := c.realtime(exptime, now)
	s := c.lockStripe(hv)
	if s == nil {
		return false
	}
	ref, h := c.findLocked(s, key, hv, now)
	if ref == 0 {
		s.mu.Unlock()
		c.touchMisses.Add(1)
		return false
	}
	atime := h.atime.Load()
	b := c.bumpLocked(ref, h, now)
	c.touchPage(ref, now)
	h.exptime = exp
	if fn != nil {
		fn(c.item(ref, h, b, atime))
	}
	s.mu.Unlock()
	c.classes[bitsClass(b)].cnt.touchHits.Add(1)
	return true
}

// Store stores value under key with memcached's semantics for mode (see
// StoreResult); cas is the unique a ModeCAS store must match (and, when not
// zero, one an append or prepend must match). It returns ErrTooLarge when
// the item cannot fit any class and ErrNoMemory when no memory can be
// found (ErrNoMemoryRead when only the body chunks of a chained item
// could not be); a ModeSet failing with ErrTooLarge, or ErrNoMemory itself,
// also removes the old value, as memcached does. It is safe for concurrent
// use.
func (c *Cache) Store(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) (StoreResult, error) {
	res, _, err := c.StoreCAS(mode, key, flags, exptime, value, cas)
	return res, err
}

// StoreCAS is Store that also returns the CAS unique of the stored item (0
// when not stored or when CAS is disabled), as the binary and meta
// protocols report it.
func (c *Cache) StoreCAS(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) (StoreResult, uint64, error) {
	return c.store(mode, key, flags, exptime, value, cas, MetaStoreOptions{})
}

// newItem allocates an item holding key and value, with flags and the rel
// exptime exp, not yet linked.
func (c *Cache) newItem(key, value []byte, flags, exp, now uint32) (itemRef, *itemHeader, error) {
	if c.chained(len(key), len(value), flags) {
		return c.newChainedItem(key, value, flags, exp, now)
	}
	ref, err := c.alloc(c.classFor(c.ntotal(len(key), len(value))), len(key), len(value), now)
	if err != nil {
		return 0, nil, err
	}
	h := c.hdr(ref)
	h.exptime, h.flags = exp, flags
	b := h.bits.Load()
	copy(c.itemKey(ref, b), key)
	copy(c.itemValue(ref, h, b), value)
	return ref, h, nil
}

// store is StoreCAS and StoreMeta.
func (c *Cache) store(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64, opts MetaStoreOptions) (StoreResult, uint64, error) {
	if len(key) > KeyMaxLength {
		return NotStored, 0, fmt.Errorf("cannot store %q: %w", key, ErrKeyTooLong)
	}
	if !c.useCAS {
		cas = 0
	}
	if !c.fits(len(key), len(value), flags) {
		if mode == ModeSet {
			c.Unlink(key)
		}
		return NotStored, 0, ErrTooLarge
	}
	now := c.relNow()
	if mode == ModeAppend || mode == ModePrepend {
		return c.storeConcat(mode, key, newValue{b: value, n: len(value)}, cas, now)
	}
	ref, h, err := c.newItem(key, value, flags, c.realtime(exptime, now), now)
	if err != nil {
		if mode == ModeSet && err == ErrNoMemory {
			c.Unlink(key)
		}
		return NotStored, 0, err
	}
	return c.storeInflight(mode, key, ref, h, cas, opts, now)
}

// storeInflight links the in-flight item ref under key as store does for
// mode, or frees it when mode does not store it.
func (c *Cache) storeInflight(mode StoreMode, key []byte, ref itemRef, h *itemHeader, cas uint64, opts MetaStoreOptions, now uint32) (StoreResult, uint64, error) {
	if opts.KeyBinary {
		h.bits.Or(bitKeyBinary)
	}
	c.classes[bitsClass(h.bits.Load())].cnt.cmdSet.Add(1)

	hv := c.hashKey(key)
	s := c.lockStripe(hv)
	if s == nil {
		return NotStored, 0, ErrClosed
	}
	res, store := NotStored, false
	old, oh := c.findLocked(s, key, hv, now)
	if old != 0 {
		switch mode {
		case ModeAdd:
			c.updateLocked(oh, old, now)
		case ModeCAS:
			ocl := &c.classes[bitsClass(oh.bits.Load())]
			if cas != 0 && cas == c.getCAS(oh) {
				ocl.cnt.casHits.Add(1)
				store = true
			} else if opts.Invalidate && cas != 0 && cas < c.getCAS(oh) {
				// ms with I: an older CAS (not 0) replaces the value
				// but keeps the exptime, marked stale.
				h.exptime = oh.exptime
				h.bits.Or(bitStale | oh.bits.Load()&bitTokenSent)
				ocl.cnt.casHits.Add(1)
				store = true
			} else {
				ocl.cnt.casBadval.Add(1)
				res = Exists
			}
		default:
			store = true
		}
	} else {
		switch mode {
		case ModeSet, ModeAdd:
			store = true
		case ModeCAS:
			res = NotFound
			c.casMisses.Add(1)
		}
	}
	var newCAS uint64
	if store {
		newCAS = c.replaceLocked(s, old, oh, ref, h, hv, now)
		res = Stored
	}
	s.mu.Unlock()
	if !store {
		c.freeInflight(ref)
	}
	return res, newCAS, nil
}

// storeConcat is append and prepend: a new item holding both values,
// keeping the old item's flags and exptime. As in memcached, a missing key
// and a combined value that does not fit or finds no memory are NotStored.
// memcached first reads the value into an item of its own, before it looks
// the key up: when that item finds no memory, the store fails with
// ErrNoMemory, whether the key exists or not; a chunk of the class of that
// item is taken here and given back, with the same effects (pages taken,
// evictions).
func (c *Cache) storeConcat(mode StoreMode, key []byte, value newValue, cas uint64, now uint32) (StoreResult, uint64, error) {
	cls := c.classFor(c.ntotal(len(key), value.n))
	if c.chained(len(key), value.n, 0) {
		cls = c.largest
	} else {
		tmp, err := c.alloc(cls, len(key), value.n, now)
		if err != nil {
			return NotStored, 0, err
		}
		// Deferred first, so run after the stripe is unlocked.
		defer c.freeInflight(tmp)
	}
	c.classes[cls].cnt.cmdSet.Add(1)
	hv := c.hashKey(key)
	s := c.lockStripe(hv)
	if s == nil {
		return NotStored, 0, ErrClosed
	}
	defer s.mu.Unlock()
	old, oh := c.findLocked(s, key, hv, now)
	if old == 0 {
		return NotStored, 0, nil
	}
	if cas != 0 && cas != c.getCAS(oh) {
		return Exists, 0, nil
	}
	n := int(oh.nbytes) + value.n
	if !c.fits(len(key), n, oh.flags) {
		return NotStored, 0, nil
	}
	if c.chained(len(key), n, oh.flags) {
		ref, h, err := c.concatChained(mode, key, value, old, oh, n, now)
		if err != nil {
			if err == ErrClosed {
				return NotStored, 0, err
			}
			return NotStored, 0, nil
		}
		return Stored, c.replaceLocked(s, old, oh, ref, h, hv, now), nil
	}
	ref, err := c.alloc(c.classFor(c.ntotal(len(key), n)), len(key), n, now)
	if err != nil {
		if err == ErrClosed {
			return NotStored, 0, err
		}
		return NotStored, 0, nil
	}
	h := c.hdr(ref)
	h.exptime, h.flags = oh.exptime, oh.flags
	b := h.bits.Load()
	copy(c.itemKey(ref, b), key)
	dst := c.itemValue(ref, h, b)
	ov := c.itemValue(old, oh, oh.bits.Load())
	if mode == ModeAppend {
		value.copyTo(c, dst[copy(dst, ov):])
	} else {
		copy(dst[value.copyTo(c, dst):], ov)
	}
	return Stored, c.replaceLocked(s, old, oh, ref, h, hv, now), nil
}

// Unlink removes key without counting it as a delete (memcached's
// item_unlink, used when a set fails). It reports whether an item was
// removed. It is safe for concurrent use.
func (c *Cache) Unlink(key []byte) bool {
	return c.remove(key, 0, false) == Stored
}

// Delete removes key, as memcached's delete: Stored (DELETED) or NotFound.
// It is safe for concurrent use.
func (c *Cache) Delete(key []byte) StoreResult {
	return c.remove(key, 0, true)
}

// DeleteCAS is Delete that only removes the item if its CAS unique is cas
// (when cas is not 0), answering Exists otherwise, as the binary and meta
// protocols' delete. It is safe for concurrent use.
func (c *Cache) DeleteCAS(key []byte, cas uint64) StoreResult {
	return c.remove(key, cas, true)
}

// remove is Delete, DeleteCAS and Unlink; count selects the delete stats.
func (c *Cache) remove(key []byte, cas uint64, count bool) StoreResult {
	if !c.useCAS {
		cas = 0
	}
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return NotFound
	}
	ref, h := c.findLocked(s, key, hv, now)
	if ref == 0 {
		s.mu.Unlock()
		if count {
			c.deleteMisses.Add(1)
		}
		return NotFound
	}
	if cas != 0 && cas != c.getCAS(h) {
		s.mu.Unlock()
		return Exists
	}
	cls := bitsClass(h.bits.Load())
	c.unlinkLocked(s, ref, h, hv)
	s.mu.Unlock()
	if count {
		c.classes[cls].cnt.deleteHits.Add(1)
	}
	return Stored
}

// FlushAll invalidates every item stored before now plus delay seconds
// (delay as an exptime: relative up to 30 days, else absolute), as
// memcached's flush_all: items whose last update is not after that time
// become misses once it is reached, and with delay <= 0 also every item
// whose CAS predates the call. Memory is reclaimed lazily. It is safe for
// concurrent use.
func (c *Cache) FlushAll(delay int64) {
	now := c.relNow()
	newOldest := now
	if delay > 0 {
		newOldest = c.realtime(delay, now)
	}
	if !c.useCAS {
		c.oldestLive.Store(newOldest)
		return
	}
	c.oldestLive.Store(newOldest - 1)
	if newOldest-1 <= now {
		c.oldestCAS.Store(c.casID.Add(1))
	}
}

// SetMemoryLimit changes the memory limit, as memcached's cache_memlimit.
// Growing takes effect at once. Shrinking stops new page allocation and the
// maintainer releases pages (evicting their items) until the cache is
// within the limit. It fails only for a limit the cache cannot address:
// past MaxNarrowLimit, or past the limit it was created with when that
// was larger. It is safe for concurrent use.
func (c *Cache) SetMemoryLimit(bytes int64) error {
	if bytes <= 0 || bytes > c.maxLimit() {
		return fmt.Errorf("cannot set memory limit %d: %w", bytes, ErrMemoryLimit)
	}
	c.pageMu.Lock()
	c.limit = bytes
	c.overdraft = 0
	c.pageMu.Unlock()
	c.overLimit()
	return nil
}

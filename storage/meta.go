package storage

import "strconv"

// Item bits for memcached's meta protocol, beside those in item.go: bits 6
// and 7 of the low byte and the bit above the key length are otherwise
// unused, so the header keeps its size.
const (
	// bitStale marks an item invalidated by md with I, or stored by ms
	// with I and an older CAS (memcached's ITEM_STALE).
	bitStale = 1 << 6
	// bitTokenSent records that a client has been sent the win flag W
	// for the item (memcached's ITEM_TOKEN_SENT).
	bitTokenSent = 1 << 7
	// bitKeyBinary marks a key that the client sent in base64 (ms with
	// b), so that replies show it in base64 (memcached's ITEM_KEY_BINARY).
	bitKeyBinary = 1 << 24
)

// MetaEntry is the view of an item passed to the callbacks of the meta
// operations (MetaGet, ArithMeta, MetaDebug). It is valid only during the
// callback, which runs with the item locked and must not call the Cache.
// Its methods act on the callback's copy, which SetExptime may change.
type MetaEntry struct {
	c       *Cache
	ref     itemRef
	h       *itemHeader
	b       uint32 // the item's bits before this access
	atime   uint32 // its access time before this access
	now     uint32
	created bool
	num     uint64
	// detached keeps the exptime in exp instead of the item: memcached's
	// ma answers a result too long for the old item from the old item,
	// unlinked, so its T and N flags change nothing stored.
	detached bool
	exp      uint32
}

// exptime returns the exptime the entry shows.
func (e *MetaEntry) exptime() uint32 {
	if e.detached {
		return e.exp
	}
	return e.h.exptime
}

// Key returns the item's key; Value its value, or for an item larger
// than SlabChunkMax (stored in pieces) the first piece of it: Len and
// AppendValue give the whole value. Both point into slab memory.
func (e *MetaEntry) Key() []byte { return e.c.itemKey(e.ref, e.b) }
func (e *MetaEntry) Value() []byte {
	b := e.h.bits.Load()
	if b&bitChained != 0 {
		return e.c.firstPiece(e.c.chainFirst(e.ref, b), int(e.h.nbytes))
	}
	return e.c.itemValue(e.ref, e.h, b)
}

// Len returns the length of the item's value.
func (e *MetaEntry) Len() int { return int(e.h.nbytes) }

// AppendValue appends the item's whole value to dst and returns the
// result.
func (e *MetaEntry) AppendValue(dst []byte) []byte {
	b := e.h.bits.Load()
	if b&bitChained != 0 {
		return e.c.appendChain(dst, e.c.chainFirst(e.ref, b), int(e.h.nbytes))
	}
	return append(dst, e.c.itemValue(e.ref, e.h, b)...)
}

// Flags returns the client flags; CAS the CAS unique (0 when disabled).
func (e *MetaEntry) Flags() uint32 { return e.h.flags }
func (e *MetaEntry) CAS() uint64   { return e.c.getCAS(e.h) }

// TTL returns the seconds the item has left as memcached's t flag shows
// them: -1 for an item that never expires, else the expiry less the
// current time as an unsigned 32-bit number.
func (e *MetaEntry) TTL() int64 {
	exp := e.exptime()
	if exp == 0 {
		return -1
	}
	return int64(exp - e.now)
}

// SetExptime sets the item's exptime (a client exptime, as in Store).
func (e *MetaEntry) SetExptime(exptime int64) {
	if e.detached {
		e.exp = e.c.realtime(exptime, e.now)
		return
	}
	e.h.exptime = e.c.realtime(exptime, e.now)
}

// ExpiresBefore reports whether the item expires, earlier than exptime
// would (memcached's recache test for mg's R flag).
func (e *MetaEntry) ExpiresBefore(exptime int64) bool {
	exp := e.exptime()
	return exp != 0 && exp < e.c.realtime(exptime, e.now)
}

// Idle returns the seconds since the item's last access before this one.
func (e *MetaEntry) Idle() uint32 { return since(e.now, e.atime) }

// DebugExptime is memcached's "exp" of me: -1 for no expiry, else the
// current time less the expiry (negative while the item lives).
func (e *MetaEntry) DebugExptime() int32 {
	exp := e.exptime()
	if exp == 0 {
		return -1
	}
	return int32(e.now - exp)
}

// Fetched reports whether the item had been fetched before this access.
func (e *MetaEntry) Fetched() bool { return e.b&bitFetched != 0 }

// Created reports whether this access created the item (autovivify).
func (e *MetaEntry) Created() bool { return e.created }

// Stale reports whether the item is marked stale.
func (e *MetaEntry) Stale() bool { return e.h.bits.Load()&bitStale != 0 }

// TokenSent reports whether a win flag has been sent for the item.
func (e *MetaEntry) TokenSent() bool { return e.h.bits.Load()&bitTokenSent != 0 }

// MarkTokenSent records that a win flag is sent for the item.
func (e *MetaEntry) MarkTokenSent() { e.h.bits.Or(bitTokenSent) }

// KeyBinary reports whether the key was stored from base64.
func (e *MetaEntry) KeyBinary() bool { return e.b&bitKeyBinary != 0 }

// Number returns the result of ArithMeta.
func (e *MetaEntry) Number() uint64 { return e.num }

// DebugSize returns the item's size as memcached counts it, and DebugClass
// the memcached slab class of that size.
func (e *MetaEntry) DebugSize() int64 {
	return e.c.mcItemSize(bitsNKey(e.b), int(e.h.nbytes), e.h.flags)
}
func (e *MetaEntry) DebugClass() int {
	cls := e.c.classFor(uint64(e.DebugSize()))
	if cls == 0 {
		return e.c.largest // memcached's largest class holds chained items
	}
	return cls
}

// MetaOutcome tells MetaGet how the callback answered, which decides what
// memcached counts and whether it bumps the item.
type MetaOutcome uint8

// Outcomes of a MetaGet callback.
const (
	MetaHit       MetaOutcome = iota // a get hit (get_hits), bumped
	MetaTouched                      // a touch hit (touch_hits), bumped
	MetaUncounted                    // an answer that failed after the item was bumped
	MetaFailed                       // an answer that failed with the item not bumped
)

// ItemFitsFlags is ItemFits for an item with client flags, which take room
// in memcached's items when not 0. It is safe for concurrent use.
func (c *Cache) ItemFitsFlags(keyLen, valueLen int, flags uint32) bool {
	return keyLen >= 0 && valueLen >= 0 && c.fits(keyLen, valueLen, flags)
}

// MetaGet looks key up for memcached's mg. On a miss with vivify set it
// creates an empty item (flags 0, no expiry) in its place, as mg's N flag.
// On a hit, or a creation, it calls fn with the item locked, then bumps
// the item (unless noBump or fn answers MetaFailed) and counts what fn
// answers; it returns whether fn was called. A miss counts as get_misses.
// It is safe for concurrent use.
func (c *Cache) MetaGet(key []byte, vivify, noBump bool, fn func(MetaEntry) MetaOutcome) bool {
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return false
	}
	ref, h := c.findLocked(s, key, hv, now)
	created := false
	if ref == 0 && vivify {
		ref, h = c.vivifyLocked(s, key, nil, hv, now)
		created = ref != 0
	}
	if ref == 0 {
		s.mu.Unlock()
		c.getMisses.Add(1)
		return false
	}
	b := h.bits.Load()
	out := fn(MetaEntry{c: c, ref: ref, h: h, b: b, atime: h.atime.Load(), now: now, created: created})
	if !noBump && out != MetaFailed {
		c.bumpLocked(ref, h, now)
	}
	s.mu.Unlock()
	switch out {
	case MetaHit:
		c.classes[bitsClass(b)].cnt.hits[bitsLRU(b)].Add(1)
	case MetaTouched:
		c.classes[bitsClass(b)].cnt.touchHits.Add(1)
	}
	return true
}

// vivifyLocked creates and links an item holding value (flags 0, no
// expiry) under key, or returns 0 when no memory is found. The caller holds
// the key's stripe lock and has found no item.
func (c *Cache) vivifyLocked(s *stripe, key, value []byte, hv uint64, now uint32) (itemRef, *itemHeader) {
	ref, h, err := c.newItem(key, value, 0, 0, now)
	if err != nil {
		return 0, nil
	}
	c.linkLocked(s, ref, h, hv, now)
	return ref, h
}

// MetaDebug calls fn with the item stored under key, without bumping or
// counting it (memcached's me), and reports whether it was found. It is
// safe for concurrent use.
func (c *Cache) MetaDebug(key []byte, fn func(MetaEntry)) bool {
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return false
	}
	defer s.mu.Unlock()
	ref, h := c.findLocked(s, key, hv, now)
	if ref == 0 {
		return false
	}
	fn(MetaEntry{c: c, ref: ref, h: h, b: h.bits.Load(), atime: h.atime.Load(), now: now})
	return true
}

// MetaStoreOptions are the meta protocol's additions to Store.
type MetaStoreOptions struct {
	// KeyBinary marks the key as sent in base64 (not kept by append and
	// prepend, which make a new item as memcached does).
	KeyBinary bool
	// Invalidate lets a ModeCAS store with a CAS older than the item's
	// succeed, keeping the item's exptime and marking it stale (ms with I).
	Invalidate bool
}

// StoreMeta is StoreCAS with the meta protocol's options. It is safe for
// concurrent use.
func (c *Cache) StoreMeta(mode StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64, opts MetaStoreOptions) (StoreResult, uint64, error) {
	return c.store(mode, key, flags, exptime, value, cas, opts)
}

// MetaDeleteOptions select md's variants.
type MetaDeleteOptions struct {
	HasCAS bool   // remove only if the item's CAS is CAS (else Exists)
	CAS    uint64 //
	// Invalidate marks the item stale with a new CAS instead of removing
	// it, and sets its exptime to TTL when HasTTL.
	Invalidate bool
	HasTTL     bool
	TTL        int64
}

// DeleteMeta is memcached's md: Stored when the item was removed (or
// invalidated), NotFound, or Exists on a CAS mismatch, which like a miss
// counts as delete_misses. It is safe for concurrent use.
func (c *Cache) DeleteMeta(key []byte, opts MetaDeleteOptions) StoreResult {
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return NotFound
	}
	ref, h := c.findLocked(s, key, hv, now)
	if ref == 0 || opts.HasCAS && opts.CAS != c.getCAS(h) {
		s.mu.Unlock()
		c.deleteMisses.Add(1)
		if ref == 0 {
			return NotFound
		}
		return Exists
	}
	if opts.Invalidate {
		if opts.HasTTL {
			h.exptime = c.realtime(opts.TTL, now)
		}
		for {
			old := h.bits.Load()
			if h.bits.CompareAndSwap(old, old&^bitTokenSent|bitStale) {
				break
			}
		}
		if c.useCAS {
			h.cas = c.casID.Add(1)
		}
		s.mu.Unlock()
		return Stored
	}
	cls := bitsClass(h.bits.Load())
	c.unlinkLocked(s, ref, h, hv)
	s.mu.Unlock()
	c.classes[cls].cnt.deleteHits.Add(1)
	return Stored
}

// metaArith carries ArithMeta's additions to IncrCAS.
type metaArith struct {
	vivify  bool
	initial uint64
	fn      func(MetaEntry)
}

// ArithMeta is memcached's ma: IncrCAS that, when the item is missing and
// vivify is set, creates it holding initial (flags 0, no expiry) instead of
// answering NotFound, and that calls fn (if not nil) with the resulting
// item locked whenever it answers Stored. cas 0 means no CAS check. A
// failed creation returns NotFound and ErrNoMemory; a longer result that
// finds no memory NotStored and ErrNoMemory. It is safe for concurrent use.
func (c *Cache) ArithMeta(key []byte, delta uint64, decr bool, cas uint64, vivify bool, initial uint64, fn func(MetaEntry)) (StoreResult, error) {
	_, _, res, err := c.incr(key, delta, decr, cas, &metaArith{vivify: vivify, initial: initial, fn: fn})
	return res, err
}

// vivifyNumberLocked is ArithMeta's creation of a missing item.
func (c *Cache) vivifyNumberLocked(s *stripe, key []byte, hv uint64, now uint32, m *metaArith) (uint64, uint64, StoreResult, error) {
	var buf [20]byte
	ref, h := c.vivifyLocked(s, key, strconv.AppendUint(buf[:0], m.initial, 10), hv, now)
	if ref == 0 {
		return 0, 0, NotFound, ErrNoMemory
	}
	if m.fn != nil {
		m.fn(MetaEntry{c: c, ref: ref, h: h, b: h.bits.Load(), atime: now, now: now, created: true, num: m.initial})
	}
	return m.initial, c.getCAS(h), Stored, nil
}

package storage

import "strconv"

// Incr adds delta to (or with decr, subtracts it from) the decimal number
// stored under key, as memcached's incr and decr: 64-bit unsigned, incr
// wraps, decr stops at 0. It returns the new value and Stored, NotFound, or
// NonNumeric when the value is not a number. If a longer result finds no
// memory, Incr returns NotStored (IncrCAS reports ErrNoMemory). It is safe
// for concurrent use.
func (c *Cache) Incr(key []byte, delta uint64, decr bool) (uint64, StoreResult) {
	v, _, res, err := c.IncrCAS(key, delta, decr, 0)
	if err != nil {
		return 0, NotStored
	}
	return v, res
}

// IncrCAS is Incr for the binary and meta protocols: when cas is not 0 the
// item's CAS unique must match (else Exists), and it also returns the
// item's new CAS unique and ErrNoMemory when a longer result could not be
// stored.
//
// As in memcached (do_add_delta), the value is parsed like strtoull (leading
// white space and a sign allowed, then digits, then white space or the end;
// a negative number is refused unless it wraps to a small one), a result
// not longer than the old value is written in place padded with trailing
// spaces ("100" decr 1 reads "99 "), and a longer one replaces the item
// keeping its flags and exptime. Either way the item gets a new CAS.
func (c *Cache) IncrCAS(key []byte, delta uint64, decr bool, cas uint64) (value, newCAS uint64, res StoreResult, err error) {
	return c.incr(key, delta, decr, cas, nil)
}

// incr is IncrCAS and, with m, ArithMeta.
func (c *Cache) incr(key []byte, delta uint64, decr bool, cas uint64, m *metaArith) (value, newCAS uint64, res StoreResult, err error) {
	if !c.useCAS && m == nil {
		// memcached's ma compares a CAS even without CAS uniques:
		// every item's is then 0, so a C other than 0 never matches.
		cas = 0
	}
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return 0, 0, NotFound, ErrClosed
	}
	defer s.mu.Unlock()
	ref, h := c.findLocked(s, key, hv, now)
	if ref == 0 && m != nil && m.vivify {
		return c.vivifyNumberLocked(s, key, hv, now, m)
	}
	if ref == 0 {
		if decr {
			c.decrMisses.Add(1)
		} else {
			c.incrMisses.Add(1)
		}
		return 0, 0, NotFound, nil
	}
	b := h.bits.Load()
	cls := bitsClass(b)
	if h.nbytes == 0 || b&bitChained != 0 {
		return 0, 0, NonNumeric, nil
	}
	if cas != 0 && cas != c.getCAS(h) {
		return 0, 0, Exists, nil
	}
	val := c.itemValue(ref, h, b)
	v, ok := parseUint(val)
	if !ok {
		return 0, 0, NonNumeric, nil
	}
	cl := &c.classes[cls]
	if decr {
		v -= min(delta, v)
		cl.cnt.decrHits.Add(1)
	} else {
		v += delta
		cl.cnt.incrHits.Add(1)
	}
	var buf [20]byte
	d := strconv.AppendUint(buf[:0], v, 10)
	switch {
	case len(d) <= len(val):
		// As memcached, "stats sizes" takes the item out and back in
		// around its new CAS.
		c.countSize(h, -1)
		for i := copy(val, d); i < len(val); i++ {
			val[i] = ' '
		}
	case len(d) <= len(c.itemTail(ref, b, cl.size)):
		// memcached stores a new item here; the chunk has room for the
		// longer number, so corvid keeps the item and lengthens it.
		// "stats sizes" counts it as the old item gone and a new one.
		c.countSize(h, -1)
		cl.mu.Lock()
		// memcached's new item starts with no fetch or meta bits.
		h.bits.And(^uint32(bitFetched | bitActive | bitStale | bitTokenSent | bitKeyBinary))
		b = h.bits.Load()
		grow := uint64(len(d)) - uint64(h.nbytes)
		cl.lru[bitsLRU(b)].bytes += grow
		h.nbytes = uint32(len(d))
		cl.mu.Unlock()
		copy(c.itemValue(ref, h, b), d)
	default:
		nref, nh, err := c.newItem(key, d, h.flags, h.exptime, now)
		if err != nil {
			return 0, 0, NotStored, err
		}
		ncas := c.replaceLocked(s, ref, h, nref, nh, hv, now)
		if m != nil && m.fn != nil {
			m.fn(MetaEntry{c: c, ref: nref, h: nh, b: nh.bits.Load(), atime: now, now: now, num: v, detached: true, exp: nh.exptime})
		}
		return v, ncas, Stored, nil
	}
	if c.useCAS {
		h.cas = c.casID.Add(1)
	}
	c.countSize(h, 1)
	c.updateLocked(h, ref, now)
	if m != nil && m.fn != nil {
		m.fn(MetaEntry{c: c, ref: ref, h: h, b: h.bits.Load(), atime: h.atime.Load(), now: now, num: v, detached: len(d) > len(val), exp: h.exptime})
	}
	return v, c.getCAS(h), Stored, nil
}

// parseUint parses an item value as memcached's safe_strtoull parses it
// (the stored value is followed by "\r\n", so its end counts as white
// space).
func parseUint(v []byte) (uint64, bool) {
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	neg := false
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		neg = v[i] == '-'
		i++
	}
	start := i
	var n uint64
	overflow := false
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		d := uint64(v[i] - '0')
		if n > (^uint64(0)-d)/10 {
			overflow = true
		}
		n = n*10 + d
	}
	if i == start || overflow {
		return 0, false
	}
	if i < len(v) && !isSpace(v[i]) && v[i] != 0 {
		return 0, false
	}
	if neg {
		n = -n
		if int64(n) < 0 {
			return 0, false
		}
	}
	return n, true
}

// isSpace is C's isspace in the "C" locale.
func isSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

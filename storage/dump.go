package storage

// DumpItem describes one live item as memcached's "lru_crawler metadump"
// lists it.
type DumpItem struct {
	Key        []byte // valid only during the callback
	Exptime    int64  // absolute Unix expiry time, 0 for never
	LastAccess int64  // Unix time of the last access
	CAS        uint64
	Fetched    bool
	Class      int
	ValueLen   int // length of the value
	// Size is the item's size as memcached counts it (its ITEM_ntotal),
	// so that dumps of the two servers agree.
	Size int
}

// dumpBatch is how many chunks a class dump copies keys from under one
// class lock.
const dumpBatch = 256

// Dump calls fn for every live item of the given classes (all classes when
// ids is nil), class by class and within a class in memory order, and
// stops early when fn returns false. Ids outside the cache's classes are
// skipped. Chained items are listed with the largest class, the class
// whose LRUs they are on, as memcached lists them, after the items stored
// in its own chunks (they are found by their header chunks, in the pages
// of the small classes those come from). Items stored, changed or removed
// during the dump may or may not be seen. fn is called without any lock
// held. As memcached's metadump, which its crawler runs, the dump counts a
// crawler start and every item it looks at in crawler_items_checked
// (expired ones included). It is safe for concurrent use.
func (c *Cache) Dump(ids []int, fn func(*DumpItem) bool) {
	c.startCrawl()
	defer c.crawlerRunning.Add(-1)
	d := dumper{c: c, fn: fn}
	visit := func(cls int) bool {
		if !d.pages(cls, false) {
			return false
		}
		if cls != c.largest {
			return true
		}
		last := c.headerClass(KeyMaxLength, 1)
		if last == 0 {
			last = c.largest
		}
		for hc := c.headerClass(1, 0); hc <= last; hc++ {
			if !d.pages(hc, true) {
				return false
			}
		}
		return true
	}
	if ids == nil {
		for i := 1; i < len(c.classes); i++ {
			if !visit(i) {
				return
			}
		}
		return
	}
	for _, id := range ids {
		if id >= 1 && id < len(c.classes) && !visit(id) {
			return
		}
	}
}

// dumper walks class pages for Dump, with buffers reused across batches.
type dumper struct {
	c    *Cache
	fn   func(*DumpItem) bool
	keys []byte
	ends []int
}

// pages calls d.fn for the live items whose chunks are in the pages of
// class cls: the chained items' header chunks with chained, the other
// items without. It reports false once fn has.
func (d *dumper) pages(cls int, chained bool) bool {
	c := d.c
	cl := &c.classes[cls]
	counted := cl
	if chained {
		counted = &c.classes[c.largest]
	}
	page, chunk := 0, 0
	for {
		d.keys, d.ends = d.keys[:0], d.ends[:0]
		cl.mu.Lock()
		if c.closed || page >= len(cl.pages) {
			cl.mu.Unlock()
			return true
		}
		id := cl.pages[page]
		for n := 0; n < dumpBatch && chunk < cl.perslab; n++ {
			b := c.hdr(makeRef(id, chunk*cl.size)).bits.Load()
			if b&bitLinked != 0 && (b&bitChained != 0) == chained {
				d.keys = append(d.keys, c.itemKey(makeRef(id, chunk*cl.size), b)...)
				d.ends = append(d.ends, len(d.keys))
			}
			chunk++
		}
		if chunk >= cl.perslab {
			page, chunk = page+1, 0
		}
		counted.cnt.crawlerItemsChecked.Add(uint64(len(d.ends)))
		cl.mu.Unlock()
		if !c.peekEach(d.keys, d.ends, d.fn) {
			return false
		}
	}
}

// peekEach calls fn for the live item under each key of keys, the keys
// ending at the offsets ends, and reports false once fn has. Keys whose
// item is gone or expired are skipped.
func (c *Cache) peekEach(keys []byte, ends []int, fn func(*DumpItem) bool) bool {
	start := 0
	for _, end := range ends {
		key := keys[start:end:end]
		start = end
		var it DumpItem
		if c.peek(key, &it) && !fn(&it) {
			return false
		}
	}
	return true
}

// peek fills it with the live item stored under key, without touching it,
// and reports whether there is one.
func (c *Cache) peek(key []byte, it *DumpItem) bool {
	hv := c.hashKey(key)
	now := c.relNow()
	s := c.lockStripe(hv)
	if s == nil {
		return false
	}
	defer s.mu.Unlock()
	ref, h := c.findRawLocked(s, key, hv)
	if ref == 0 || !c.dumpItemLocked(ref, h, now, it) {
		return false
	}
	it.Key = key
	return true
}

// dumpItemLocked fills it from a linked item unless the item is expired or
// flushed. The caller holds the item's stripe lock.
func (c *Cache) dumpItemLocked(ref itemRef, h *itemHeader, now uint32, it *DumpItem) bool {
	if isExpired(h, now) || c.isFlushed(h, now) {
		return false
	}
	b := h.bits.Load()
	*it = DumpItem{
		Key:        c.itemKey(ref, b),
		Exptime:    c.unixFromRel(h.exptime),
		LastAccess: c.unixFromRel(h.atime.Load()),
		CAS:        c.getCAS(h),
		Fetched:    b&bitFetched != 0,
		Class:      bitsClass(b),
		ValueLen:   int(h.nbytes),
		Size:       int(c.mcItemSize(bitsNKey(b), int(h.nbytes), h.flags)),
	}
	return true
}

// DumpHash is Dump over every class in hash table order, as memcached's
// "lru_crawler metadump hash": it counts a crawler start, but no items
// checked, as memcached's hash walk. It is safe for concurrent use.
func (c *Cache) DumpHash(fn func(*DumpItem) bool) {
	c.startCrawl()
	defer c.crawlerRunning.Add(-1)
	var items []DumpItem
	var keys []byte
	var lens []int
	for i := range c.stripes {
		s := &c.stripes[i]
		items, keys, lens = items[:0], keys[:0], lens[:0]
		now := c.relNow()
		s.mu.Lock()
		if c.closed {
			s.mu.Unlock()
			return
		}
		for b := i; b < c.numBuckets(s.buckets); b += numStripes {
			for ref := c.bucket(s.buckets, uint64(b)); ref != 0; {
				h := c.hdr(ref)
				var it DumpItem
				if c.dumpItemLocked(ref, h, now, &it) {
					keys = append(keys, it.Key...)
					lens = append(lens, len(it.Key))
					it.Key = nil
					items = append(items, it)
				}
				ref = c.hnext(h)
			}
		}
		s.mu.Unlock()
		start := 0
		for j := range items {
			n := lens[j]
			items[j].Key = keys[start : start+n : start+n]
			start += n
			if !fn(&items[j]) {
				return
			}
		}
	}
}

// Inspect fills it with the live item stored under key, without counting
// or bumping it, and reports whether there is one; it.Key is key. It is
// safe for concurrent use.
func (c *Cache) Inspect(key []byte, it *DumpItem) bool { return c.peek(key, it) }

// ClassOf returns the slab class an item with a key and value of these
// lengths is stored in, or 0 when it fits none. It is safe for concurrent
// use.
func (c *Cache) ClassOf(keyLen, valueLen int) int {
	return c.classFor(c.ntotal(keyLen, valueLen))
}

// EvictedItem describes an item evicted from the COLD tail, as memcached's
// "watch evictions" reports it.
type EvictedItem struct {
	Key       []byte // valid only during the hook
	Fetched   bool
	TTL       int64 // seconds left, -1 for an item that never expires
	Idle      int64 // seconds since its last access
	Class     int
	ValueSize int
}

// SetEvictionHook makes the cache call fn for every item it evicts, or
// stops it with nil. fn is called with cache locks held: it must be quick
// and must not call the Cache. It is safe for concurrent use. The item is
// passed by value so that reporting an eviction allocates nothing.
func (c *Cache) SetEvictionHook(fn func(EvictedItem)) {
	if fn == nil {
		c.onEvict.Store(nil)
		return
	}
	c.onEvict.Store(&fn)
}

// noteEvictionLocked calls the eviction hook, if any, for the item at ref.
func (c *Cache) noteEvictionLocked(ref itemRef, h *itemHeader, b uint32, now uint32) {
	fn := c.onEvict.Load()
	if fn == nil {
		return
	}
	ev := EvictedItem{
		Key:       c.itemKey(ref, b),
		Fetched:   b&bitFetched != 0,
		TTL:       -1,
		Idle:      int64(now) - int64(h.atime.Load()),
		Class:     bitsClass(b),
		ValueSize: int(h.nbytes),
	}
	if h.exptime != 0 {
		ev.TTL = int64(h.exptime) - int64(now)
	}
	(*fn)(ev)
}

// DumpCold calls fn for the items of class id's COLD LRU, most recently
// used first, as memcached's "stats cachedump" lists them (with the flat
// LRU every item is in COLD), and stops early when fn returns false. The
// list is walked under the class lock, as memcached walks it under its LRU
// lock, so the caller bounds the walk by what it can show: at most
// maxItems items (0: no bound) and the items whose keys, with lineBytes
// more each, fit in maxBytes. fn is called without any lock held. It is
// safe for concurrent use.
func (c *Cache) DumpCold(id, maxItems, lineBytes, maxBytes int, fn func(*DumpItem) bool) {
	if id < 1 || id >= len(c.classes) {
		return
	}
	cl := &c.classes[id]
	var keys []byte
	var ends []int
	cl.mu.Lock()
	for ref, size := cl.lru[lruCold].head, 0; ref != 0 && !c.closed && (maxItems == 0 || len(ends) < maxItems); {
		h := c.hdr(ref)
		key := c.itemKey(ref, h.bits.Load())
		if size += len(key) + lineBytes; size > maxBytes {
			break
		}
		keys = append(keys, key...)
		ends = append(ends, len(keys))
		ref = c.next(h)
	}
	cl.mu.Unlock()
	c.peekEach(keys, ends, fn)
}

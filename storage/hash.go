package storage

import (
	"bytes"
	"hash/maphash"
	"sync"
	"unsafe"
)

// numStripes is the number of stripe locks over the hash index. A bucket's
// stripe is its index modulo numStripes; since the table always has at
// least numStripes buckets and doubles when it grows, a key's stripe never
// changes.
const numStripes = 1024

// maxHashPower caps hash table growth.
const maxHashPower = 30

// stripe is one lock of the hash index and the table it currently uses.
type stripe struct {
	mu sync.Mutex // guards buckets, the chains of its buckets and the items on them
	// buckets is the table the stripe's buckets are in. While the table
	// grows, migrated stripes already point at the new table. A bucket
	// is one word, or two (low half first) with wide refs: see bucket.
	buckets []uint32
	_       [64 - 32]byte
}

// hashKey hashes a key.
func (c *Cache) hashKey(key []byte) uint64 {
	return maphash.Bytes(c.seed, key)
}

// stripeFor returns the stripe of a hash value.
func (c *Cache) stripeFor(hv uint64) *stripe {
	return &c.stripes[hv&(numStripes-1)]
}

// lockStripe locks and returns the stripe of hash hv, or returns nil with
// nothing locked when the cache is closed.
func (c *Cache) lockStripe(hv uint64) *stripe {
	s := c.stripeFor(hv)
	s.mu.Lock()
	if c.closed {
		s.mu.Unlock()
		return nil
	}
	return s
}

// numBuckets returns the number of buckets in table t.
func (c *Cache) numBuckets(t []uint32) int { return len(t) >> c.bucketShift }

// bucket returns the head of bucket b of table t.
func (c *Cache) bucket(t []uint32, b uint64) itemRef {
	if c.wide {
		return itemRef(t[b<<1]) | itemRef(t[b<<1+1])<<32
	}
	return itemRef(t[b])
}

// setBucket sets the head of bucket b of table t.
func (c *Cache) setBucket(t []uint32, b uint64, r itemRef) {
	if c.wide {
		t[b<<1], t[b<<1+1] = uint32(r), uint32(r>>32)
		return
	}
	t[b] = uint32(r)
}

// bucketOf returns the bucket of hv in table t.
func (c *Cache) bucketOf(t []uint32, hv uint64) uint64 {
	return hv & uint64(len(t)>>c.bucketShift-1)
}

// findRawLocked returns the item stored under key, or 0, whether or not it
// is expired. The caller holds the key's stripe lock.
func (c *Cache) findRawLocked(s *stripe, key []byte, hv uint64) (itemRef, *itemHeader) {
	for ref := c.bucket(s.buckets, c.bucketOf(s.buckets, hv)); ref != 0; {
		h := c.hdr(ref)
		b := h.bits.Load()
		if bitsNKey(b) == len(key) && bytes.Equal(c.itemKey(ref, b), key) {
			return ref, h
		}
		ref = c.hnext(h)
	}
	return 0, nil
}

// hashInsertLocked puts an item at the head of its bucket.
func (c *Cache) hashInsertLocked(s *stripe, ref itemRef, h *itemHeader, hv uint64) {
	b := c.bucketOf(s.buckets, hv)
	c.setHnext(h, c.bucket(s.buckets, b))
	c.setBucket(s.buckets, b, ref)
	c.countSize(h, 1)
}

// hashRemoveLocked takes an item off its bucket's chain.
func (c *Cache) hashRemoveLocked(s *stripe, ref itemRef, h *itemHeader, hv uint64) {
	c.countSize(h, -1)
	c.hashReplaceLocked(s, ref, c.hnext(h), hv)
	c.setHnext(h, 0)
}

// hashReplaceLocked puts to in old's place in the hash chain of hv; to is
// old's successor when removing old, or a copy of old when moving it.
func (c *Cache) hashReplaceLocked(s *stripe, old, to itemRef, hv uint64) {
	b := c.bucketOf(s.buckets, hv)
	p := c.bucket(s.buckets, b)
	if p == old {
		c.setBucket(s.buckets, b, to)
		return
	}
	for p != 0 {
		h := c.hdr(p)
		next := c.hnext(h)
		if next == old {
			c.setHnext(h, to)
			return
		}
		p = next
	}
}

// maybeExpand asks the expander to double the table when the cache holds
// more than 1.5 items per bucket, as memcached's assoc_insert does.
func (c *Cache) maybeExpand(items int64) {
	power := c.hashPower.Load()
	if power >= maxHashPower || items <= int64(3)<<power>>1 || c.hashExpanding.Load() || c.cfg.NoHashExpand {
		return
	}
	select {
	case c.expandCh <- struct{}{}:
	default:
	}
}

// runExpander grows the hash table on request until stop is closed.
// Inserts that cross the next threshold while a table grows do not ask
// again, so it keeps growing while the items call for it.
func (c *Cache) runExpander() {
	c.runOnSignal(c.expandCh, func() bool {
		power := c.hashPower.Load()
		if power >= maxHashPower || c.items.Load() <= int64(3)<<power>>1 {
			return false
		}
		c.expand(power + 1)
		return true
	})
}

// runOnSignal calls step each time ch is signalled, and again for as long
// as step reports that it did something, until stop is closed. It is the
// body of a goroutine counted in c.wg.
func (c *Cache) runOnSignal(ch <-chan struct{}, step func() bool) {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-ch:
		}
		for step() {
			select {
			case <-c.stop:
				return
			default:
			}
		}
	}
}

// expandAhead is how many buckets of a stripe ahead expand prefetches.
const expandAhead = 16

// expand doubles the table one stripe at a time, so that only the keys of
// one stripe wait while their chains are split; the others keep working on
// the old or the new table.
func (c *Cache) expand(power uint32) {
	nt, err := allocTable(1<<power<<c.bucketShift, !c.cfg.NoHugePages)
	if err != nil {
		return // the table stays as it is; a later insert asks again
	}
	c.hashExpanding.Store(true)
	defer c.hashExpanding.Store(false)
	mask := uint64(c.numBuckets(nt) - 1)
	c.index.Store(&nt)
	// Only the expander replaces tables, so the old one, which every
	// stripe uses until it migrates, can be read without a lock here.
	old := c.stripes[0].buckets
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		if c.closed {
			s.mu.Unlock()
			return
		}
		for b := i; b < c.numBuckets(old); b += numStripes {
			// The buckets of a stripe lie numStripes apart. Ask for the
			// bucket expandAhead buckets on, the first item of the one
			// half as far (its bucket has arrived by now) and the second
			// item of the one a quarter as far (its first has), so that
			// their misses overlap the work on this bucket instead of
			// following it.
			if far := b + expandAhead*numStripes; canPrefetch && far < c.numBuckets(old) {
				prefetch(uintptr(unsafe.Pointer(&old[far<<c.bucketShift])))
				c.prefetchItem(c.bucket(old, uint64(b+expandAhead/2*numStripes)))
				if head := c.bucket(old, uint64(b+expandAhead/4*numStripes)); head != 0 {
					c.prefetchItem(c.hnext(c.hdr(head)))
				}
			}
			for ref := c.bucket(old, uint64(b)); ref != 0; {
				h := c.hdr(ref)
				next := c.hnext(h)
				nb := c.hashKey(c.itemKey(ref, h.bits.Load())) & mask
				c.setHnext(h, c.bucket(nt, nb))
				c.setBucket(nt, nb, ref)
				ref = next
			}
		}
		s.buckets = nt
		s.mu.Unlock()
	}
	c.hashPower.Store(power)
	// Every stripe has moved to nt under its lock, and nothing keeps a
	// table past unlocking its stripe but Prefetch, which only reads.
	if t := retireTable(old); t != nil {
		c.retired = append(c.retired, t)
	}
}

// freeTablesLocked frees the hash tables at Close, which holds every
// stripe lock and has waited for the expander, so every stripe uses one
// table.
func (c *Cache) freeTablesLocked() {
	c.index.Store(nil)
	freeTable(c.stripes[0].buckets)
	for i := range c.stripes {
		c.stripes[i].buckets = nil
	}
	for _, t := range c.retired {
		freeTable(t)
	}
	c.retired = nil
}

// PrefetchBatch is how many keys Prefetch looks at: about as many misses
// as a core keeps in flight. A caller with more keys prefetches each batch
// before looking it up.
const PrefetchBatch = 16

// Prefetch asks the CPU to load the index buckets and item headers of keys
// (the first PrefetchBatch of them) into its cache ahead of looking them
// up: the lookups of a multi-key get then overlap their cache misses
// instead of paying them one after another. It reads the index without
// locks (nothing it reads is trusted: it only chooses what to prefetch,
// and a prefetch never faults), and does nothing under the race detector,
// which would rightly report those reads.
// It is safe for concurrent use, but not concurrently with Close.
func (c *Cache) Prefetch(keys [][]byte) {
	if raceEnabled || !canPrefetch {
		return
	}
	tp := c.index.Load()
	if tp == nil {
		return
	}
	t := *tp
	mask := uint64(c.numBuckets(t) - 1)
	var refs [PrefetchBatch]itemRef
	n := min(len(keys), PrefetchBatch)
	// The bucket loads do not depend on each other, so the CPU overlaps
	// their misses.
	for i, key := range keys[:n] {
		refs[i] = c.bucket(t, c.hashKey(key)&mask)
	}
	for _, ref := range refs[:n] {
		c.prefetchItem(ref)
	}
}

// prefetchItem asks the CPU to load the header, key and start of the
// value of the item at ref (0 or out of range: nothing).
func (c *Cache) prefetchItem(ref itemRef) {
	id := ref >> refPageShift
	if ref == 0 || id >= itemRef(len(c.pages)) {
		return
	}
	a := uintptr(unsafe.Pointer(unsafe.SliceData(c.pages[id]))) + uintptr(ref.offset())
	prefetch(a)      // the header and the start of the key
	prefetch(a + 64) // the rest of the key and the value
}

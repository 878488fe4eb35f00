package storage

import "sync/atomic"

// sizeBucket is the width of memcached's "stats sizes" histogram buckets.
const sizeBucket = 32

// sizeHist is memcached's "stats sizes" histogram: linked items counted by
// their size as memcached counts it (statSize), rounded up to a multiple
// of sizeBucket. Items linked before it was made (their CAS below casMin)
// are left out, also when they are unlinked, as in memcached. Counts are
// unsigned and wrap as memcached's do.
type sizeHist struct {
	casMin uint64
	counts []atomic.Uint32 // by size/sizeBucket, up to ItemSizeMax
}

// newSizeHist returns an empty histogram for items linked from now on:
// as memcached, it takes a CAS unique of its own as the bound.
func (c *Cache) newSizeHist() *sizeHist {
	var casMin uint64
	if c.useCAS {
		casMin = c.casID.Add(1)
	}
	return &sizeHist{casMin: casMin, counts: make([]atomic.Uint32, c.cfg.ItemSizeMax/sizeBucket+1)}
}

// countSize adds delta (1 or -1) to the bucket of a linked item. The
// caller holds the item's stripe lock.
func (c *Cache) countSize(h *itemHeader, delta int32) {
	hs := c.sizes.Load()
	if hs == nil || (c.useCAS && h.cas < hs.casMin) {
		return
	}
	n := c.statSize(h, h.bits.Load())
	b := (n + sizeBucket - 1) / sizeBucket
	if b < uint64(len(hs.counts)) {
		hs.counts[b].Add(uint32(delta))
	}
}

// EnableSizes starts the "stats sizes" histogram (memcached's "stats
// sizes_enable"), counting the items linked from now on; it is a no-op
// when the histogram is on. It returns ErrSizesNeedCAS when CAS is
// disabled, as memcached refuses then. It is safe for concurrent use.
func (c *Cache) EnableSizes() error {
	if !c.useCAS {
		return ErrSizesNeedCAS
	}
	c.sizes.CompareAndSwap(nil, c.newSizeHist())
	return nil
}

// DisableSizes stops the "stats sizes" histogram and drops its counts
// ("stats sizes_disable"). It is safe for concurrent use.
func (c *Cache) DisableSizes() { c.sizes.Store(nil) }

// Sizes calls fn for each nonzero bucket of the "stats sizes" histogram,
// smallest first, with the bucket's size and count; it reports false, and
// calls nothing, when the histogram is off. It is safe for concurrent use.
func (c *Cache) Sizes(fn func(size int, n uint32)) bool {
	hs := c.sizes.Load()
	if hs == nil {
		return false
	}
	for i := range hs.counts {
		if n := hs.counts[i].Load(); n != 0 {
			fn(i*sizeBucket, n)
		}
	}
	return true
}

package storage

import "fmt"

// Incoming is a chained item (one larger than SlabChunkMax) whose value
// is being read in, as memcached reads a value into the chunks of the
// item it has allocated: the caller writes the value and its "\r\n"
// straight into the chunks (Space, Wrote), then stores the item with
// StoreIncoming or drops it with Abort. Until then it is in flight:
// invisible to gets, counted in its classes' chunks (and mem_requested),
// passed over by eviction, page moves and Save. Its chunks are taken as
// the value comes, as memcached takes them, but only from free memory,
// never by evicting: a client that sends part of a value and stops costs
// no stored item. An Incoming is not safe for concurrent use.
type Incoming struct {
	c    *Cache
	mode StoreMode
	ref  itemRef
	h    *itemHeader
	w    chainWriter
	left int     // bytes still to be written, "\r\n" included
	tail [2]byte // the last two bytes written
}

// NewIncoming allocates the header chunk of a chained item for a store of
// mode under key of an n-byte value, with flags and exptime as in Store.
// The value of an append or prepend is read into an item of its own, as
// memcached reads it, which StoreIncoming copies with the old value into
// the new item and frees (its flags and exptime are not used). It
// returns nil and no error when the value is not to be read in so: not
// chained, or less free memory than the value needs (Store then stores it
// as usual, evicting). ErrTooLarge is returned when the value cannot fit
// (a ModeSet then removes the old value, as Store does). It is safe for
// concurrent use.
func (c *Cache) NewIncoming(mode StoreMode, key []byte, flags uint32, exptime int64, n int) (*Incoming, error) {
	chainFlags := flags
	if mode == ModeAppend || mode == ModePrepend {
		chainFlags = 0 // as Store decides how to take the value
	}
	if n < 0 || !c.chained(len(key), n, chainFlags) {
		return nil, nil
	}
	if len(key) > KeyMaxLength {
		return nil, fmt.Errorf("cannot store %q: %w", key, ErrKeyTooLong)
	}
	if !c.fits(len(key), n, flags) {
		if mode == ModeSet {
			c.Unlink(key)
		}
		return nil, ErrTooLarge
	}
	if c.freeBytes() < int64(n)+int64(c.cfg.SlabChunkMax) {
		return nil, nil
	}
	now := c.relNow()
	ref, h, err := c.newChainedFrom(key, n, flags, c.realtime(exptime, now), now, true)
	if err != nil {
		return nil, nil
	}
	return &Incoming{c: c, mode: mode, ref: ref, h: h, left: n + len(crlf),
		w: chainWriter{c: c, owner: ref, now: now, noEvict: true}}, nil
}

// freeBytes returns about how many bytes of body chunks can be had
// without evicting: the largest class's free chunks and the pages the
// memory limit still allows.
func (c *Cache) freeBytes() int64 {
	l := &c.classes[c.largest]
	l.mu.Lock()
	free := int64(l.nfree) * int64(l.size)
	l.mu.Unlock()
	c.pageMu.Lock()
	free += max(c.limit-c.malloced, 0)
	c.pageMu.Unlock()
	return free
}

// Left returns how many bytes are still to be written: the rest of the
// value and its "\r\n".
func (in *Incoming) Left() int { return in.left }

// Space returns where the next bytes go: the free rest of the last chunk,
// at most Left bytes, adding a chunk from free memory when it is full. It
// returns ErrNoMemoryRead when there is none (memcached's "Out of memory
// during read": others took the memory since NewIncoming): the caller
// then discards the rest of the value and calls Abort. Space returns
// nothing once Left is 0.
func (in *Incoming) Space() ([]byte, error) {
	if in.left == 0 {
		return nil, nil
	}
	if len(in.w.space) == 0 {
		if err := in.w.grow(in.left); err != nil {
			if err == ErrNoMemory {
				err = ErrNoMemoryRead
			}
			return nil, err
		}
	}
	return in.w.space[:min(len(in.w.space), in.left)], nil
}

// Wrote records that the first n bytes of what Space returned were
// written.
func (in *Incoming) Wrote(n int) {
	if n <= 0 {
		return
	}
	d := in.w.space[:n]
	if n >= 2 {
		in.tail = [2]byte{d[n-2], d[n-1]}
	} else {
		in.tail = [2]byte{in.tail[1], d[0]}
	}
	in.w.space = in.w.space[n:]
	in.c.chunk(in.w.last).used += uint32(n)
	in.left -= n
}

// Write copies p (at most Left bytes) into the item, as Space and Wrote
// would, and returns how many bytes it took.
func (in *Incoming) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && in.left > 0 {
		sp, err := in.Space()
		if err != nil {
			return n, err
		}
		k := copy(sp, p)
		in.Wrote(k)
		p, n = p[k:], n+k
	}
	return n, nil
}

// Terminated reports whether the bytes written end with "\r\n"; a value
// that does not is memcached's "bad data chunk".
func (in *Incoming) Terminated() bool { return in.tail == [2]byte{'\r', '\n'} }

// Abort frees the item's chunks. The Incoming is not to be used again.
func (in *Incoming) Abort() {
	if in.c != nil {
		in.c.freeInflight(in.ref)
		in.c = nil
	}
}

// StoreIncoming stores the item once its value is written (Left is 0 and
// Terminated), with Store's semantics for its mode: cas and opts as in
// StoreMeta. The item is freed when not stored. It returns what
// StoreMeta returns.
func (c *Cache) StoreIncoming(in *Incoming, cas uint64, opts MetaStoreOptions) (StoreResult, uint64, error) {
	if in.c != c || in.left != 0 || !in.Terminated() {
		in.Abort()
		return NotStored, 0, fmt.Errorf("cannot store an incomplete value: %w", ErrBadConfig)
	}
	in.c = nil
	if !c.useCAS {
		cas = 0
	}
	b := in.h.bits.Load()
	key := c.itemKey(in.ref, b)
	if in.mode == ModeAppend || in.mode == ModePrepend {
		v := newValue{first: c.chainFirst(in.ref, b), n: int(in.h.nbytes)}
		res, newCAS, err := c.storeConcat(in.mode, key, v, cas, c.relNow())
		c.freeInflight(in.ref)
		return res, newCAS, err
	}
	return c.storeInflight(in.mode, key, in.ref, in.h, cas, opts, c.relNow())
}

// CountSet counts a set command whose value was read but not stored
// because it did not end in "\r\n" (memcached's "bad data chunk"), in
// the class of the item a key and value of these lengths and flags take:
// memcached counts a set (cmd_set) once it has read the value, before it
// checks the value's end. It is safe for concurrent use.
func (c *Cache) CountSet(nkey, nbytes int, flags uint32) {
	cls := c.largest
	if !c.chained(nkey, nbytes, flags) {
		cls = c.classFor(c.ntotal(nkey, nbytes))
	}
	c.classes[cls].cnt.cmdSet.Add(1)
}

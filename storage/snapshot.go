package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corvidcache/corvid/internal/atomicfile"
)

// A snapshot holds the live items of a cache so that a restarted server
// comes back warm (memcached's -e restartable cache). corvid writes items
// out one by one instead of keeping slab memory in a file, so a snapshot
// can be loaded into a cache with different -m, -n, -f or -I settings.
//
// Layout, little-endian:
//
//	header   "CORVIDSN" | u32 version | u32 flags (1 = CAS enabled) | i64 saved-at Unix seconds |
//	         i64 process_started: the Unix time of the saving cache's rel time 0
//	         (absent in version 1)
//	record   u32 value length | u32 flags | i64 exptime (Unix seconds, 0 = never) | u64 CAS |
//	         i64 last access (Unix seconds; absent in version 1) |
//	         u8 marks (1 = stale, 2 = win token sent, 4 = base64 key, 8 = fetched,
//	         16 = active, 32 = in WARM, 64 = in COLD; absent in version 1) |
//	         u8 key length | key | value
//	...
//	end      a record header with key length 0, zero fields but the exptime:
//	         the time of a delayed flush_all pending at the save (Unix
//	         seconds, 0 = none), and the CAS: the cache's CAS counter at the
//	         save (both 0 in version 1); its last access is 0 | u64 record count
//	checksum u32 CRC-32C of every byte before it
//
// Load checks the whole file (structure, limits, count and checksum) before
// it stores anything, so a truncated, corrupted or foreign file leaves the
// cache empty.
//
// Version 2 added the CAS counter, the pending flush, the last access and
// the marks; version 1 files still load, their new CAS uniques continuing
// after the largest one they hold, their items loaded as just stored.
//
// The last access and the fetched and active marks are memcached's
// it->time and ITEM_FETCHED/ITEM_ACTIVE, which its restart keeps with the
// whole memory image, and so are the lists of the segmented LRU: an item
// saved in WARM or COLD goes back there (when the loading cache's LRU is
// segmented too; HOT and TEMP need no mark, a loaded item enters them as
// a new one does). After a load each LRU list holds its items in the
// order of their last access (see relinkByAccess), so the first evictions
// take the least recently used items, as they would have without the
// restart.
const (
	snapMagic        = "CORVIDSN"
	snapVersion      = 2
	snapHeaderSize   = 32
	snapHeaderSizeV1 = 24
	snapRecordSize   = 34
	snapRecordSizeV1 = 25
	snapFlagCAS      = 1
)

// The marks of a record: the item bits of the meta protocol and of the
// segmented LRU, which memcached's restart keeps too. Without them, an
// item md invalidated would come back fresh, and an item read since it
// was stored would be evicted as one never read (and answer mg's h with
// 0).
const (
	snapMarkStale     = 1
	snapMarkTokenSent = 2
	snapMarkKeyBinary = 4
	snapMarkFetched   = 8
	snapMarkActive    = 16
	snapMarkWarm      = 32
	snapMarkCold      = 64
	snapMarksAll      = snapMarkStale | snapMarkTokenSent | snapMarkKeyBinary | snapMarkFetched | snapMarkActive |
		snapMarkWarm | snapMarkCold
)

var snapMarkBits = [...]struct {
	mark uint8
	bit  uint32
}{
	{snapMarkStale, bitStale}, {snapMarkTokenSent, bitTokenSent}, {snapMarkKeyBinary, bitKeyBinary},
	{snapMarkFetched, bitFetched}, {snapMarkActive, bitActive},
}

var snapTable = crc32.MakeTable(crc32.Castagnoli)

// ErrBadSnapshot reports a snapshot that is truncated, corrupted, of another
// version, or not a snapshot at all.
var ErrBadSnapshot = errors.New("storage: bad snapshot")

// SnapshotStats describes a saved or loaded snapshot.
type SnapshotStats struct {
	Items   int   // items written, or stored by Load
	Expired int   // items skipped because they had expired
	Skipped int   // items Load could not store (too large for this cache, or out of memory)
	Bytes   int64 // size of the snapshot
}

// Save writes the cache's live items to w. Items that are expired or
// flushed are left out. Save may run while the cache serves requests; an
// item changed during the save is written either as it was or as it is,
// and every item that stays in the cache throughout the save is written.
// Meanwhile no page leaves its class: the mover, the maintainer and the
// crawler wait, and a store that would take a page from another class or
// evict a whole page evicts from its own class or fails.
func (c *Cache) Save(w io.Writer) (SnapshotStats, error) {
	c.moveGate.Lock()
	defer c.moveGate.Unlock()
	var st SnapshotStats
	cw := &crcWriter{w: w, h: crc32.New(snapTable)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var hdr [snapHeaderSize]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint32(hdr[8:], snapVersion)
	if c.useCAS {
		binary.LittleEndian.PutUint32(hdr[12:], snapFlagCAS)
	}
	// Exptimes are written as Unix times on the wall clock as it reads
	// now, which may have been stepped since the cache started: origin is
	// the wall time of rel time 0, so an item keeps the time it has left
	// across a restart whatever the steps.
	wall := c.clock.Now().Unix()
	origin := wall - int64(c.relNow())
	binary.LittleEndian.PutUint64(hdr[16:], uint64(wall))
	binary.LittleEndian.PutUint64(hdr[24:], uint64(origin))
	bw.Write(hdr[:])

	var batch []byte
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		page, chunk := 0, 0
		for {
			var done bool
			var err error
			batch, chunk, done, err = c.snapBatch(cl, page, chunk, origin, batch[:0], &st)
			if err != nil {
				return st, err
			}
			if _, err := bw.Write(batch); err != nil {
				return st, err
			}
			if done {
				break
			}
			if chunk < 0 {
				page, chunk = page+1, 0
			}
		}
	}
	// The counter goes on from where it is, not from the largest saved
	// unique: those of items deleted or replaced before the save were
	// given out too, and a client may still hold one.
	// So does a delayed flush_all still pending: it is to invalidate the
	// items stored after the load too.
	var end [snapRecordSize + 8]byte
	if ol := c.oldestLive.Load(); ol > c.relNow() {
		binary.LittleEndian.PutUint64(end[8:], uint64(origin+int64(ol)))
	}
	binary.LittleEndian.PutUint64(end[16:], c.casID.Load())
	binary.LittleEndian.PutUint64(end[snapRecordSize:], uint64(st.Items))
	bw.Write(end[:])
	if err := bw.Flush(); err != nil {
		return st, err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], cw.h.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return st, err
	}
	st.Bytes = cw.n + 4
	return st, nil
}

// snapBatch appends to buf the records of up to crawlBatch chunks of a
// class's page, starting at chunk, their exptimes as Unix times counted
// from origin (the Unix time of rel time 0). It returns the next chunk
// (-1 when the page is done) and done when the class has no page with
// that index. The
// caller holds moveGate for writing, so the class's pages keep their
// indexes and its items their chunks (pages can only be added).
func (c *Cache) snapBatch(cl *class, page, chunk int, origin int64, buf []byte, st *SnapshotStats) ([]byte, int, bool, error) {
	now := c.relNow()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if c.closed {
		return buf, 0, true, ErrClosed
	}
	if page >= len(cl.pages) {
		return buf, 0, true, nil
	}
	id := cl.pages[page]
	for n := 0; n < crawlBatch; n++ {
		if chunk >= cl.perslab {
			return buf, -1, false, nil
		}
		ref := makeRef(id, chunk*cl.size)
		chunk++
		var err error
		if buf, err = c.snapChunkLocked(cl, ref, now, origin, buf, st); err != nil {
			return buf, 0, true, err
		}
	}
	return buf, chunk, false, nil
}

// snapChunkLocked appends the record of the item in chunk ref, if it holds
// a live one, to buf. The caller holds cl.mu, which snapChunkLocked may
// release and take again; it never passes over an item because its stripe
// is busy.
func (c *Cache) snapChunkLocked(cl *class, ref itemRef, now uint32, origin int64, buf []byte, st *SnapshotStats) ([]byte, error) {
	h := c.hdr(ref)
	for {
		b := h.bits.Load()
		if b&bitLinked == 0 {
			return buf, nil
		}
		s := c.stripeFor(c.hashKey(c.itemKey(ref, b)))
		// The class lock is held, so the stripe lock can only be tried
		// (the lock order is stripe, then class); on contention take both
		// in order. Meanwhile the chunk may have been freed, or even
		// reused by another item: look at it again under both locks.
		if !s.mu.TryLock() {
			cl.mu.Unlock()
			s.mu.Lock()
			cl.mu.Lock()
			if c.closed {
				s.mu.Unlock()
				return buf, ErrClosed
			}
			if nb := h.bits.Load(); nb&bitLinked == 0 || c.stripeFor(c.hashKey(c.itemKey(ref, nb))) != s {
				s.mu.Unlock()
				continue
			}
			b = h.bits.Load()
		}
		if c.isFlushed(h, now) || isExpired(h, now) {
			st.Expired++
		} else {
			buf = c.appendRecord(buf, ref, h, b, now, origin)
			st.Items++
		}
		s.mu.Unlock()
		return buf, nil
	}
}

// appendRecord appends the snapshot record of a linked item to buf, its
// exptime and last access counted from origin (the Unix time of rel time
// 0). A delayed flush_all still pending at now is to invalidate the item
// at its time (memcached's restart keeps oldest_live), so the record
// expires then at the latest. The caller holds the item's stripe lock.
func (c *Cache) appendRecord(buf []byte, ref itemRef, h *itemHeader, b uint32, now uint32, origin int64) []byte {
	rel := h.exptime
	if ol := c.oldestLive.Load(); ol > now && (rel == 0 || ol < rel) {
		rel = ol
	}
	exp := int64(0)
	if rel != 0 {
		exp = origin + int64(rel)
	}
	key := c.itemKey(ref, b)
	var marks uint8
	bits := h.bits.Load()
	for _, m := range snapMarkBits {
		if bits&m.bit != 0 {
			marks |= m.mark
		}
	}
	if c.lruSettings().Segmented {
		// With the flat LRU every item is in COLD: loaded into a
		// segmented cache, the items enter HOT, as stored ones do.
		switch bitsLRU(bits) {
		case lruWarm:
			marks |= snapMarkWarm
		case lruCold:
			marks |= snapMarkCold
		}
	}
	buf = binary.LittleEndian.AppendUint32(buf, h.nbytes)
	buf = binary.LittleEndian.AppendUint32(buf, h.flags)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(exp))
	buf = binary.LittleEndian.AppendUint64(buf, c.getCAS(h))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(origin+int64(h.atime.Load())))
	buf = append(buf, marks, byte(len(key)))
	buf = append(buf, key...)
	if b&bitChained != 0 {
		return c.appendChain(buf, c.chainFirst(ref, b), int(h.nbytes))
	}
	return append(buf, c.itemValue(ref, h, b)...)
}

// crcWriter counts and checksums what it writes.
type crcWriter struct {
	w io.Writer
	h hash.Hash32
	n int64
}

func (cw *crcWriter) Write(p []byte) (int, error) {
	cw.h.Write(p)
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

// snapRecord is one parsed record header.
type snapRecord struct {
	nval    uint32
	flags   uint32
	exptime int64
	cas     uint64
	atime   int64 // last access, Unix seconds (0 in version 1)
	marks   uint8
	nkey    int
}

// parseRecord parses a record header: snapRecordSize bytes, or
// snapRecordSizeV1 (without marks) from a version 1 snapshot.
func parseRecord(b []byte) snapRecord {
	rec := snapRecord{
		nval:    binary.LittleEndian.Uint32(b[0:]),
		flags:   binary.LittleEndian.Uint32(b[4:]),
		exptime: int64(binary.LittleEndian.Uint64(b[8:])),
		cas:     binary.LittleEndian.Uint64(b[16:]),
		nkey:    int(b[len(b)-1]),
	}
	if len(b) == snapRecordSize {
		rec.atime = int64(binary.LittleEndian.Uint64(b[24:]))
		rec.marks = b[32]
	}
	return rec
}

// snapReader reads a snapshot, checksumming what it reads.
type snapReader struct {
	r   *bufio.Reader
	h   hash.Hash32
	err error
}

func (sr *snapReader) read(p []byte) bool {
	if sr.err != nil {
		return false
	}
	if _, err := io.ReadFull(sr.r, p); err != nil {
		sr.err = fmt.Errorf("%w: truncated", ErrBadSnapshot)
		return false
	}
	sr.h.Write(p)
	return true
}

// next reads n bytes into scratch and returns them. scratch grows only as
// the bytes arrive, so a corrupt length costs no more memory than the file
// holds.
func (sr *snapReader) next(n int, scratch []byte) []byte {
	if cap(scratch) >= n {
		scratch = scratch[:n]
		sr.read(scratch)
		return scratch
	}
	scratch = scratch[:0]
	for len(scratch) < n && sr.err == nil {
		step := min(n-len(scratch), max(64<<10, len(scratch)))
		scratch = append(scratch, make([]byte, step)...)
		sr.read(scratch[len(scratch)-step:])
	}
	return scratch
}

// maxSnapValue bounds a record's value length: no cache stores items over
// 1 GiB (the -I limit), so a larger length marks a corrupt file.
const maxSnapValue = 1 << 30

// scanSnapshot reads a whole snapshot from r, calling start (when not
// nil) with the saving cache's process_started (0 from a version 1
// snapshot) before the records and fn (when not nil) for every record, and
// checks its structure, count and checksum. key and value are valid only
// during fn. It returns the end record, which holds the saving cache's CAS
// counter and pending flush time (zeros from a version 1 snapshot).
func scanSnapshot(r io.Reader, start func(started int64), fn func(rec snapRecord, key, value []byte) error) (snapRecord, error) {
	sr := &snapReader{r: bufio.NewReaderSize(r, 64<<10), h: crc32.New(snapTable)}
	var hdr [snapHeaderSize]byte
	if !sr.read(hdr[:snapHeaderSizeV1]) || string(hdr[:8]) != snapMagic {
		return snapRecord{}, fmt.Errorf("%w: not a corvid snapshot", ErrBadSnapshot)
	}
	version := binary.LittleEndian.Uint32(hdr[8:])
	if version != 1 && version != snapVersion {
		return snapRecord{}, fmt.Errorf("%w: version %d, want %d", ErrBadSnapshot, version, snapVersion)
	}
	var started int64
	if version > 1 {
		if !sr.read(hdr[snapHeaderSizeV1:]) {
			return snapRecord{}, sr.err
		}
		started = int64(binary.LittleEndian.Uint64(hdr[snapHeaderSizeV1:]))
		if savedAt := int64(binary.LittleEndian.Uint64(hdr[16:])); started <= 0 || started > savedAt {
			return snapRecord{}, fmt.Errorf("%w: process_started %d, saved at %d", ErrBadSnapshot, started, savedAt)
		}
	}
	if start != nil {
		start(started)
	}
	var rha [snapRecordSize]byte
	rh := rha[:]
	if version == 1 {
		rh = rha[:snapRecordSizeV1]
	}
	var buf []byte
	var count uint64
	var end snapRecord
	for {
		if !sr.read(rh) {
			return snapRecord{}, sr.err
		}
		rec := parseRecord(rh)
		if rec.nkey == 0 {
			if version > 1 {
				end = snapRecord{exptime: rec.exptime, cas: rec.cas}
			}
			if rec != end || end.exptime < 0 {
				return snapRecord{}, fmt.Errorf("%w: bad end record", ErrBadSnapshot)
			}
			break
		}
		if rec.marks&^snapMarksAll != 0 || rec.marks&(snapMarkWarm|snapMarkCold) == snapMarkWarm|snapMarkCold {
			return snapRecord{}, fmt.Errorf("%w: marks %#x", ErrBadSnapshot, rec.marks)
		}
		if rec.atime < started {
			return snapRecord{}, fmt.Errorf("%w: last access %d", ErrBadSnapshot, rec.atime)
		}
		if rec.nval > maxSnapValue {
			return snapRecord{}, fmt.Errorf("%w: value length %d", ErrBadSnapshot, rec.nval)
		}
		buf = sr.next(rec.nkey+int(rec.nval), buf)
		if sr.err != nil {
			return snapRecord{}, sr.err
		}
		count++
		if fn != nil {
			if err := fn(rec, buf[:rec.nkey], buf[rec.nkey:]); err != nil {
				return snapRecord{}, err
			}
		}
	}
	var tail [8]byte
	if !sr.read(tail[:]) {
		return snapRecord{}, sr.err
	}
	if n := binary.LittleEndian.Uint64(tail[:]); n != count {
		return snapRecord{}, fmt.Errorf("%w: %d records, end says %d", ErrBadSnapshot, count, n)
	}
	want := sr.h.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(sr.r, sum[:]); err != nil {
		return snapRecord{}, fmt.Errorf("%w: truncated", ErrBadSnapshot)
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		return snapRecord{}, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadSnapshot, got, want)
	}
	if _, err := sr.r.ReadByte(); err != io.EOF {
		return snapRecord{}, fmt.Errorf("%w: data after the checksum", ErrBadSnapshot)
	}
	return end, nil
}

// CheckSnapshot reads a whole snapshot and reports whether it is intact
// (ErrBadSnapshot when not), without storing anything.
func CheckSnapshot(r io.Reader) error {
	_, err := scanSnapshot(r, nil, nil)
	return err
}

// load stores the records of a snapshot already checked by CheckSnapshot.
// Items that expired since the save are skipped; CAS uniques are kept and
// the cache's CAS counter continues after the saving cache's, so that no
// unique given out before the save is given out again. A delayed
// flush_all pending at the save stays pending, for the items stored after
// the load too. Items keep their last access (one later than now, which a
// clock set back gives, reads as now) and their fetched and active marks,
// and each LRU list then holds its items in last-access order.
func (c *Cache) load(r io.Reader) (SnapshotStats, error) {
	c.loading.Add(1)
	defer c.loading.Add(-1)
	var st SnapshotStats
	var maxCAS uint64
	// The last accesses go back to the saving cache's start, and further
	// back its own load's: an empty cache moves its clock back to hold
	// them (a cache holding items keeps it, and clamps older accesses to
	// its rel time 0, where they stay in the order of the snapshot).
	start := func(started int64) {
		if started != 0 && c.items.Load() == 0 && c.oldestLive.Load() == 0 {
			c.moveClockBack(started)
		}
	}
	end, err := scanSnapshot(r, start, func(rec snapRecord, key, value []byte) error {
		now := c.relNow()
		exp := uint32(0)
		if rec.exptime != 0 {
			exp = c.relFromUnix(rec.exptime)
			if exp <= now {
				st.Expired++
				return nil
			}
		}
		atime := now
		if rec.atime != 0 {
			atime = min(c.relFromUnix(rec.atime), now)
		}
		switch err := c.restore(key, rec.flags, exp, rec.cas, rec.marks, atime, value, now); {
		case err == nil:
			st.Items++
			maxCAS = max(maxCAS, rec.cas)
		case errors.Is(err, ErrClosed):
			return err
		default:
			st.Skipped++
		}
		return nil
	})
	maxCAS = max(maxCAS, end.cas)
	for {
		cur := c.casID.Load()
		if cur >= maxCAS || c.casID.CompareAndSwap(cur, maxCAS) {
			break
		}
	}
	if err == nil {
		c.relinkByAccess()
	}
	// The pending flush: a fresh cache has none of its own.
	if err == nil && end.exptime != 0 && c.oldestLive.Load() == 0 {
		if ol := c.relFromUnix(end.exptime); ol > c.relNow() {
			c.oldestLive.Store(ol)
		}
	}
	return st, err
}

// restore stores an item from a snapshot with its CAS unique, rel exptime,
// marks and rel last access (at most now), replacing any item under the
// same key.
func (c *Cache) restore(key []byte, flags uint32, exp uint32, cas uint64, marks uint8, atime uint32, value []byte, now uint32) error {
	if len(key) > KeyMaxLength {
		return ErrKeyTooLong
	}
	if !c.fits(len(key), len(value), flags) {
		return ErrTooLarge
	}
	ref, h, err := c.newItem(key, value, flags, exp, now)
	if err != nil {
		return err
	}
	for _, m := range snapMarkBits {
		if marks&m.mark != 0 {
			h.bits.Or(m.bit)
		}
	}
	hv := c.hashKey(key)
	s := c.lockStripe(hv)
	if s == nil {
		return ErrClosed
	}
	defer s.mu.Unlock()
	old, oh := c.findLocked(s, key, hv, now)
	c.replaceLocked(s, old, oh, ref, h, hv, now)
	if c.useCAS {
		h.cas = cas
	}
	h.atime.Store(atime)
	if lru := restoredLRU(marks); lru != lruHot && c.lruSettings().Segmented {
		cl := &c.classes[bitsClass(h.bits.Load())]
		cl.mu.Lock()
		if b := h.bits.Load(); b&bitLinked != 0 && bitsLRU(b) == lruHot {
			c.lruUnlinkLocked(cl, ref, h)
			c.lruLinkLocked(cl, lru, ref, h)
		}
		cl.mu.Unlock()
	}
	return nil
}

// restoredLRU returns the list the marks of a record name, HOT when they
// name none.
func restoredLRU(marks uint8) int {
	switch {
	case marks&snapMarkWarm != 0:
		return lruWarm
	case marks&snapMarkCold != 0:
		return lruCold
	}
	return lruHot
}

// relinkByAccess orders every LRU list of every class by last access,
// most recent at the head, as the lists were in the saving cache: load
// links each item at the head of its list as it comes, in the order of
// the snapshot (slab pages), not of use. Items accessed in the same second
// keep the order of the snapshot. It costs 16 bytes per item of the longest list (its
// refs and their sort keys), for the time of the sort; values are not
// touched. The maintainer and the crawler wait for each class meanwhile.
func (c *Cache) relinkByAccess() {
	var refs []itemRef
	var keys []uint64
	for i := 1; i < len(c.classes); i++ {
		cl := &c.classes[i]
		cl.mu.Lock()
		if c.closed {
			cl.mu.Unlock()
			return
		}
		for lru := range cl.lru {
			l := &cl.lru[lru]
			if l.n < 2 || l.n > math.MaxUint32 {
				continue
			}
			// From the tail, so that an index is a tie's rank.
			refs, keys = slices.Grow(refs[:0], int(l.n)), slices.Grow(keys[:0], int(l.n))
			for r := l.tail; r != 0; r = c.prev(c.hdr(r)) {
				keys = append(keys, uint64(c.hdr(r).atime.Load())<<32|uint64(len(refs)))
				refs = append(refs, r)
			}
			slices.Sort(keys)
			*l = lruList{}
			for _, k := range keys {
				r := refs[uint32(k)]
				c.lruLinkLocked(cl, lru, r, c.hdr(r))
			}
		}
		cl.mu.Unlock()
	}
}

// SaveFile writes a snapshot to path atomically and durably: to a
// temporary file in the same directory (path + ".tmp" and digits),
// fsynced, then renamed over path, and the directory fsynced. A crash
// mid-save leaves path as it was (with LoadFile's removal, absent) and a
// temporary file that LoadFile deletes; when SaveFile returns nil the
// snapshot survives a crash.
func (c *Cache) SaveFile(path string) (SnapshotStats, error) {
	var st SnapshotStats
	opt := atomicfile.Options{Mode: 0o600, Durable: true, Temp: filepath.Base(path) + ".tmp*"} // the names removeTemps removes
	err := atomicfile.Write(path, opt, func(w io.Writer) error {
		var err error
		st, err = c.Save(w)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("cannot save snapshot: %w", err)
	}
	return st, nil
}

// ErrSnapshotKept reports a snapshot that LoadFile did not load because it
// could not remove it from its directory: loading it would let a crash
// bring its items back, even those deleted or changed since.
var ErrSnapshotKept = errors.New("storage: snapshot cannot be removed")

// ErrSnapshotClock reports a snapshot saved at a time the wall clock has
// not reached: the clock went back while the server was down, and the
// saved exptimes, Unix times, would keep items past their time.
var ErrSnapshotClock = errors.New("storage: snapshot saved later than the clock reads: the clock went back")

// removeFile is os.Remove; tests replace it to make removal fail.
var removeFile = os.Remove

// LoadFile loads the snapshot at path into the cache, and consumes it: a
// snapshot is loaded at most once, so that a crash after a warm start
// starts cold instead of bringing back items deleted or changed since.
//
// Temporary files left by a SaveFile that a crash interrupted are removed
// first; they are never loaded. A missing file gives an error wrapping
// os.ErrNotExist, a file that is not a snapshot one wrapping
// ErrBadSnapshot, and both are left alone. A snapshot is then removed
// from its directory and the removal made durable (fsync) before it is
// read; when that fails, nothing is loaded and the error wraps
// ErrSnapshotKept. The whole file is checked before anything is stored:
// a truncated or corrupted one gives an error wrapping ErrBadSnapshot, and
// one saved later than the wall clock now reads (it went back since, as
// memcached's restart refuses) one wrapping ErrSnapshotClock; both leave
// the cache as it was.
func (c *Cache) LoadFile(path string) (SnapshotStats, error) {
	removeTemps(path)
	f, err := os.Open(path)
	if err != nil {
		return SnapshotStats{}, err
	}
	defer f.Close()
	var magic [len(snapMagic)]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != snapMagic {
		return SnapshotStats{}, fmt.Errorf("snapshot %s: %w: not a corvid snapshot", path, ErrBadSnapshot)
	}
	if err := removeFile(path); err != nil {
		return SnapshotStats{}, fmt.Errorf("%w: %w", ErrSnapshotKept, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return SnapshotStats{}, fmt.Errorf("%w: removed %s, but %w", ErrSnapshotKept, path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return SnapshotStats{}, err
	}
	if err := CheckSnapshot(f); err != nil {
		return SnapshotStats{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	var saved [8]byte
	if _, err := f.ReadAt(saved[:], 16); err != nil {
		return SnapshotStats{}, err
	}
	if at, now := int64(binary.LittleEndian.Uint64(saved[:])), c.clock.Now().Unix(); at > now {
		return SnapshotStats{}, fmt.Errorf("snapshot %s: %w (saved at %d, now %d)", path, ErrSnapshotClock, at, now)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return SnapshotStats{}, err
	}
	st, err := c.load(f)
	if fi, serr := f.Stat(); serr == nil {
		st.Bytes = fi.Size()
	}
	if err != nil {
		return st, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return st, nil
}

// removeTemps removes the temporary files SaveFile creates for path
// (path + ".tmp" and digits), which only a crash leaves behind.
func removeTemps(path string) {
	dir, prefix := filepath.Dir(path), filepath.Base(path)+".tmp"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && name != "" && strings.Trim(name, "0123456789") == "" && e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

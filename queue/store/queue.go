package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/corvidcache/corvid/internal/atomicfile"
)

// Item is one queued value.
type Item struct {
	Data   []byte
	Flags  uint32
	Added  time.Time // set by Put when zero
	Expiry time.Time // zero: never
}

// Stats are a queue's counters, under the names Kestrel's stats use.
type Stats struct {
	Items            int           // queued items (open ones not counted)
	Bytes            int64         // bytes of queued item data
	TotalItems       uint64        // items put since Open
	LogSize          int64         // bytes in the journal file
	ExpiredItems     uint64        // items dropped by expiry or MaxAge since Open
	MemItems         int           // queued items held in memory
	MemBytes         int64         // their bytes
	Age              time.Duration // time since the head item was put
	Discarded        uint64        // items dropped by DiscardOldWhenFull since Open
	OpenTransactions int
}

// Queue is one durable FIFO queue: items in memory (up to MaxMemorySize)
// and every change in an append-only journal. It is safe for concurrent
// use.
type Queue struct {
	name string
	path string
	log  *slog.Logger

	wake chan struct{} // pokes the background writer
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	syncMu   sync.Mutex // guards synced, syncing
	syncDone sync.Cond  // signalled (on syncMu) when an fsync ends
	synced   uint64     // journal bytes (lsn) known to be on disk
	syncing  bool       // a caller of syncTo is fsyncing
	fsyncs   uint64     // fsyncs by syncTo

	mu         sync.Mutex // guards the fields below
	cfg        Config
	closed     bool
	f          *os.File
	gen        uint64 // bumped when compaction replaces f
	size       int64  // bytes in f, pending included
	pending    []byte // records not yet written to f are pending[pendStart:]
	pendStart  int
	pendLSN    uint64 // lsn of pending[pendStart]
	armed      bool   // the background writer was poked and will write pending
	lsn        uint64 // bytes appended to the journal over its life, across files
	durableLSN uint64 // lsn made durable by the last compaction
	buf        []byte // record encoding scratch
	rbuf       []byte // read-behind scratch

	mem      deque // the head of the queue, in memory
	memBytes int64
	rb       readBehind // the tail of the queue, only in the journal
	open     map[uint64]entry
	nextXid  uint64
	nextSeq  uint64

	totalItems uint64
	expired    uint64
	discarded  uint64
}

// maxScratch is the most a queue's scratch buffers keep between uses: a
// large item that passed does not leave its size held by every queue.
const maxScratch = 64 << 10

func keepScratch(b []byte) []byte {
	if cap(b) > maxScratch {
		return nil
	}
	return b
}

// readBehind is the part of the queue past MaxMemorySize: its items are
// the add records from off onwards in the journal. While it is active every
// new item joins it, so those records are exactly its items, in order.
type readBehind struct {
	active bool
	off    int64  // file offset of the next record to scan
	seq    uint64 // seq of the next item it holds
	items  int
	bytes  int64
}

// Open opens (creating if needed) the queue name's journal in dir and
// replays it. A torn or corrupt tail is truncated and logged. Items that
// were open when the journal was last written go back to the head, in the
// order they were put. A nil log discards.
func Open(dir, name string, cfg Config, log *slog.Logger) (*Queue, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("cannot open queue %q: %w", name, ErrBadName)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := atomicfile.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot open queue %q: %w", name, err)
	}
	q := &Queue{
		name: name,
		path: filepath.Join(dir, name+".journal"),
		log:  log,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		cfg:  cfg,
		open: make(map[uint64]entry),
	}
	q.syncDone.L = &q.syncMu
	os.Remove(q.path + ".compact") // a compaction that did not finish
	f, err := os.OpenFile(q.path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		// A new journal: its directory entry is made durable before any
		// item is written to it, or a power cut could lose the file
		// with every item fsynced into it.
		f, err = os.OpenFile(q.path, os.O_RDWR|os.O_CREATE, 0o644)
		if err == nil {
			if err = atomicfile.SyncDir(dir); err != nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open queue %q: %w", name, err)
	}
	q.f = f
	if err := q.replay(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open queue %q: %w", name, err)
	}
	q.synced = q.lsn
	q.wg.Add(1)
	go q.syncLoop()
	return q, nil
}

// replay rebuilds the queue from the journal, truncates what cannot be
// replayed, and aborts the transactions left open.
func (q *Queue) replay() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	fi, err := q.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	r := bufio.NewReaderSize(io.NewSectionReader(q.f, 0, size), 64<<10)
	var h [headerSize]byte
	var p []byte
	var off int64
	var bad error
	for off < size {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			bad = errCorrupt
			break
		}
		n, err := checkHeader(h[:], size-off)
		if err != nil {
			bad = err
			break
		}
		if cap(p) < n {
			p = make([]byte, n)
		}
		p = p[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			bad = errCorrupt
			break
		}
		rec, err := decodeRecord(h[:], p)
		if err == nil {
			// size is where read-behind may read up to.
			q.size = off
			err = q.applyLocked(rec, off)
		}
		if err != nil {
			bad = err
			break
		}
		off += int64(headerSize + n)
		if rec.op == opOpen || rec.op == opAbort || rec.op == opConfirm {
			q.nextXid = max(q.nextXid, rec.xid)
		}
	}
	q.size = off
	q.lsn = uint64(off)
	if bad != nil {
		if !errors.Is(bad, errCorrupt) {
			return bad
		}
		q.log.Warn("queue journal: truncating a torn or corrupt tail",
			"queue", q.name, "file", q.path, "offset", off, "dropped_bytes", size-off)
		if err := q.f.Truncate(off); err != nil {
			return err
		}
		if err := q.f.Sync(); err != nil {
			return err
		}
	}
	q.nextXid++
	// Items left open go back to the head in put order: abort the newest
	// first.
	open := make([]uint64, 0, len(q.open))
	for xid := range q.open {
		open = append(open, xid)
	}
	slices.SortFunc(open, func(a, b uint64) int {
		return -cmpUint(q.open[a].seq, q.open[b].seq)
	})
	for _, xid := range open {
		if _, err := q.appendLocked(appendXid(q.buf, opAbort, xid)); err != nil {
			return err
		}
		if err := q.applyLocked(record{op: opAbort, xid: xid}, 0); err != nil {
			return err
		}
	}
	if len(open) > 0 {
		if err := q.flushLocked(); err != nil {
			return err
		}
		return q.f.Sync()
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// applyLocked changes the in-memory queue as rec says; off is the record's
// offset (used by add). It checks before it changes anything, so a record
// that does not fit the state leaves it as it was.
func (q *Queue) applyLocked(rec record, off int64) error {
	switch rec.op {
	case opAdd:
		it := rec.item
		it.Data = slices.Clone(it.Data)
		q.addLocked(it, off, noLSN)
	case opRemove:
		if _, ok, err := q.popLocked(); err != nil {
			return err
		} else if !ok {
			return errCorrupt
		}
	case opOpen:
		if _, dup := q.open[rec.xid]; dup {
			return errCorrupt
		}
		e, ok, err := q.popLocked()
		if err != nil {
			return err
		} else if !ok {
			return errCorrupt
		}
		e.lsn = noLSN // its open and abort records refer to it
		q.open[rec.xid] = e
	case opConfirm:
		if _, ok := q.open[rec.xid]; !ok {
			return errCorrupt
		}
		delete(q.open, rec.xid)
	case opAbort:
		e, ok := q.open[rec.xid]
		if !ok {
			return errCorrupt
		}
		delete(q.open, rec.xid)
		q.mem.pushFront(e)
		q.memBytes += int64(len(e.it.Data))
	case opFlush:
		q.mem.clear()
		q.memBytes = 0
		q.rb = readBehind{}
	default:
		return errCorrupt
	}
	return nil
}

// addLocked puts it at the tail: in memory, or only in the journal (whose
// add record is at off and lsn) when memory is full or read-behind is
// active.
func (q *Queue) addLocked(it Item, off int64, lsn uint64) {
	seq := q.nextSeq
	q.nextSeq++
	n := int64(len(it.Data))
	if !q.rb.active && q.mem.len() > 0 && q.memBytes+n > q.cfg.maxMemory() {
		q.rb = readBehind{active: true, off: off, seq: seq}
	}
	if q.rb.active {
		q.rb.items++
		q.rb.bytes += n
		return
	}
	q.mem.pushBack(entry{it: it, seq: seq, lsn: lsn})
	q.memBytes += n
}

// fillLocked reads items back from the journal while memory has room.
func (q *Queue) fillLocked() error {
	if q.rb.active {
		if err := q.flushLocked(); err != nil {
			return err
		}
	}
	for q.rb.active && (q.mem.len() == 0 || q.memBytes < q.cfg.maxMemory()) {
		rec, buf, n, err := readRecordAt(q.f, q.rb.off, q.size, q.rbuf)
		q.rbuf = keepScratch(buf)
		if err != nil {
			return fmt.Errorf("cannot read queue %q back from its journal: %w", q.name, err)
		}
		q.rb.off += n
		if rec.op != opAdd {
			continue
		}
		it := rec.item
		it.Data = slices.Clone(it.Data)
		q.mem.pushBack(entry{it: it, seq: q.rb.seq, lsn: noLSN})
		q.memBytes += int64(len(it.Data))
		q.rb.seq++
		q.rb.items--
		q.rb.bytes -= int64(len(it.Data))
		if q.rb.items == 0 {
			q.rb = readBehind{}
		}
	}
	return nil
}

// headLocked returns the head, reading it back from the journal if needed.
func (q *Queue) headLocked() (*entry, bool, error) {
	if q.mem.len() == 0 {
		if err := q.fillLocked(); err != nil {
			return nil, false, err
		}
		if q.mem.len() == 0 {
			return nil, false, nil
		}
	}
	return q.mem.front(), true, nil
}

// popLocked removes the head.
func (q *Queue) popLocked() (entry, bool, error) {
	if _, ok, err := q.headLocked(); !ok {
		return entry{}, false, err
	}
	e := q.mem.popFront()
	q.memBytes -= int64(len(e.it.Data))
	return e, true, q.fillLocked()
}

func (q *Queue) itemsLocked() int { return q.mem.len() + q.rb.items }

func (q *Queue) bytesLocked() int64 { return q.memBytes + q.rb.bytes }

// appendLocked adds one encoded record to the journal and returns the lsn
// after it. With SyncAlways it is written at once; otherwise it joins the
// pending records, which the background writer writes within writeDelay
// (or at once, past maxPending). A record that cannot be written is
// refused and cut back, so the journal never holds a record whose change
// was refused.
func (q *Queue) appendLocked(rec []byte) (uint64, error) {
	q.buf = keepScratch(rec)
	if q.closed {
		return 0, ErrClosed
	}
	if n := len(q.pending) - q.pendStart; q.cfg.Sync.Mode != SyncAlways && n+len(rec) <= maxPending {
		if n == 0 {
			q.pendLSN = q.lsn
		}
		if !q.armed {
			q.armed = true
			q.poke()
		}
		q.pending = append(q.pending, rec...)
	} else {
		if err := q.flushLocked(); err != nil {
			return 0, err
		}
		if _, err := q.f.WriteAt(rec, q.size); err != nil {
			q.f.Truncate(q.size)
			return 0, fmt.Errorf("cannot write the journal of queue %q: %w", q.name, err)
		}
		if q.cfg.Sync.Mode == SyncInterval {
			q.poke()
		}
	}
	q.size += int64(len(rec))
	q.lsn += uint64(len(rec))
	return q.lsn, nil
}

// flushLocked writes the pending records.
func (q *Queue) flushLocked() error {
	p := q.pending[q.pendStart:]
	if len(p) == 0 {
		return nil
	}
	off := q.size - int64(len(p))
	if _, err := q.f.WriteAt(p, off); err != nil {
		q.f.Truncate(off)
		return fmt.Errorf("cannot write the journal of queue %q: %w", q.name, err)
	}
	q.dropPendingLocked()
	return nil
}

func (q *Queue) dropPendingLocked() {
	q.pending, q.pendStart = q.pending[:0], 0
}

// removeRecordLocked journals the removal of the head e. When e's add
// record is the first pending one, nothing refers to the item but that
// record (an item that was ever open is not elided), so the record is cut
// instead: an item taken within writeDelay of its put never reaches the
// disk.
func (q *Queue) removeRecordLocked(e *entry) (uint64, error) {
	p := q.pending[q.pendStart:]
	if e.lsn != q.pendLSN || len(p) == 0 || q.rb.active {
		return q.appendLocked(appendOp(q.buf, opRemove))
	}
	n := headerSize + int(binary.LittleEndian.Uint32(p[0:4]))
	q.pendStart += n
	q.pendLSN += uint64(n)
	q.size -= int64(n)
	if q.pendStart == len(q.pending) {
		q.dropPendingLocked()
	}
	return q.lsn, nil
}

// removeHeadLocked journals and applies the removal of the head, which
// must be there.
func (q *Queue) removeHeadLocked() (entry, error) {
	if _, err := q.removeRecordLocked(q.mem.front()); err != nil {
		return entry{}, err
	}
	e, _, err := q.popLocked()
	return e, err
}

func (q *Queue) expiredLocked(e *entry, now time.Time) bool {
	if !e.it.Expiry.IsZero() && !now.Before(e.it.Expiry) {
		return true
	}
	return q.cfg.MaxAge > 0 && now.Sub(e.it.Added) >= q.cfg.MaxAge
}

// SetConfig changes the queue's limits and policy; items already queued
// stay even if they no longer fit.
func (q *Queue) SetConfig(cfg Config) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cfg = cfg
	if !q.closed {
		if err := q.fillLocked(); err != nil {
			q.log.Error("queue journal: read-behind failed", "queue", q.name, "err", err)
		}
	}
}

// Put appends it at the tail. It returns ErrTooLarge, or ErrFull when the
// queue is full and DiscardOldWhenFull is off (when on, the oldest items
// are dropped and counted as discarded). With SyncAlways it returns once
// the item is on disk; the queue's lock is not held while it waits.
func (q *Queue) Put(it Item) error {
	n := int64(len(it.Data))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	cfg := &q.cfg
	if cfg.MaxItemSize > 0 && n > cfg.MaxItemSize {
		q.mu.Unlock()
		return ErrTooLarge
	}
	for (cfg.MaxItems > 0 && q.itemsLocked() >= cfg.MaxItems) ||
		(cfg.MaxSize > 0 && q.bytesLocked()+n > cfg.MaxSize) {
		if !cfg.DiscardOldWhenFull || q.itemsLocked() == 0 {
			q.mu.Unlock()
			return ErrFull
		}
		if _, err := q.removeHeadLocked(); err != nil {
			q.mu.Unlock()
			return err
		}
		q.discarded++
	}
	if it.Added.IsZero() {
		it.Added = time.Now()
	}
	off, start := q.size, q.lsn
	lsn, err := q.appendLocked(appendAdd(q.buf, &it))
	if err != nil {
		q.mu.Unlock()
		return err
	}
	it.Data = slices.Clone(it.Data)
	q.addLocked(it, off, start)
	q.totalItems++
	q.maybeCompactLocked()
	mode := cfg.Sync.Mode
	q.mu.Unlock()
	return q.commit(lsn, mode)
}

// Take removes the head item, skipping (and dropping) expired ones. With
// open, the item is held in a transaction until Confirm or Abort with the
// returned xid. ok is false when the queue is empty.
func (q *Queue) Take(now time.Time, open bool) (it Item, xid uint64, ok bool, err error) {
	q.mu.Lock()
	expired, e, ok, err := q.liveHeadWaitLocked(now)
	var lsn uint64
	if ok && err == nil {
		if open {
			xid = q.nextXid
			lsn, err = q.appendLocked(appendXid(q.buf, opOpen, xid))
			if err == nil {
				q.nextXid++
				err = q.applyLocked(record{op: opOpen, xid: xid}, 0)
			}
		} else {
			lsn, err = q.removeRecordLocked(q.mem.front())
			if err == nil {
				_, _, err = q.popLocked()
			}
		}
		if err == nil {
			q.maybeCompactLocked()
		}
	}
	mode := q.cfg.Sync.Mode
	fn := q.cfg.Expired
	q.mu.Unlock()
	q.expire(fn, expired)
	if err != nil || !ok {
		return Item{}, 0, false, err
	}
	if !open {
		err = q.commit(lsn, mode)
	}
	return e.it, xid, true, err
}

// expireBatch is how many bytes of expired items liveHeadLocked hands
// over at most at once: a long run of them is not all held in memory.
const expireBatch = 1 << 20

// liveHeadLocked drops expired items from the head and returns the head
// that is left. The items dropped are returned for the Expired hook (none
// when it is unset), up to about expireBatch bytes of them: more reports
// that it stopped there, with expired items possibly left at the head.
func (q *Queue) liveHeadLocked(now time.Time) (expired []Item, head entry, ok, more bool, err error) {
	var n int64
	for {
		h, ok, err := q.headLocked()
		if err != nil || !ok {
			return expired, entry{}, false, false, err
		}
		if !q.expiredLocked(h, now) {
			return expired, *h, true, false, nil
		}
		if n >= expireBatch {
			return expired, entry{}, false, true, nil
		}
		e, err := q.removeHeadLocked()
		if err != nil {
			return expired, entry{}, false, false, err
		}
		q.expired++
		if q.cfg.Expired != nil {
			expired = append(expired, e.it)
			n += int64(len(e.it.Data))
		}
	}
}

// liveHeadWaitLocked is liveHeadLocked that hands each batch of expired
// items to the hook, without the lock, until it finds the live head; it
// returns the last batch. The queue's lock must be held, and is on return.
func (q *Queue) liveHeadWaitLocked(now time.Time) ([]Item, entry, bool, error) {
	for {
		if q.closed {
			return nil, entry{}, false, ErrClosed
		}
		expired, e, ok, more, err := q.liveHeadLocked(now)
		if !more {
			return expired, e, ok, err
		}
		q.maybeCompactLocked()
		fn := q.cfg.Expired
		q.mu.Unlock()
		q.expire(fn, expired)
		q.mu.Lock()
	}
}

func (q *Queue) expire(fn func(Item), items []Item) {
	if fn == nil {
		return
	}
	for _, it := range items {
		fn(it)
	}
}

// Peek returns the head item without removing it, dropping expired items
// on the way.
func (q *Queue) Peek(now time.Time) (Item, bool, error) {
	q.mu.Lock()
	dropped := q.expired
	expired, e, ok, err := q.liveHeadWaitLocked(now)
	if q.expired != dropped {
		q.maybeCompactLocked()
	}
	fn := q.cfg.Expired
	q.mu.Unlock()
	q.expire(fn, expired)
	return e.it, ok, err
}

// Confirm ends transaction xid: its item is gone for good. With SyncAlways
// it returns once that is on disk.
func (q *Queue) Confirm(xid uint64) error {
	return q.endTransaction(xid, opConfirm)
}

// Abort ends transaction xid by putting its item back at the head.
func (q *Queue) Abort(xid uint64) error {
	return q.endTransaction(xid, opAbort)
}

func (q *Queue) endTransaction(xid uint64, op byte) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if _, ok := q.open[xid]; !ok {
		q.mu.Unlock()
		return ErrNoTransaction
	}
	lsn, err := q.appendLocked(appendXid(q.buf, op, xid))
	if err == nil {
		err = q.applyLocked(record{op: op, xid: xid}, 0)
		q.maybeCompactLocked()
	}
	mode := q.cfg.Sync.Mode
	q.mu.Unlock()
	if err != nil {
		return err
	}
	if op == opAbort {
		return nil
	}
	return q.commit(lsn, mode)
}

// Flush drops every queued item; open transactions stay open.
func (q *Queue) Flush() error {
	q.mu.Lock()
	lsn, err := q.appendLocked(appendOp(q.buf, opFlush))
	if err == nil {
		err = q.applyLocked(record{op: opFlush}, 0)
		q.maybeCompactLocked()
		lsn = q.lsn
	}
	mode := q.cfg.Sync.Mode
	q.mu.Unlock()
	if err != nil {
		return err
	}
	return q.commit(lsn, mode)
}

// Len returns the number of queued items (open ones not counted).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.itemsLocked()
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{
		Items:            q.itemsLocked(),
		Bytes:            q.bytesLocked(),
		TotalItems:       q.totalItems,
		LogSize:          q.size,
		ExpiredItems:     q.expired,
		MemItems:         q.mem.len(),
		MemBytes:         q.memBytes,
		Discarded:        q.discarded,
		OpenTransactions: len(q.open),
	}
	if q.mem.len() > 0 {
		s.Age = time.Since(q.mem.front().it.Added)
	}
	return s
}

// Close syncs and closes the journal and stops the queue's goroutine. Open
// transactions are aborted by the next Open.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.done)
	q.wg.Wait()
	// Wait for an fsync in progress, and keep others from starting.
	q.syncMu.Lock()
	for q.syncing {
		q.syncDone.Wait()
	}
	q.syncing = true
	q.syncMu.Unlock()
	q.mu.Lock()
	err := q.flushLocked()
	end := q.lsn
	q.mu.Unlock()
	err = errors.Join(err, q.f.Sync(), q.f.Close())
	// Callers still waiting in syncTo learn what Close synced.
	q.syncMu.Lock()
	q.syncing = false
	if err == nil {
		q.synced = max(q.synced, end)
	}
	q.syncDone.Broadcast()
	q.syncMu.Unlock()
	return err
}

// Delete closes the queue and removes its journal.
func (q *Queue) Delete() error {
	err := q.Close()
	if rerr := os.Remove(q.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

package store

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/corvidcache/corvid/internal/atomicfile"
)

// maybeCompactLocked starts a new journal when the queue has drained to
// empty and the file passed resetMin (or a quarter of MaxJournalSize, if
// smaller), or
// when the file passed MaxJournalSize and is more than twice what the
// queue's state takes to write. A failed compaction is logged and leaves
// the old journal in use.
func (q *Queue) maybeCompactLocked() {
	limit := q.cfg.maxJournal()
	var err error
	switch {
	case q.itemsLocked() == 0 && len(q.open) == 0 && q.size >= min(resetMin, limit/4):
		err = q.resetLocked()
	case q.itemsLocked() == 0 && q.size >= min(resetMin, limit/4),
		q.size > limit && q.size > 2*q.stateSizeLocked():
		err = q.rewriteLocked()
	default:
		return
	}
	if err != nil {
		q.log.Error("queue journal: compaction failed", "queue", q.name, "err", err)
	}
}

// resetLocked empties the journal of a queue that holds nothing, open
// transactions included: the empty file is that state, so it is cut in
// place, and synced unless the policy is SyncNever (so no old record can
// reappear after the new ones).
func (q *Queue) resetLocked() error {
	if err := q.f.Truncate(0); err != nil {
		return err
	}
	q.dropPendingLocked()
	q.size = 0
	if q.cfg.Sync.Mode != SyncNever {
		if err := q.f.Sync(); err != nil {
			return err
		}
		q.durableLSN = q.lsn
	}
	return nil
}

// stateSizeLocked is about how many bytes rewriteLocked writes.
func (q *Queue) stateSizeLocked() int64 {
	n := q.bytesLocked() + int64(q.itemsLocked()+len(q.open))*(headerSize+addFixed)
	for _, e := range q.open {
		n += int64(len(e.it.Data)) + headerSize + 9
	}
	return n
}

// rewriteLocked writes the queue's state to a new file (the open items and
// the queued items in memory in put order, the records that bring them to
// the queue's order and open the open ones, then the read-behind items
// copied from the old journal), fsyncs it, renames it over the journal and
// fsyncs the directory.
func (q *Queue) rewriteLocked() (err error) {
	if q.rb.active {
		// The read-behind items are copied from the file.
		if err := q.flushLocked(); err != nil {
			return err
		}
	}
	tmp := q.path + ".compact"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			nf.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(nf, 64<<10)
	var off int64
	scratch := q.buf
	write := func(rec []byte) error {
		off += int64(len(rec))
		_, err := w.Write(rec)
		return err
	}
	open := make([]uint64, 0, len(q.open))
	for xid := range q.open {
		open = append(open, xid)
	}
	slices.SortFunc(open, func(a, b uint64) int { return cmpUint(q.open[a].seq, q.open[b].seq) })
	// Replay numbers the items in the order of their add records, and
	// puts open items back in that order: the adds are written in put
	// order. The queue's order (the open items, then the queued ones)
	// differs from it where items were put back at the head: that first
	// part of it is rebuilt by taking those items open and putting them
	// back, last first.
	order := make([]*entry, 0, len(open)+q.mem.len())
	for _, xid := range open {
		e := q.open[xid]
		order = append(order, &e)
	}
	for i := 0; i < q.mem.len(); i++ {
		order = append(order, q.mem.at(i))
	}
	byPut := slices.Clone(order)
	slices.SortFunc(byPut, func(a, b *entry) int { return cmpUint(a.seq, b.seq) })
	moved := len(order)
	for moved > 0 && byPut[moved-1] == order[moved-1] {
		moved--
	}
	for _, e := range byPut {
		scratch = appendAdd(scratch, &e.it)
		if err := write(scratch); err != nil {
			return err
		}
	}
	if moved > 0 {
		xidOf := make(map[*entry]uint64, moved)
		for i, e := range byPut[:moved] {
			xidOf[e] = q.nextXid + uint64(i)
			scratch = appendXid(scratch, opOpen, xidOf[e])
			if err := write(scratch); err != nil {
				return err
			}
		}
		for i := moved - 1; i >= 0; i-- {
			scratch = appendXid(scratch, opAbort, xidOf[order[i]])
			if err := write(scratch); err != nil {
				return err
			}
		}
	}
	for _, xid := range open {
		scratch = appendXid(scratch, opOpen, xid)
		if err := write(scratch); err != nil {
			return err
		}
	}
	rb := q.rb
	if rb.active {
		rb.off = off
		for src, left := q.rb.off, q.rb.items; left > 0; {
			rec, buf, n, err := readRecordAt(q.f, src, q.size, q.rbuf)
			q.rbuf = keepScratch(buf)
			if err != nil {
				return fmt.Errorf("cannot copy read-behind items: %w", err)
			}
			if rec.op == opAdd {
				if err := write(buf[:n]); err != nil {
					return err
				}
				left--
			}
			src += n
		}
	}
	q.buf = keepScratch(scratch)
	if err := w.Flush(); err != nil {
		return err
	}
	if err := nf.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, q.path); err != nil {
		return err
	}
	// From here the new file is the journal: switch to it even if the
	// directory sync fails.
	old := q.f
	q.f, q.size, q.rb = nf, off, rb
	q.dropPendingLocked() // what they recorded is in the new file's state
	q.gen++
	q.lsn += uint64(off) // the lsn keeps growing across files
	q.durableLSN = q.lsn
	q.nextXid += uint64(moved)
	old.Close()
	return atomicfile.SyncDir(filepath.Dir(q.path))
}

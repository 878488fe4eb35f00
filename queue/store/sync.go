package store

import "time"

const (
	// writeDelay is how long records may wait in memory, with SyncNever and
	// SyncInterval, before the background writer writes them: a busy
	// queue then writes once per writeDelay instead of once per record.
	writeDelay = time.Millisecond
	// maxPending is how many bytes of records may wait.
	maxPending = 64 << 10
)

// commit makes the journal durable up to lsn as the sync mode asks.
func (q *Queue) commit(lsn uint64, mode SyncMode) error {
	if mode == SyncAlways {
		return q.syncTo(lsn)
	}
	return nil
}

// poke tells the background writer there is something to write.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// syncTo returns once the journal is on disk up to lsn. It is the group
// commit: one caller at a time (the leader) fsyncs everything written so
// far; the callers that wrote meanwhile wait for it, and those it covered
// return when it is done, while the first of the others leads the next
// fsync. The queue's lock is held only to write pending records and read
// which file and how far.
func (q *Queue) syncTo(lsn uint64) error {
	q.syncMu.Lock()
	for q.synced < lsn && q.syncing {
		q.syncDone.Wait()
	}
	if q.synced >= lsn {
		q.syncMu.Unlock()
		return nil
	}
	q.syncing = true
	q.syncMu.Unlock()

	end, err := q.syncOnce()

	q.syncMu.Lock()
	q.syncing = false
	q.fsyncs++
	if err == nil {
		q.synced = max(q.synced, end)
	}
	q.syncDone.Broadcast()
	q.syncMu.Unlock()
	return err
}

// syncOnce writes the pending records and fsyncs the journal; it returns
// the lsn that is then on disk. Only the leader calls it.
func (q *Queue) syncOnce() (uint64, error) {
	q.mu.Lock()
	err := q.flushLocked()
	f, gen, end, durable, closed := q.f, q.gen, q.lsn, q.durableLSN, q.closed
	q.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if durable >= end {
		return durable, nil
	}
	if closed {
		return 0, ErrClosed
	}
	if err := f.Sync(); err != nil {
		q.mu.Lock()
		replaced := q.gen != gen && q.durableLSN >= end
		q.mu.Unlock()
		if !replaced {
			return 0, err
		}
		// A compaction replaced (and closed) f, and wrote everything up to
		// end to the new file and synced it.
	}
	return end, nil
}

// syncLoop is the background writer: idle until poked, it writes pending
// records writeDelay after the first one and, with SyncInterval, fsyncs
// Every after the first write since the last fsync. It exits when the
// queue is closed.
func (q *Queue) syncLoop() {
	defer q.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var writeAt, syncAt time.Time // zero: nothing due
	for {
		var fire <-chan time.Time
		if next := earliest(writeAt, syncAt); !next.IsZero() {
			t.Reset(time.Until(next))
			fire = t.C
		}
		select {
		case <-q.done:
			return
		case <-q.wake:
			now := time.Now()
			q.mu.Lock()
			sync := q.cfg.Sync
			q.mu.Unlock()
			if writeAt.IsZero() {
				writeAt = now.Add(writeDelay)
			}
			if sync.Mode == SyncInterval && syncAt.IsZero() {
				syncAt = now.Add(max(sync.Every, time.Millisecond))
			}
		case now := <-fire:
			if !syncAt.IsZero() && !now.Before(syncAt) {
				writeAt, syncAt = time.Time{}, time.Time{}
				q.mu.Lock()
				lsn := q.lsn
				q.armed = false // syncTo writes what is pending
				q.mu.Unlock()
				if err := q.syncTo(lsn); err != nil && err != ErrClosed {
					q.log.Error("queue journal: sync failed", "queue", q.name, "err", err)
				}
			} else if !writeAt.IsZero() && !now.Before(writeAt) {
				writeAt = time.Time{}
				q.mu.Lock()
				err := q.flushLocked()
				q.armed = false // the next record pokes again
				q.mu.Unlock()
				if err != nil {
					q.log.Error("queue journal: write failed", "queue", q.name, "err", err)
				}
			}
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

package store

import "time"

// commit makes the journal durable up to lsn as the sync mode asks.
func (q *Queue) commit(lsn uint64, mode SyncMode) error {
	switch mode {
	case SyncAlways:
		return q.syncTo(lsn)
	case SyncInterval:
		q.poke()
	}
	return nil
}

// poke tells the interval syncer there is something to sync.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// syncTo returns once the journal is on disk up to lsn. It is the group
// commit: callers queue on syncMu while one fsyncs, and the next one to get
// it fsyncs everything written meanwhile, so the callers that wrote during
// an fsync share the next one. The queue's lock is held only to read which
// file and how far.
func (q *Queue) syncTo(lsn uint64) error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	if q.synced >= lsn {
		return nil
	}
	q.mu.Lock()
	f, gen, end, durable, closed := q.f, q.gen, q.lsn, q.durableLSN, q.closed
	q.mu.Unlock()
	if durable >= lsn {
		q.synced = max(q.synced, durable)
		return nil
	}
	if closed {
		return ErrClosed
	}
	if err := f.Sync(); err != nil {
		q.mu.Lock()
		replaced := q.gen != gen && q.durableLSN >= end
		q.mu.Unlock()
		if !replaced {
			return err
		}
		// A compaction replaced (and closed) f, and wrote everything up to
		// end to the new file and synced it.
	}
	q.synced = max(q.synced, end)
	return nil
}

// syncLoop is the SyncInterval syncer: idle until poked, then fsyncs after
// the interval. It exits when the queue is closed.
func (q *Queue) syncLoop() {
	defer q.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-q.wake:
		}
		q.mu.Lock()
		every := q.cfg.Sync.Every
		q.mu.Unlock()
		if every <= 0 {
			every = time.Millisecond
		}
		t.Reset(every)
		select {
		case <-q.done:
			t.Stop()
			return
		case <-t.C:
		}
		q.mu.Lock()
		lsn := q.lsn
		q.mu.Unlock()
		if err := q.syncTo(lsn); err != nil && err != ErrClosed {
			q.log.Error("queue journal: sync failed", "queue", q.name, "err", err)
		}
	}
}

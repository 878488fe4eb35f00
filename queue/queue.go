package queue

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// queue is one named queue of a Server: its Store and the clients
// waiting for an item.
type queue struct {
	name string
	st   Store
	srv  *Server

	mu       sync.Mutex // guards waiters and settings
	waiters  list.List  // of *waiter, first come first served
	settings queueSettings
	// deleted is set when the queue is deleted, before its waiters are
	// woken under mu (see Server.deleteQueue); wait checks it under mu.
	deleted atomic.Bool
}

// waiter is a client blocked in get/t=. It costs this struct, its list
// element and the connection's timer; the connection's goroutine does the
// waiting.
type waiter struct {
	peek bool
	ch   chan delivery // buffered: the dispatcher never blocks
	elem *list.Element
}

// delivery is what a waiter is handed: an item taken open under xid (or
// peeked), or nothing when the queue is deleted.
type delivery struct {
	it  Item
	xid uint64
	ok  bool
}

func (q *queue) config() queueSettings {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.settings
}

// wait registers a waiter, unless an item arrived meanwhile (then it is
// handed over at once) or the server holds its maximum of waiters
// (then nil is returned).
//
// Its take may move expired items to other queues: their waiters are
// served before it returns, not when the command (a long wait) ends.
func (q *queue) wait(peek bool) *waiter {
	q.mu.Lock()
	if q.deleted.Load() || !q.srv.addWaiter() {
		q.mu.Unlock()
		return nil
	}
	w := &waiter{peek: peek, ch: make(chan delivery, 1)}
	w.elem = q.waiters.PushBack(w)
	q.dispatchLocked(time.Now())
	q.mu.Unlock()
	q.srv.dispatchMoved()
	return w
}

// cancel removes w if it is still waiting and reports whether it was;
// otherwise an item is (or is being) delivered on w.ch.
func (q *queue) cancel(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.elem == nil {
		return false
	}
	q.waiters.Remove(w.elem)
	w.elem = nil
	q.srv.removeWaiter()
	return true
}

// dispatch hands the queue's items to its waiters, in the order they
// came, then serves the waiters of the queues its takes moved expired
// items into: it runs in commands, but also where no command follows (a
// connection's end, an open_timeout).
func (q *queue) dispatch() {
	q.dispatchWaiters()
	q.srv.dispatchMoved()
}

// dispatchWaiters is dispatch without serving the queues it moved
// expired items into.
func (q *queue) dispatchWaiters() {
	q.mu.Lock()
	if q.waiters.Len() > 0 {
		q.dispatchLocked(time.Now())
	}
	q.mu.Unlock()
}

func (q *queue) dispatchLocked(now time.Time) {
	for e := q.waiters.Front(); e != nil; e = q.waiters.Front() {
		w := e.Value.(*waiter)
		var d delivery
		var err error
		if w.peek {
			d.it, d.ok, err = q.st.Peek(now)
		} else {
			// A waiter's item is always taken open: the connection
			// confirms it once written, or puts it back.
			d.it, d.xid, d.ok, err = q.st.Take(now, true)
		}
		if err != nil || !d.ok {
			return
		}
		q.waiters.Remove(e)
		w.elem = nil
		q.srv.removeWaiter()
		w.ch <- d
	}
}

// wakeAllLocked ends every wait with nothing (the queue is deleted or the
// server stops).
func (q *queue) wakeAllLocked() {
	for e := q.waiters.Front(); e != nil; e = q.waiters.Front() {
		w := e.Value.(*waiter)
		q.waiters.Remove(e)
		w.elem = nil
		q.srv.removeWaiter()
		w.ch <- delivery{}
	}
}

func (q *queue) waiterCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiters.Len()
}

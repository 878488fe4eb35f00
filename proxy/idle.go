package proxy

import (
	"errors"
	"os"
	"time"
)

// An idle client connection holds no goroutine. A client is parked, its
// socket watched by the proxy's idler (an epoll set on Linux) and no
// goroutine of its own, when it is accepted and again once its reader has
// waited for input, with nothing buffered and no reply pending, through
// a whole idleSweep; the idler starts a reader again when the socket
// becomes readable (or is closed by the peer). A busy client never
// parks: its reader waits in place between requests.
//
// The reader of a client that has waited long enough is woken by a read
// deadline in the past (a kick); it parks if it still has nothing to do,
// and otherwise clears the deadline and goes on. The proxy sets a
// client's read deadline for nothing else but a reload that stops the
// client, which sets stopping first: any other deadline is a kick, even
// one that finds its reader busy (the sweep may read waiting just before
// the reader wakes, and set the deadline just after).

// idleSweep is how often the idler looks for readers to park: a reader
// that has waited for input through one whole sweep interval is parked at
// the next sweep.
const idleSweep = 250 * time.Millisecond

// errParked ends a reader whose client the idler now watches.
var errParked = errors.New("proxy: client parked")

// longAgo is a read deadline in the past: it wakes a reader at once.
var longAgo = time.Unix(1, 0)

// kicked reports whether err is the deadline of a kick, which it then
// clears. A reader stopped by a reload (which sets stopping before its
// own deadline) is not kicked.
func (cl *client) kicked(err error) bool {
	if cl.stopping.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	cl.nc.SetReadDeadline(time.Time{})
	// A reload's deadline set before this clear is lost: stopping, set
	// before it, is seen now.
	return !cl.stopping.Load()
}

// parkable reports whether cl has nothing in flight: no call awaits its
// writer and no writer runs. The reader calls it with nothing buffered.
func (cl *client) parkable() bool {
	if cl.inflight.Load() != 0 {
		return false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return !cl.writing && cl.queue.len() == 0
}

// dropScratch lets the garbage collector have the reader's and the
// writer's scratch buffers while cl is parked, and the queue's slice,
// which keeps the capacity of the deepest pipeline cl sent (up to the
// window's 512 calls); they are made again when needed. The reader calls
// it, with no writer running and no call queued.
func (cl *client) dropScratch() {
	cl.readerScratch = nil
	cl.unsent = nil
	cl.pos, cl.blocks = nil, nil
	cl.mu.Lock()
	if cl.queue.len() == 0 {
		cl.queue = fifo{}
	}
	cl.mu.Unlock()
}

// sweepLocked kicks the readers that have waited for input since the
// last sweep; p.mu is held. Only the idler's goroutine sweeps, so the sweep
// marks need no lock of their own.
func (p *Proxy) sweepLocked() {
	for cl := range p.clients {
		if cl.fd < 0 {
			continue
		}
		waiting, wakes := cl.waiting.Load(), cl.wakes.Load()
		if waiting && cl.sweepWaiting && wakes == cl.sweepWakes {
			cl.nc.SetReadDeadline(longAgo)
		}
		cl.sweepWaiting, cl.sweepWakes = waiting, wakes
	}
}

// park has the event loop read cl, or else parks it (see idler.park);
// it reports false when cl must keep its reader. A client given to the
// loop is read by it until it ends or must wait (loop.handover).
func (p *Proxy) park(cl *client) bool {
	return p.loop.addClient(cl) || p.idle.park(cl)
}

// resume starts a goroutine serving cl, which the idler watched.
func (p *Proxy) resume(cl *client) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		cl.serve()
	}()
}

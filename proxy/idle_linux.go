package proxy

import (
	"errors"
	"sync/atomic"
	"syscall"
	"time"
)

// An idler watches the sockets of parked clients with an epoll set. Its
// goroutine (run) waits on the set, starts a reader for each client whose
// socket becomes readable or closes, and sweeps every idleSweep.
type idler struct {
	epollSet // mu also guards parked and the set's members
	p        *Proxy
	sweep    time.Duration
	sweeps   atomic.Int64 // sweeps done (for tests)
	parked   map[int32]*client
}

// newIdler returns p's idler, or nil (clients then never park) when the
// system refuses an epoll set.
func newIdler(p *Proxy) (*idler, error) {
	id := &idler{p: p, sweep: idleSweep, parked: make(map[int32]*client)}
	if err := id.open(); err != nil {
		return nil, err
	}
	return id, nil
}

// park has the idler watch cl's socket; it reports false when cl must
// keep its reader (the idler is closed or cannot watch the socket, cl's
// connection is closed, or a reload stops cl). The caller then owns cl
// as before.
func (id *idler) park(cl *client) bool {
	if id == nil || cl.fd < 0 {
		return false
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.closed || !id.running || cl.stopping.Load() {
		return false
	}
	// The socket is added while its descriptor is held open: a
	// connection closed meanwhile (a failed write closes it from another
	// goroutine while its reader is about to park it) is refused, and
	// the number it had, which a new connection may have taken, is never
	// watched for cl.
	added := false
	err := cl.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: cl.fd}
		added = syscall.EpollCtl(id.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) == nil
	})
	if err != nil || !added {
		return false
	}
	id.parked[cl.fd] = cl
	return true
}

// takeLocked removes cl's socket, parked under fd, from the set and
// returns cl, or nil when nothing is parked under fd. id.mu is held.
func (id *idler) takeLocked(fd int32) *client {
	cl := id.parked[fd]
	if cl != nil {
		delete(id.parked, fd)
		syscall.EpollCtl(id.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	}
	return cl
}

// wake starts a reader for cl if it is parked: a reload that stops its
// pool's clients needs their readers to see its deadline.
func (id *idler) wake(cl *client) {
	if id == nil || cl.fd < 0 {
		return
	}
	id.mu.Lock()
	if id.parked[cl.fd] != cl {
		id.mu.Unlock()
		return
	}
	id.takeLocked(cl.fd)
	id.mu.Unlock()
	id.p.resume(cl)
}

// start starts run, tracked by the proxy's WaitGroup; p.mu is held.
func (id *idler) start() {
	if id != nil {
		id.epollSet.start(&id.p.wg, id.run)
	}
}

// close makes run resume every parked client (their sockets are closed
// by then, so each reader ends) and return.
func (id *idler) close() {
	if id != nil {
		id.epollSet.close()
	}
}

func (id *idler) run() {
	defer id.p.wg.Done()
	defer id.closeFDs()
	events := make([]syscall.EpollEvent, 256)
	lastSweep := time.Now()
	for {
		wait := max(time.Until(lastSweep.Add(id.sweep)), 0)
		n, err := syscall.EpollWait(id.epfd, events, int(wait/time.Millisecond)+1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			id.p.log.Error("epoll_wait failed", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(id.wakefd) {
				continue
			}
			id.mu.Lock()
			cl := id.takeLocked(ev.Fd)
			id.mu.Unlock()
			if cl != nil {
				id.p.resume(cl)
			}
		}
		id.mu.Lock()
		if id.closed {
			parked := id.parked
			id.parked = nil
			id.mu.Unlock()
			for _, cl := range parked {
				id.p.resume(cl)
			}
			return
		}
		id.mu.Unlock()
		if time.Since(lastSweep) >= id.sweep {
			lastSweep = time.Now()
			id.p.mu.Lock()
			id.p.sweepLocked()
			id.p.mu.Unlock()
			id.sweeps.Add(1)
		}
	}
}

package proxy

import (
	"sync"
	"syscall"

	"github.com/corvidcache/corvid/internal/epoll"
)

// An epollSet is an epoll set with an eventfd in it (see epoll.New) and
// the lifecycle the idler and the event loop share: one goroutine at a
// time waits on the set; once started, it closes both descriptors when it
// ends, and close only wakes it; never started, close closes them itself.
type epollSet struct {
	epfd   int
	wakefd int // an eventfd: a write interrupts the wait

	mu      sync.Mutex // guards the flags below, and what the embedder says
	closed  bool       // close was called: the goroutine stops
	running bool       // the goroutine was started: it closes epfd and wakefd
	done    bool       // epfd and wakefd are closed
}

// open makes the set and its eventfd.
func (s *epollSet) open() (err error) {
	s.epfd, s.wakefd, err = epoll.New()
	return err
}

// start starts run, counted in wg, unless the set is closed; run calls
// wg.Done and, as it ends, closeFDs.
func (s *epollSet) start(wg *sync.WaitGroup, run func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.running = true
	wg.Add(1)
	go run()
}

// close marks the set closed, and wakes its goroutine to see it, or
// closes the descriptors when none was started.
func (s *epollSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if !s.running {
		s.closeFDsLocked()
		return
	}
	epoll.Wake(s.wakefd)
}

// closeFDs closes the descriptors: the goroutine calls it as it ends.
func (s *epollSet) closeFDs() {
	s.mu.Lock()
	s.closeFDsLocked()
	s.mu.Unlock()
}

func (s *epollSet) closeFDsLocked() {
	s.done = true
	syscall.Close(s.wakefd)
	syscall.Close(s.epfd)
}

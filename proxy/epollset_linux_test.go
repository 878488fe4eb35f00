package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// isOpen reports whether fd is an open descriptor.
func isOpen(t *testing.T, fd int) bool {
	t.Helper()
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil && !errors.Is(err, unix.EBADF) {
		t.Fatalf("fcntl(%d): %v", fd, err)
	}
	return err == nil
}

func openSet(t *testing.T) *epollSet {
	t.Helper()
	s := new(epollSet)
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	if !isOpen(t, s.epfd) || !isOpen(t, s.wakefd) {
		t.Fatal("open left a descriptor closed")
	}
	return s
}

// waitGroup waits for wg, for at most 20 s.
func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("the goroutine did not end")
	}
}

// A set closed before it is started closes its descriptors at once, and
// a start after that starts nothing.
func TestEpollSetCloseBeforeStart(t *testing.T) {
	s := openSet(t)
	s.close()
	s.mu.Lock()
	closed, running, done := s.closed, s.running, s.done
	s.mu.Unlock()
	if !closed || running || !done {
		t.Fatalf("after close: closed %v running %v done %v, want true false true", closed, running, done)
	}
	if isOpen(t, s.epfd) || isOpen(t, s.wakefd) {
		t.Fatal("close before start left a descriptor open")
	}

	var wg sync.WaitGroup
	var started atomic.Bool
	s.start(&wg, func() {
		defer wg.Done()
		started.Store(true)
	})
	waitGroup(t, &wg)
	if started.Load() {
		t.Fatal("start after close ran the goroutine")
	}
	s.mu.Lock()
	running = s.running
	s.mu.Unlock()
	if running {
		t.Fatal("start after close marked the set running")
	}
}

// A set closed while its goroutine runs wakes it through the eventfd,
// leaving the descriptors open for it; it closes them as it ends.
func TestEpollSetCloseAfterStart(t *testing.T) {
	s := openSet(t)
	var wg sync.WaitGroup
	type seen struct {
		woken, closed, open bool
		err                 error
	}
	got := make(chan seen, 1)
	s.start(&wg, func() {
		defer wg.Done()
		defer s.closeFDs()
		var r seen
		events := make([]syscall.EpollEvent, 4)
		for deadline := time.Now().Add(5 * time.Second); !r.woken && time.Now().Before(deadline); {
			n, err := syscall.EpollWait(s.epfd, events, 100)
			if err != nil && !errors.Is(err, syscall.EINTR) {
				r.err = err
				break
			}
			for _, ev := range events[:max(n, 0)] {
				r.woken = r.woken || ev.Fd == int32(s.wakefd)
			}
		}
		_, errEp := unix.FcntlInt(uintptr(s.epfd), unix.F_GETFD, 0)
		_, errWake := unix.FcntlInt(uintptr(s.wakefd), unix.F_GETFD, 0)
		r.open = errEp == nil && errWake == nil
		s.mu.Lock()
		r.closed = s.closed
		s.mu.Unlock()
		got <- r
	})
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if !running {
		t.Fatal("start did not mark the set running")
	}
	s.close()
	waitGroup(t, &wg)
	r := <-got
	switch {
	case r.err != nil:
		t.Fatalf("epoll_wait: %v", r.err)
	case !r.woken:
		t.Fatal("close did not wake the goroutine")
	case !r.closed:
		t.Fatal("the woken goroutine did not see the set closed")
	case !r.open:
		t.Fatal("close closed the descriptors under the running goroutine")
	}
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if !done || isOpen(t, s.epfd) || isOpen(t, s.wakefd) {
		t.Fatalf("the goroutine's end left the descriptors open (done %v)", done)
	}
}

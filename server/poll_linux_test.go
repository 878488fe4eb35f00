package server

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestLoopWatcherKeepsAddressAfterReset resets a client just as its event
// loop hands its new watcher connection to a goroutine. The watcher's
// connection must keep the client's address, which "stats conns" shows:
// read anew from the reset socket it is gone, and "stats conns" crashed
// the server on it.
func TestLoopWatcherKeepsAddressAfterReset(t *testing.T) {
	clients := make(chan *net.TCPConn, 1)
	handed := make(chan *conn, 1)
	testHookHandOff = func(c *conn, fd int) {
		cl := <-clients
		cl.SetLinger(0)
		cl.Close() // a reset
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := syscall.Getpeername(fd); err != nil {
				break
			}
		}
		handed <- c
	}
	t.Cleanup(func() { testHookHandOff = nil })
	s, addr := start(t, Config{EventLoops: 1})
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	want := nc.LocalAddr().String()
	clients <- nc.(*net.TCPConn)
	if _, err := nc.Write([]byte("watch\r\n")); err != nil {
		t.Fatal(err)
	}
	var c *conn
	select {
	case c = <-handed:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher was not handed off")
	}
	waitFor(t, "the watcher to close", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, open := s.conns[c]
		return !open
	})
	s.mu.Lock()
	ra := c.nc.RemoteAddr()
	s.mu.Unlock()
	if ra == nil || ra.String() != want {
		t.Fatalf("watcher's address %v, want %s", ra, want)
	}
}

// The idle timeout leaves a connection whose socket holds input the loop
// has not read yet: its next command is there.
func TestIdleKickUnreadInput(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	l := &loop{now: int64(10 * time.Second)}
	pc := &pollConn{c: &conn{}, l: l, fd: fds[0]}
	idle := int64(time.Second)
	if !l.idleKick(pc, idle) {
		t.Fatal("a connection idle for 10 s with nothing to read was not kicked")
	}
	pc.lastCmdAt = l.now - idle/2
	if l.idleKick(pc, idle) {
		t.Fatal("a connection whose last command is newer than the timeout was kicked")
	}
	pc.lastCmdAt = 0
	if _, err := syscall.Write(fds[1], []byte("mn\r\n")); err != nil {
		t.Fatal(err)
	}
	if l.idleKick(pc, idle) {
		t.Fatal("a connection with a command waiting in its socket was kicked")
	}
}

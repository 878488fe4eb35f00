package server

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHandOffPeerGone checks that a connection handed from its event loop
// to a goroutine (a metadump or a watcher) after its client reset it still
// has the client's addresses: "stats conns" and the command log read them,
// and a missing one crashed the server.
func TestHandOffPeerGone(t *testing.T) {
	s, addr := start(t, Config{EventLoops: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	remote := sc.RemoteAddr().String()
	c := newConn(s, sc)
	fd, err := detach(sc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLoop(s)
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	defer syscall.Close(l.wakefd)
	defer syscall.Close(l.epfd)
	pc := &pollConn{c: c, l: l, fd: fd}
	c.flushFn, c.onLoop = pc.flush, true
	l.add(pc)

	// The client resets the connection; the server's socket then has no
	// peer address.
	cc.(*net.TCPConn).SetLinger(0)
	cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := syscall.Getpeername(fd); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's socket keeps its peer after a reset")
		}
		time.Sleep(time.Millisecond)
	}
	nc, err := pc.leave()
	if err != nil {
		t.Skipf("cannot take over a reset socket here: %v", err)
	}
	defer nc.Close()
	if a := c.nc.RemoteAddr(); a == nil || a.String() != remote {
		t.Errorf("after leaving its loop the connection's peer is %v, want %s", a, remote)
	}
	if c.fd() < 0 {
		t.Error("after leaving its loop the connection has no descriptor for watchers")
	}

	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	a := dial(t, "tcp", addr)
	a.send("stats conns\r\n")
	found := false
	for {
		l := a.line()
		if l == "END" {
			break
		}
		if strings.HasSuffix(l, ":addr tcp:"+remote) {
			found = true
		}
	}
	if !found {
		t.Errorf("stats conns does not list the connection from %s", remote)
	}
}

// TestHandOffAfterGrace checks that a connection handed from its event
// loop to a goroutine (for a metadump or a watch) once the shutdown grace
// is over, which a loop can do in the turn in which it learns of it, is
// closed too: its goroutine would otherwise write to a client that does
// not read, and the server would never stop.
func TestHandOffAfterGrace(t *testing.T) {
	s, _ := start(t, Config{EventLoops: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close() // a client that does not read
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, sc)
	fd, err := detach(sc)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLoop(s)
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	defer syscall.Close(l.wakefd)
	defer syscall.Close(l.epfd)
	pc := &pollConn{c: c, l: l, fd: fd}
	c.flushFn, c.onLoop = pc.flush, true
	l.add(pc)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()

	s.closeStuck("test: grace over")
	nc, err := pc.leave()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<20)
	for range 64 { // more than the sockets hold
		if _, err = nc.Write(buf); err != nil {
			break
		}
	}
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a connection leaving its loop after the grace can still be written to (%v)", err)
	}
}

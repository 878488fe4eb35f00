package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A rawReader reads as net.Conn's Read does: it waits for data, keeps the
// connection's read deadline, and reports the peer's close as io.EOF.
func TestRawReader(t *testing.T) {
	if !rawIO {
		t.Skip("no raw reads on this platform")
	}
	a, b := tcpPair(t)
	rr := newRawReader(a)
	if rr == nil {
		t.Fatal("no rawReader for a TCP connection")
	}
	buf := make([]byte, 64)

	// Waits for data that comes later.
	go func() {
		time.Sleep(20 * time.Millisecond)
		b.Write([]byte("VALUE k 0 1\r\n"))
	}()
	n, err := rr.read(buf)
	if err != nil || string(buf[:n]) != "VALUE k 0 1\r\n" {
		t.Fatalf("read = %q, %v", buf[:n], err)
	}

	// The read deadline ends a wait with os.ErrDeadlineExceeded.
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	n, err = rr.read(buf)
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline = %d, %v; want os.ErrDeadlineExceeded", n, err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("read past the deadline returned after %v, before the deadline", d)
	}
	a.SetReadDeadline(time.Time{})

	// Data and the close behind it: the data, then io.EOF.
	b.Write([]byte("END\r\n"))
	b.Close()
	time.Sleep(20 * time.Millisecond)
	n, err = rr.read(buf)
	if err != nil || string(buf[:n]) != "END\r\n" {
		t.Fatalf("read = %q, %v", buf[:n], err)
	}
	n, err = rr.read(buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed = %d, %v; want io.EOF", n, err)
	}

	// A connection closed under it reports net.ErrClosed.
	a.Close()
	if _, err := rr.read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed connection = %v; want net.ErrClosed", err)
	}
}

// A rawReader's read allocates nothing.
func TestRawReaderNoAllocs(t *testing.T) {
	if !rawIO {
		t.Skip("no raw reads on this platform")
	}
	a, b := tcpPair(t)
	rr := newRawReader(a)
	buf := make([]byte, 64)
	msg := []byte("STORED\r\n")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := b.Write(msg); err != nil {
			t.Fatal(err)
		}
		if n, err := rr.read(buf); err != nil || n == 0 {
			t.Fatalf("read = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write and read; want 0", allocs)
	}
}

// A call past its deadline has what the socket holds read once, as
// nutcracker handles the events of one wait before its timeouts: bytes
// that keep coming after that drain do not keep it alive (else a server
// streaming a long reply faster than it is read would hold the call past
// its timeout for as long as it streams).
func TestRearmDrainsOnce(t *testing.T) {
	if !rawIO {
		t.Skip("no raw reads on this platform")
	}
	a, b := tcpPair(t)
	bc := &bconn{nc: a}
	bc.sent.push(&call{deadline: time.Now().Add(-time.Second)})
	rr := newRawReader(a)
	buf := make([]byte, 64)
	grants := 0
	for i := range 5 {
		if _, err := b.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the byte is in a's socket
		n, ok := bc.rearm(a, rr, buf)
		if !ok {
			break
		}
		if n != 1 {
			t.Fatalf("rearm %d read %d bytes, want 1", i, n)
		}
		grants++
	}
	if grants != 1 {
		t.Fatalf("an overdue call was kept alive by %d reads of what came, want 1", grants)
	}
}

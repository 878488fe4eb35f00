package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/offheap"
)

// startProxyConfig starts a proxy with cfg and one pool "alpha" in front
// of addrs, and returns it with the pool's address; it is closed when the
// test ends.
func startProxyConfig(t *testing.T, cfg Config, addrs []string) (*Proxy, string) {
	t.Helper()
	p := serveProxy(t, cfg, poolYAML("127.0.0.1:0", addrs))
	return p, p.Addrs()["alpha"].String()
}

// waitFor polls cond until it holds or d passes, and reports whether it
// held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

const oomLine = "SERVER_ERROR out of memory reading request\r\n"

// TestReadBufMemLimit: many clients that send 1 MiB get lines at once
// hold at most the proxy's read-buffer limit in large buffers together;
// the requests past it are answered "SERVER_ERROR out of memory reading
// request" and their connections closed (counted in read_buf_oom), as
// corvid server does; the lines held are served once they end, and their
// buffers given back.
func TestReadBufMemLimit(t *testing.T) {
	const (
		limit = 8 << 20
		conns = 24
	)
	p, addr := startProxyConfig(t, Config{ReadBufMemLimit: limit}, startCorvids(t, 1))
	// Lines of 1 MiB less 64 bytes without their end: each is held in a
	// 1 MiB buffer.
	half := getLine((1<<20-64)/4, 3, 2)
	half = half[:len(half)-2]
	heldMiB := func() int64 { return p.rbufs.bytes.Load() >> 20 }
	oom := func() int64 { return p.rbufs.oom.Load() }
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		return nc
	}

	ncs := make([]net.Conn, conns)
	var wg sync.WaitGroup
	for i := range ncs {
		nc := dial()
		ncs[i] = nc
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc.Write(half) // fails on the connections the proxy closes
		}()
	}
	wg.Wait()
	// Every connection either holds its line or is refused and closed.
	if !waitFor(30*time.Second, func() bool {
		return heldMiB()+oom() == conns && p.st.currConnections.Load() == heldMiB()
	}) {
		t.Fatalf("%d MiB held in read buffers, %d requests refused, %d connections open, of %d",
			heldMiB(), oom(), p.st.currConnections.Load(), conns)
	}
	if n := p.rbufs.bytes.Load(); n > limit {
		t.Errorf("large read buffers hold %d bytes, over the limit %d", n, limit)
	}
	if oom() < conns-limit>>20 {
		t.Errorf("%d requests refused, want at least %d", oom(), conns-limit>>20)
	}
	// The refused connections were closed (their error line may be lost
	// to a reset: the proxy closed them with input unread).
	var held []net.Conn
	for _, nc := range ncs {
		nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		got, err := io.ReadAll(nc)
		switch {
		case isTimeout(err) && len(got) == 0:
			held = append(held, nc)
		case !bytes.HasPrefix([]byte(oomLine), got):
			t.Errorf("a refused connection got %q, %v", got, err)
		}
	}
	if int64(len(held)) != heldMiB() {
		t.Errorf("%d connections wait, %d MiB held", len(held), heldMiB())
	}

	// Fill the limit; then a request that needs 4 KiB more is refused
	// with the error line, and its connection closed.
	for heldMiB() < limit>>20 {
		nc, before := dial(), heldMiB()
		if _, err := nc.Write(half); err != nil {
			t.Fatal(err)
		}
		if !waitFor(30*time.Second, func() bool { return heldMiB() > before }) {
			t.Fatalf("a 1 MiB line with %d MiB held: not held", before)
		}
		held = append(held, nc)
	}
	refused := oom()
	nc := dial()
	if _, err := nc.Write(half[:clientReadBuf]); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(nc); err != nil || string(got) != oomLine {
		t.Errorf("a request past the limit: reply %q, %v; want %q and EOF", got, err, oomLine)
	}
	if want := fmt.Sprintf("STAT read_buf_oom %d\r\n", refused+1); !strings.Contains(string(p.appendStats(nil)), want) {
		t.Errorf("stats do not say %q:\n%s", want, p.appendStats(nil))
	}

	// The lines held are served once they end, and their buffers given
	// back.
	for _, nc := range held {
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := nc.Write([]byte("\r\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "END\r\n" {
			t.Errorf("a held line, ended: reply %q, %v", buf, err)
		}
	}
	if !waitFor(10*time.Second, func() bool { return p.rbufs.bytes.Load() == 0 }) {
		t.Errorf("%d bytes of large read buffers held after the lines were served", p.rbufs.bytes.Load())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLongGetLineAllocation: a client that sends 1 MiB get lines one
// after the other costs the proxy much less than a line's size in
// allocations per line: its read buffer grows in few steps into buffers
// the proxy recycles, instead of doubling from 4 KiB into new ones for
// every line.
func TestLongGetLineAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops pooled values at random")
	}
	_, addr := proxyFor(t, startCorvids(t, 2))
	for _, distinct := range []int{2, 40_000} {
		line := getLine((1<<20-64)/26, 25, distinct)
		// The corvid servers run in this process and their allocations
		// count too; now and then every round of one connection
		// allocates about 1 MiB more (one run in ten), so the best of
		// a few connections.
		got := allocPerGetLine(t, addr, line)
		for i := 0; i < 3 && got > uint64(len(line))/2; i++ {
			got = min(got, allocPerGetLine(t, addr, line))
		}
		t.Logf("%d distinct keys: a get line of %d bytes allocated %d bytes", distinct, len(line), got)
		if got > uint64(len(line))/2 {
			t.Errorf("%d distinct keys: a get line of %d bytes allocated %d bytes, want at most half the line", distinct, len(line), got)
		}
	}
}

// TestLargeReadBufsOffHeap: the large read buffers of clients sending
// long lines are mapped outside the Go heap, so that the collector's
// headroom does not double them, and are unmapped once the clients are
// gone and the proxy closed. (The buffers are looked at one by one: the
// process's total of mapped memory moves with the corvid servers the test
// runs in process.)
func TestLargeReadBufsOffHeap(t *testing.T) {
	if !offheap.Mapped {
		t.Skip("buffers come from the heap in this build")
	}
	p, addr := startProxyConfig(t, Config{}, startCorvids(t, 1))
	half := getLine((1<<20-64)/4, 3, 2)
	half = half[:len(half)-2]
	const conns = 4
	var ncs []net.Conn
	for range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ncs = append(ncs, nc)
		if _, err := nc.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(10*time.Second, func() bool { return p.rbufs.bytes.Load() >= conns<<20 }) {
		t.Fatalf("read buffers hold %d bytes, want %d lines of 1 MiB", p.rbufs.bytes.Load(), conns)
	}
	for _, nc := range ncs {
		nc.Close()
	}
	if !waitFor(10*time.Second, func() bool { return p.rbufs.bytes.Load() == 0 }) {
		t.Fatalf("read buffers hold %d bytes after their clients left", p.rbufs.bytes.Load())
	}
	// The clients' buffers are on the free lists now: each past
	// offheapMin is mapped.
	var kept, mapped [][]byte
	for _, ch := range p.rbufs.free {
		for len(ch) > 0 {
			b := <-ch
			kept = append(kept, b)
			if cap(b) <= offheapMin {
				continue
			}
			mapped = append(mapped, b)
			if !offheap.Owns(b) {
				t.Errorf("a read buffer of %d bytes is on the heap", cap(b))
			}
		}
	}
	if len(mapped) == 0 {
		t.Fatal("no read buffer past offheapMin was kept for reuse")
	}
	for _, b := range kept {
		p.rbufs.recycle(b)
	}
	p.Close()
	for _, b := range mapped {
		if offheap.Owns(b) {
			t.Errorf("a read buffer of %d bytes is still mapped once the proxy is closed", cap(b))
		}
	}
}

// TestReadBufNoAllocs: taking a read buffer from the pool and giving it
// back, as the reader does for every request (and for every wake-up that
// finds nothing to read), allocates nothing.
func TestReadBufNoAllocs(t *testing.T) {
	cl := &client{}
	cl.putReadBuf(cl.getReadBuf()) // the pool's first buffer
	if n := testing.AllocsPerRun(1000, func() { cl.putReadBuf(cl.getReadBuf()) }); n != 0 {
		t.Errorf("%v allocations per buffer taken and given back, want 0", n)
	}
}

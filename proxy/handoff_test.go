package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// stalledServer is a fake memcached that reads nothing until release is
// closed, then answers each set with STORED; it records the keys in the
// order their sets arrived.
type stalledServer struct {
	release chan struct{}
	mu      sync.Mutex // guards keys
	keys    []string
}

func (s *stalledServer) handle(t *testing.T) func(nc net.Conn) {
	return func(nc net.Conn) {
		select {
		case <-s.release:
		case <-t.Context().Done():
			return
		}
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			var key string
			var flags, exp, n int
			if _, err := fmt.Sscanf(line, "set %s %d %d %d", &key, &flags, &exp, &n); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, r, int64(n+2)); err != nil {
				return
			}
			s.mu.Lock()
			s.keys = append(s.keys, key)
			s.mu.Unlock()
			if _, err := nc.Write([]byte("STORED\r\n")); err != nil {
				return
			}
		}
	}
}

// TestServerWriteHandedOff: requests a client's reader cannot write to
// a server connection at once (the server is not reading) go to the
// connection's writer goroutine with the write token; the reader goes on,
// another client's request queued meanwhile is written after them, and
// the server gets every request, in order.
func TestServerWriteHandedOff(t *testing.T) {
	s := &stalledServer{release: make(chan struct{})}
	addr := testutil.FakeServer(t, s.handle(t))
	p, paddr := proxyFor(t, []string{addr}, "timeout: 20000")
	bc := p.pools[0].current().all[0].conns[0]

	value := strings.Repeat("v", 900<<10)
	const sets = 6 // 5.4 MB: more than the sockets hold
	a := testutil.Dial(t, paddr)
	defer a.Close()
	go func() {
		// The proxy reads it all: Send may not wait for the proxy.
		for i := range sets {
			if err := a.TrySend(fmt.Appendf(nil, "set a%d 0 0 %d\r\n%s\r\n", i, len(value), value)); err != nil {
				return
			}
		}
	}()
	testutil.WaitFor(t, func() bool {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		// The reader queued them all: it did not wait for the server.
		return bc.writing && bc.sent.len()+len(bc.outCalls) == sets
	})
	b := testutil.Dial(t, paddr)
	defer b.Close()
	b.Send([]byte("set b 0 0 1\r\nx\r\n"))
	testutil.WaitFor(t, func() bool {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		return bc.sent.len()+len(bc.outCalls) == sets+1
	})
	close(s.release)
	for i := range sets {
		if r := string(a.ReadReply(testutil.LineReply)); r != "STORED\r\n" {
			t.Fatalf("set a%d: %q", i, r)
		}
	}
	if r := string(b.ReadReply(testutil.LineReply)); r != "STORED\r\n" {
		t.Fatalf("set b: %q", r)
	}
	s.mu.Lock()
	got := strings.Join(s.keys, " ")
	s.mu.Unlock()
	if want := "a0 a1 a2 a3 a4 a5 b"; got != want {
		t.Fatalf("server got sets %s, want %s", got, want)
	}
}

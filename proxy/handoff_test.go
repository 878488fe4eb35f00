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
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.Close() // first: ends the sender
	wg.Add(1)
	go func() {
		defer wg.Done()
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

// getServer is a fake memcached that answers "get <key>" with a one-byte
// value named by the server, after gate is closed when gate is not nil.
func getServer(t *testing.T, name string, gate chan struct{}) string {
	return testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if gate != nil {
				select {
				case <-gate:
				case <-t.Context().Done():
					return
				}
			}
			key := strings.TrimSpace(strings.TrimPrefix(line, "get "))
			if _, err := fmt.Fprintf(nc, "VALUE %s 0 1\r\n%s\r\nEND\r\n", key, name); err != nil {
				return
			}
		}
	})
}

// keyOn returns a key the tree places on b.
func keyOn(t *testing.T, tr *tree, b *backend) string {
	t.Helper()
	for i := range 100000 {
		key := fmt.Sprintf("k%d", i)
		if tr.live[tr.pick([]byte(key))] == b {
			return key
		}
	}
	t.Fatalf("no key on %s", b.name)
	return ""
}

// TestRepliesInOrderWhenLaterCompletesFirst: a client's replies are
// written by the goroutines that complete its calls, and still in request
// order: the reply of a later request (another server's, and the proxy's
// own) that completes first waits for the earlier one, whose completer
// then writes them all.
func TestRepliesInOrderWhenLaterCompletesFirst(t *testing.T) {
	gate := make(chan struct{})
	slow, fast := getServer(t, "s", gate), getServer(t, "f", nil)
	p, paddr := proxyFor(t, []string{slow, fast}, "timeout: 20000")
	tr := p.pools[0].current()
	ks, kf := keyOn(t, tr, tr.all[0]), keyOn(t, tr, tr.all[1])
	c := testutil.Dial(t, paddr)
	defer c.Close()
	c.Send([]byte("get " + ks + "\r\nget " + kf + "\r\nversion\r\nget " + kf + "\r\n"))
	testutil.WaitFor(t, func() bool { return tr.all[1].st.responses.Load() == 2 })
	close(gate)
	want := []string{
		"VALUE " + ks + " 0 1\r\ns\r\nEND\r\n",
		"VALUE " + kf + " 0 1\r\nf\r\nEND\r\n",
		"VERSION " + p.cfg.Version + "\r\n",
		"VALUE " + kf + " 0 1\r\nf\r\nEND\r\n",
	}
	for i, w := range want {
		kind := testutil.ValuesReply
		if i == 2 {
			kind = testutil.LineReply
		}
		if got := string(c.ReadReply(kind)); got != w {
			t.Fatalf("reply %d: %q, want %q", i, got, w)
		}
	}
}

// TestUnreadClientDoesNotBlockServerReader: a client that stops reading
// its replies cannot stop the server connection's reader, which writes
// replies without waiting for the socket: the replies the client's socket
// does not take go to its writer goroutine, and another client's requests
// on the same server connection are answered meanwhile.
func TestUnreadClientDoesNotBlockServerReader(t *testing.T) {
	p, paddr := proxyFor(t, startCorvids(t, 1), "timeout: 20000")
	y := testutil.Dial(t, paddr)
	defer y.Close()
	value := strings.Repeat("v", 20000) // under maxInlineBatch: written inline
	if r := roundTrip(y, fmt.Sprintf("set w 0 0 %d\r\n%s\r\n", len(value), value), testutil.LineReply); r != "STORED\r\n" {
		t.Fatalf("set: %q", r)
	}
	x := testutil.Dial(t, paddr)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer x.Close() // first: ends the sender
	wg.Add(1)
	go func() {
		defer wg.Done()
		req := []byte(strings.Repeat("get w\r\n", 100))
		for range 50 {
			if x.TrySend(req) != nil {
				return
			}
		}
	}()
	// Replies pile up (the proxy admits x a window of at least 8 gets)
	// once x's socket is full.
	size := int64(len("VALUE w 0 20000\r\n\r\nEND\r\n") + len(value))
	testutil.WaitFor(t, func() bool { return p.replies.bytes.Load() >= 8*size })
	for i := range 20 {
		if r := roundTrip(y, "get w\r\n", testutil.ValuesReply); int64(len(r)) != size {
			t.Fatalf("get %d: %d bytes", i, len(r))
		}
	}
	if p.replies.bytes.Load() < 8*size {
		t.Fatalf("x's replies held: %d bytes; it was to be stalled", p.replies.bytes.Load())
	}
}

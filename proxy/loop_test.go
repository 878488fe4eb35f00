//go:build linux

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
)

// loopProxyFor is proxyFor with Config.EventLoop.
func loopProxyFor(t *testing.T, addrs []string, extra ...string) (*Proxy, string) {
	t.Helper()
	return loopProxySweep(t, idleSweep, addrs, extra...)
}

// loopProxySweep is loopProxyFor with the idle sweeps every sweep.
func loopProxySweep(t *testing.T, sweep time.Duration, addrs []string, extra ...string) (*Proxy, string) {
	t.Helper()
	pc, err := nutcracker.Parse([]byte(poolYAML("127.0.0.1:0", addrs, extra...)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Pools: pc, EventLoop: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.loop == nil {
		t.Fatal("no event loop")
	}
	p.idle.sweep = sweep // before Serve starts the idler and the loop
	runProxy(t, p)
	return p, p.Addrs()["alpha"].String()
}

// loopConns returns the server connections p's event loop reads.
func loopConns(p *Proxy) int {
	p.loop.mu.Lock()
	defer p.loop.mu.Unlock()
	n := 0
	for _, s := range p.loop.slots {
		if s.rd != nil {
			n++
		}
	}
	return n
}

// TestLoopServesClientsAndServers checks that with Config.EventLoop, the
// loop reads the clients and the server connections (no goroutine is
// left reading them), and that requests are answered through it.
func TestLoopServesClientsAndServers(t *testing.T) {
	p, addr := loopProxyFor(t, startCorvids(t, 2))
	c := testutil.Dial(t, addr)
	defer c.Close()
	useConn(t, c, 0)
	tr := p.pools[0].current()
	for _, b := range tr.all {
		k := keyOn(t, tr, b)
		if got := roundTrip(c, "get "+k+"\r\n", testutil.ValuesReply); got != "END\r\n" {
			t.Fatalf("get %s: %q", k, got)
		}
	}
	if n := loopConns(p); n != 2 {
		t.Errorf("the loop reads %d server connections, want 2", n)
	}
	testutil.WaitFor(t, func() bool { return loopClients(p) == 1 })
	if n := idleParked(p); n != 0 {
		t.Errorf("%d clients parked by the idler", n)
	}
}

// TestLoopHandsOverWaitingClient checks that a client whose request must
// wait for its replies to be read (its window is full) is given a reader
// goroutine of its own while the loop goes on serving the others, and
// comes back to the loop once idle.
func TestLoopHandsOverWaitingClient(t *testing.T) {
	gate := make(chan struct{})
	slow, fast := getServer(t, "s", gate), getServer(t, "f", nil)
	p, addr := loopProxySweep(t, 20*time.Millisecond, []string{slow, fast}, "timeout: 20000")
	tr := p.pools[0].current()
	ks, kf := keyOn(t, tr, tr.all[0]), keyOn(t, tr, tr.all[1])
	busy := testutil.Dial(t, addr)
	defer busy.Close()
	// More gets than the window admits: the loop's reader must wait.
	const n = 3 * initialWindow
	busy.Send([]byte(strings.Repeat("get "+ks+"\r\n", n)))
	testutil.WaitFor(t, func() bool { return tr.all[0].st.requests.Load() >= initialWindow })
	// The loop serves another client meanwhile.
	other := testutil.Dial(t, addr)
	defer other.Close()
	for range 3 {
		if got := roundTrip(other, "get "+kf+"\r\n", testutil.ValuesReply); got != "VALUE "+kf+" 0 1\r\nf\r\nEND\r\n" {
			t.Fatalf("other client: %q", got)
		}
	}
	close(gate)
	for i := range n {
		if got := string(busy.ReadReply(testutil.ValuesReply)); got != "VALUE "+ks+" 0 1\r\ns\r\nEND\r\n" {
			t.Fatalf("get %d: %q", i, got)
		}
	}
	// Idle again, the busy client is read by the loop again.
	testutil.WaitFor(t, func() bool { return loopClients(p) == 2 })
	if got := roundTrip(busy, "get "+kf+"\r\n", testutil.ValuesReply); got != "VALUE "+kf+" 0 1\r\nf\r\nEND\r\n" {
		t.Fatalf("after coming back: %q", got)
	}
}

// TestLoopTimeout checks that a server that reads requests and never
// answers times out in the loop: the request fails with "Connection
// timed out", the connection is closed and counted, and the next request
// is sent on a new connection.
func TestLoopTimeout(t *testing.T) {
	var conns atomic.Int32
	mute := testutil.FakeServer(t, func(nc net.Conn) {
		n := conns.Add(1)
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if n > 1 {
				key := strings.TrimSpace(strings.TrimPrefix(line, "get "))
				fmt.Fprintf(nc, "VALUE %s 0 1\r\nx\r\nEND\r\n", key)
			}
		}
	})
	p, addr := loopProxyFor(t, []string{mute}, "timeout: 200")
	c := testutil.Dial(t, addr)
	defer c.Close()
	start := time.Now()
	if got := roundTrip(c, "get a\r\n", testutil.LineReply); got != "SERVER_ERROR Connection timed out\r\n" {
		t.Fatalf("reply %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %v, want about 200ms", d)
	}
	if n := p.Stats().Pools[0].Servers[0].ServerTimedout; n != 1 {
		t.Errorf("server_timedout %d, want 1", n)
	}
	if got := roundTrip(c, "get b\r\n", testutil.ValuesReply); got != "VALUE b 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("after the timeout: %q", got)
	}
	if n := loopConns(p); n != 1 {
		t.Errorf("the loop reads %d server connections, want 1", n)
	}
}

// TestLoopServerCloses checks that a server that closes its connection
// fails the request in flight, and that the connection made after it,
// which takes its descriptor number and its slot in the loop, is served
// under a new generation: events of the closed one are never taken for
// its.
func TestLoopServerCloses(t *testing.T) {
	once := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		key := strings.TrimSpace(strings.TrimPrefix(line, "get "))
		fmt.Fprintf(nc, "VALUE %s 0 1\r\ny\r\nEND\r\n", key)
		r.ReadString('\n') // the second request: closed unanswered
	})
	p, addr := loopProxyFor(t, []string{once})
	bc := p.pools[0].current().all[0].conns[0]
	c := testutil.Dial(t, addr)
	defer c.Close()
	type reg struct {
		slot int32
		gen  uint32
		fd   int
	}
	var last reg
	reused := 0
	for i := range 10 {
		if got := roundTrip(c, "get b\r\n", testutil.ValuesReply); got != "VALUE b 0 1\r\ny\r\nEND\r\n" {
			t.Fatalf("round %d: reply %q", i, got)
		}
		bc.mu.Lock()
		p.loop.mu.Lock()
		now := reg{slot: bc.lslot, fd: -1}
		if now.slot != 0 {
			now.gen = p.loop.slots[now.slot].gen
		}
		if raw := rawConnOf(bc.nc); raw != nil {
			raw.Control(func(fd uintptr) { now.fd = int(fd) })
		}
		p.loop.mu.Unlock()
		bc.mu.Unlock()
		if now.slot == 0 {
			t.Fatalf("round %d: the connection is not in the loop", i)
		}
		if i > 0 {
			if now.slot == last.slot && now.gen == last.gen {
				t.Fatalf("round %d: a new connection has the closed one's slot %d and generation %d", i, now.slot, now.gen)
			}
			if now.fd == last.fd {
				reused++
			}
		}
		last = now
		if got := roundTrip(c, "get a\r\n", testutil.LineReply); !strings.HasPrefix(got, "SERVER_ERROR ") {
			t.Fatalf("round %d: reply %q from a server that closed", i, got)
		}
	}
	if n := p.Stats().Pools[0].Servers[0].ServerEOF; n != 10 {
		t.Errorf("server_eof %d, want 10", n)
	}
	t.Logf("descriptor numbers reused in %d of 9 reconnections", reused)
}

// TestLoopIdleClientDropsScratch checks that a client the loop reads
// that has been idle through a sweep holds no scratch, as a parked one,
// and is served again.
func TestLoopIdleClientDropsScratch(t *testing.T) {
	p, addr := loopProxySweep(t, 10*time.Millisecond, startCorvids(t, 2))
	c := testutil.Dial(t, addr)
	defer c.Close()
	for i := range 3 {
		useConn(t, c, i)
		p.mu.Lock()
		var cl *client
		for cl = range p.clients {
		}
		p.mu.Unlock()
		// The sweep drops it holding the loop's mutex.
		testutil.WaitFor(t, func() bool {
			p.loop.mu.Lock()
			defer p.loop.mu.Unlock()
			return cl.lp == p.loop && cl.readerScratch == nil && cl.buf == nil
		})
	}
}

// TestLoopTimeoutWhileServerSends checks that a call whose server keeps
// sending a reply that never ends times out in the loop, and that the
// loop serves another client meanwhile: a peer that keeps a
// socket readable does not hold it.
func TestLoopTimeoutWhileServerSends(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	endless := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		io.WriteString(nc, "VALUE a 0 1000000000\r\n")
		for {
			if _, err := nc.Write(chunk); err != nil {
				return
			}
		}
	})
	good := startCorvids(t, 1)[0]
	p, addr := loopProxyFor(t, []string{endless, good}, "timeout: 300")
	tr := p.pools[0].current()
	ka, kb := keyOn(t, tr, tr.all[0]), keyOn(t, tr, tr.all[1])
	c := testutil.Dial(t, addr)
	defer c.Close()
	other := testutil.Dial(t, addr)
	defer other.Close()
	c.Send([]byte("get " + ka + "\r\n"))
	for i := range 5 {
		if got := roundTrip(other, "get "+kb+"\r\n", testutil.ValuesReply); got != "END\r\n" {
			t.Fatalf("other client, get %d: %q", i, got)
		}
	}
	if got := string(c.ReadReply(testutil.LineReply)); got != "SERVER_ERROR Connection timed out\r\n" {
		t.Fatalf("reply %q", got)
	}
}

// loopRunners counts the goroutines running the event loop (and those
// that ran it and now read a client handed over).
func loopRunners() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "proxy.(*loop).run(")
}

// TestLoopRefusedWhileWaiting: a request that the read-buffer bound
// refuses, from a client whose window is full, makes the loop's goroutine
// wait for the window (handing the loop over) before the error line is
// queued; the client is then answered and closed, and exactly one
// goroutine runs the loop, whose slots stay consistent.
func TestLoopRefusedWhileWaiting(t *testing.T) {
	gate := make(chan struct{})
	slow := getServer(t, "s", gate)
	pc, err := nutcracker.Parse([]byte(poolYAML("127.0.0.1:0", []string{slow}, "timeout: 20000")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Pools: pc, EventLoop: true, ReadBufMemLimit: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	runProxy(t, p)
	addr := p.Addrs()["alpha"].String()
	tr := p.pools[0].current()
	c := testutil.Dial(t, addr)
	defer c.Close()
	testutil.WaitFor(t, func() bool { return loopClients(p) == 1 })
	// A full window of gets, then a set whose value the bound refuses.
	c.Send([]byte(strings.Repeat("get k\r\n", initialWindow) + fmt.Sprintf("set k 0 0 %d\r\nxx", 512<<10)))
	testutil.WaitFor(t, func() bool { return tr.all[0].st.requests.Load() == initialWindow && loopClients(p) == 0 })
	close(gate)
	for i := range initialWindow {
		if got := string(c.ReadReply(testutil.ValuesReply)); got != "VALUE k 0 1\r\ns\r\nEND\r\n" {
			t.Fatalf("get %d: %q", i, got)
		}
	}
	if got, err := c.TryReadReply(testutil.LineReply); err != nil || string(got) != oomLine {
		t.Errorf("after the gets: %q, %v; want %q", got, err, oomLine)
	}
	if got, err := c.TryReadReply(testutil.LineReply); err == nil {
		t.Errorf("after the error line: %q, want the connection closed", got)
	}
	// The loop still serves, from one goroutine.
	other := testutil.Dial(t, addr)
	defer other.Close()
	if got := roundTrip(other, "get k\r\n", testutil.ValuesReply); got != "VALUE k 0 1\r\ns\r\nEND\r\n" {
		t.Fatalf("another client: %q", got)
	}
	// (The goroutine that was the client's reader may still be ending it.)
	if !waitFor(10*time.Second, func() bool { return loopRunners() == 1 }) {
		t.Errorf("%d goroutines run the event loop, want 1", loopRunners())
	}
	p.loop.mu.Lock()
	for _, s := range p.loop.free {
		if s == 0 {
			t.Errorf("slot 0 (the eventfd's) was freed")
		}
	}
	p.loop.mu.Unlock()
}

// TestLoopTimeoutFramesWhatCame: calls whose replies came before their
// deadline, while the loop was busy, are answered, however much the
// server's socket holds when the loop then judges them: the loop drains
// the socket of an overdue call until it is empty (as rearm), not one
// buffer.
func TestLoopTimeoutFramesWhatCame(t *testing.T) {
	const (
		n    = initialWindow // sent at once
		size = 128 << 10
	)
	value := strings.Repeat("v", size)
	got, send := make(chan struct{}), make(chan struct{})
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for i := range n {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			if i == n-1 {
				close(got)
			}
		}
		select {
		case <-send:
		case <-t.Context().Done():
			return
		}
		var b strings.Builder
		for range n {
			fmt.Fprintf(&b, "VALUE k 0 %d\r\n%s\r\nEND\r\n", size, value)
		}
		io.WriteString(nc, b.String())
		io.Copy(io.Discard, nc)
	})
	p, addr := loopProxyFor(t, []string{srv}, "timeout: 300")
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte(strings.Repeat("get k\r\n", n)))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not get the requests")
	}
	// The server connection's socket takes all the replies at once.
	p.loop.mu.Lock()
	for _, s := range p.loop.slots {
		if s.rd != nil {
			if err := s.rd.nc.(*net.TCPConn).SetReadBuffer(4 << 20); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The loop is busy (here: held) while the replies come and the
	// calls' deadlines pass.
	close(send)
	time.Sleep(time.Second)
	p.loop.mu.Unlock()
	want := fmt.Sprintf("VALUE k 0 %d\r\n%s\r\nEND\r\n", size, value)
	for i := range n {
		if r := string(c.ReadReply(testutil.ValuesReply)); r != want {
			t.Fatalf("get %d of %d: %.60q", i, n, r)
		}
	}
}

//go:build linux

package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
)

// TestParkedClientWokenForwards checks that a reader that parks its client
// touches nothing of it afterwards: the reader the idler starts when the
// client sends again owns it alone (the race detector sees the old
// reader's accesses otherwise).
func TestParkedClientWokenForwards(t *testing.T) {
	p, addr := proxyFor(t, startCorvids(t, 1))
	c := testutil.Dial(t, addr)
	defer c.Close()
	for i := range 4 {
		testutil.WaitFor(t, func() bool { return parked(p) == 1 })
		key := fmt.Sprintf("wake%d", i)
		if got := roundTrip(c, fmt.Sprintf("set %s 0 0 1\r\nx\r\n", key), testutil.LineReply); got != "STORED\r\n" {
			t.Fatalf("set %s: %q", key, got)
		}
	}
}

// waitSweeps waits until p's idler has swept n more times.
func waitSweeps(t *testing.T, p *Proxy, n int64) {
	t.Helper()
	s0 := p.idle.sweeps.Load()
	testutil.WaitFor(t, func() bool { return p.idle.sweeps.Load() >= s0+n })
}

// TestSplitRequestsAcrossSweeps checks that a client whose request
// arrives in parts, with the idler's sweeps between them, is not parked
// with part of it held and loses nothing: a request line, a value, a
// too-large value being discarded, and a binary header.
func TestSplitRequestsAcrossSweeps(t *testing.T) {
	p, addr := proxyFor(t, startCorvids(t, 2))
	c := testutil.Dial(t, addr)
	defer c.Close()
	parts := []string{"set sp 0 0 5\r\nhe", "llo\r\nget s", "p\r\nset big 0 0 2000000\r\n" + strings.Repeat("x", 1000)}
	for _, s := range parts {
		c.Send([]byte(s))
		waitSweeps(t, p, 3)
		if n := idleParked(p); n != 0 {
			t.Fatalf("%d clients parked with part of a request read", n)
		}
	}
	c.Send([]byte(strings.Repeat("x", 2000000-1000) + "\r\nget big sp\r\n"))
	want := []string{"STORED\r\n", "VALUE sp 0 5\r\nhello\r\nEND\r\n",
		"SERVER_ERROR object too large for cache\r\n", "VALUE sp 0 5\r\nhello\r\nEND\r\n"}
	for i, w := range want {
		kind := testutil.LineReply
		if strings.HasPrefix(w, "VALUE") {
			kind = testutil.ValuesReply
		}
		if got := string(c.ReadReply(kind)); got != w {
			t.Fatalf("reply %d: %q, want %q", i, got, w)
		}
	}
	testutil.WaitFor(t, func() bool { return parked(p) == 1 })

	b := testutil.Dial(t, addr)
	defer b.Close()
	req := testutil.BinaryRequest{Opcode: 0x00, Key: []byte("sp"), Opaque: 7}.Bytes()
	for _, part := range [][]byte{req[:1], req[1:13], req[13:]} {
		b.Send(part)
		waitSweeps(t, p, 3)
	}
	r, err := b.ReadBinary()
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != 0 || string(r.Value()) != "hello" || r.Opaque() != 7 {
		t.Fatalf("binary get: %s", r)
	}
}

// TestParkedClientRepliesInOrder checks that a client woken from the
// idler by a pipeline whose second request completes first still gets
// its replies in request order, and parks again.
func TestParkedClientRepliesInOrder(t *testing.T) {
	gate := make(chan struct{})
	slow, fast := getServer(t, "s", gate), getServer(t, "f", nil)
	p, paddr := proxyFor(t, []string{slow, fast}, "timeout: 20000")
	tr := p.pools[0].current()
	ks, kf := keyOn(t, tr, tr.all[0]), keyOn(t, tr, tr.all[1])
	c := testutil.Dial(t, paddr)
	defer c.Close()
	for round := range 3 {
		testutil.WaitFor(t, func() bool { return parked(p) == 1 })
		before := tr.all[1].st.responses.Load()
		c.Send([]byte("get " + ks + "\r\nget " + kf + " " + kf + "\r\nmn\r\nget " + kf + "\r\n"))
		testutil.WaitFor(t, func() bool { return tr.all[1].st.responses.Load() == before+2 })
		waitSweeps(t, p, 3) // the client waits with calls in flight: not parked
		if n := idleParked(p); n != 0 {
			t.Fatalf("round %d: parked with a call in flight", round)
		}
		gate <- struct{}{}
		vs, vf := "VALUE "+ks+" 0 1\r\ns\r\n", "VALUE "+kf+" 0 1\r\nf\r\n"
		want := []string{vs + "END\r\n", vf + vf + "END\r\n", "MN\r\n", vf + "END\r\n"}
		for i, w := range want {
			kind := testutil.ValuesReply
			if w == "MN\r\n" {
				kind = testutil.LineReply
			}
			if got := string(c.ReadReply(kind)); got != w {
				t.Fatalf("round %d reply %d: %q, want %q", round, i, got, w)
			}
		}
	}
}

// TestKickDeadlineWithoutFlag checks that a sweep's past read deadline is
// a kick even when the reader has already taken the kick flag. A reader
// that runs late (a loaded machine) can take the flag set by one sweep
// between the next sweep's setting of the flag and of the deadline: it
// then clears the deadline and goes on, and the deadline set next finds
// the flag cleared. The client must go on being served, not be closed.
func TestKickDeadlineWithoutFlag(t *testing.T) {
	p, addr := proxyFor(t, startCorvids(t, 1))
	c := testutil.Dial(t, addr)
	defer c.Close()
	if got := roundTrip(c, "set kd 0 0 1\r\nx\r\n", testutil.LineReply); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	p.mu.Lock()
	var cl *client
	for cl = range p.clients {
	}
	p.mu.Unlock()
	// Waiting for input (or, on a slow machine, parked already: its next
	// reader then meets the deadline).
	testutil.WaitFor(t, func() bool { return cl.waiting.Load() || parked(p) == 1 })
	// The second half of the sweep whose flag the reader took.
	cl.nc.SetReadDeadline(longAgo)
	if got := roundTrip(c, "get kd\r\n", testutil.ValuesReply); got != "VALUE kd 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("get after a kick: %q", got)
	}
}

// startProxySweep is startProxy with the idler sweeping every sweep, so
// that clients park between requests within a test's time.
func startProxySweep(t *testing.T, conf string, sweep time.Duration) *Proxy {
	t.Helper()
	pc, err := nutcracker.Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Pools: pc})
	if err != nil {
		t.Fatal(err)
	}
	p.idle.sweep = sweep // before Serve starts the idler
	runProxy(t, p)
	return p
}

// TestPipelinesWhileParking runs clients that send pipelines of sets,
// split multi-gets and the proxy's own replies, written in two parts cut
// anywhere, and wait between them for the idler to sweep (so that they
// park and are woken), over servers with two connections each; every
// reply must be exactly the one expected, in order.
func TestPipelinesWhileParking(t *testing.T) {
	s := startCorvids(t, 3)
	p := startProxySweep(t, poolYAML("127.0.0.1:0", s, "server_connections: 2", "timeout: 20000"), 5*time.Millisecond)
	addr := p.Addrs()["alpha"].String()
	const clients, rounds, keys = 8, 25, 6
	errs := make(chan error, clients)
	var sawParked atomic.Int64 // rounds after which some client was parked
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pipelineClient(p, addr, id, rounds, keys, &sawParked)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if sawParked.Load() == 0 {
		t.Errorf("no client was seen parked")
	}
}

// pipelineClient is one client of TestPipelinesWhileParking.
func pipelineClient(p *Proxy, addr string, id, rounds, keys int, sawParked *atomic.Int64) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	rd := bufio.NewReader(nc)
	rng := rand.New(rand.NewPCG(uint64(id), 1))
	for round := range rounds {
		var req, want strings.Builder
		var names []string
		for i := range keys {
			k := fmt.Sprintf("pc%d-%d", id, i)
			v := fmt.Sprintf("v%d-%d-%d", id, round, i)
			names = append(names, k)
			fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
			want.WriteString("STORED\r\n")
		}
		req.WriteString("get " + strings.Join(names, " ") + " " + names[0] + "\r\nversion\r\n")
		for i, k := range append(names, names[0]) {
			fmt.Fprintf(&want, "VALUE %s 0 %d\r\nv%d-%d-%d\r\n", k, len(fmt.Sprintf("v%d-%d-%d", id, round, i%keys)), id, round, i%keys)
		}
		want.WriteString("END\r\nVERSION " + DefaultVersion + "\r\n")
		fmt.Fprintf(&req, "get %s\r\nmn\r\n", names[keys-1])
		fmt.Fprintf(&want, "VALUE %s 0 %d\r\nv%d-%d-%d\r\nEND\r\nMN\r\n", names[keys-1],
			len(fmt.Sprintf("v%d-%d-%d", id, round, keys-1)), id, round, keys-1)
		b := []byte(req.String())
		cut := rng.IntN(len(b)-1) + 1
		if _, err := nc.Write(b[:cut]); err != nil {
			return err
		}
		if _, err := nc.Write(b[cut:]); err != nil {
			return err
		}
		got := make([]byte, want.Len())
		if _, err := io.ReadFull(rd, got); err != nil {
			return fmt.Errorf("client %d round %d: %v (read %q)", id, round, err, got)
		}
		if string(got) != want.String() {
			return fmt.Errorf("client %d round %d:\n got %q\nwant %q", id, round, got, want.String())
		}
		// Wait through two sweeps: the client may park.
		s0 := p.idle.sweeps.Load()
		for deadline := time.Now().Add(10 * time.Second); p.idle.sweeps.Load() < s0+2; {
			if time.Now().After(deadline) {
				return fmt.Errorf("client %d: the idler does not sweep", id)
			}
			time.Sleep(time.Millisecond)
		}
		if parked(p) > 0 {
			sawParked.Add(1)
		}
	}
	return nil
}

// TestBinaryPipelinesWhileParking is TestPipelinesWhileParking for binary
// clients: quiet sets, quiet gets of hits and a miss, a get and a noop.
func TestBinaryPipelinesWhileParking(t *testing.T) {
	s := startCorvids(t, 3)
	p := startProxySweep(t, poolYAML("127.0.0.1:0", s, "server_connections: 2", "timeout: 20000"), 5*time.Millisecond)
	addr := p.Addrs()["alpha"].String()
	const clients, rounds, keys = 6, 20, 6
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- binaryPipelineClient(p, addr, id, rounds, keys)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// binaryPipelineClient is one client of TestBinaryPipelinesWhileParking.
func binaryPipelineClient(p *Proxy, addr string, id, rounds, keys int) error {
	const (
		opGet, opNoop, opGetKQ, opSetQ = 0x00, 0x0a, 0x0d, 0x11
	)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	rd := bufio.NewReader(nc)
	rng := rand.New(rand.NewPCG(uint64(id), 2))
	type reply struct {
		op     byte
		opaque uint32
		value  string
	}
	for round := range rounds {
		var req []byte
		var want []reply
		opaque := uint32(0)
		value := func(i int) string { return fmt.Sprintf("b%d-%d-%d", id, round, i) }
		key := func(i int) []byte { return fmt.Appendf(nil, "bk%d-%d", id, i) }
		for i := range keys {
			opaque++
			req = append(req, testutil.BinaryRequest{Opcode: opSetQ, Opaque: opaque, Extras: make([]byte, 8),
				Key: key(i), Value: []byte(value(i))}.Bytes()...)
		}
		for i := range keys + 1 {
			opaque++
			k := key(i)
			if i == keys {
				k = []byte("absent") // a quiet miss: no reply
			}
			req = append(req, testutil.BinaryRequest{Opcode: opGetKQ, Opaque: opaque, Key: k}.Bytes()...)
			if i < keys {
				want = append(want, reply{opGetKQ, opaque, value(i)})
			}
		}
		opaque++
		req = append(req, testutil.BinaryRequest{Opcode: opGet, Opaque: opaque, Key: key(0)}.Bytes()...)
		want = append(want, reply{opGet, opaque, value(0)})
		opaque++
		req = append(req, testutil.BinaryRequest{Opcode: opNoop, Opaque: opaque}.Bytes()...)
		want = append(want, reply{opNoop, opaque, ""})
		cut := rng.IntN(len(req)-1) + 1
		if _, err := nc.Write(req[:cut]); err != nil {
			return err
		}
		if _, err := nc.Write(req[cut:]); err != nil {
			return err
		}
		for j, w := range want {
			var h [24]byte
			if _, err := io.ReadFull(rd, h[:]); err != nil {
				return fmt.Errorf("client %d round %d reply %d: %v", id, round, j, err)
			}
			body := make([]byte, binary.BigEndian.Uint32(h[8:]))
			if _, err := io.ReadFull(rd, body); err != nil {
				return fmt.Errorf("client %d round %d reply %d: %v", id, round, j, err)
			}
			ext, kl := int(h[4]), int(binary.BigEndian.Uint16(h[2:]))
			got := reply{h[1], binary.BigEndian.Uint32(h[12:]), string(body[ext+kl:])}
			if st := binary.BigEndian.Uint16(h[6:]); st != 0 || got != w {
				return fmt.Errorf("client %d round %d reply %d: %+v status %d, want %+v", id, round, j, got, st, w)
			}
		}
		s0 := p.idle.sweeps.Load()
		for deadline := time.Now().Add(10 * time.Second); p.idle.sweeps.Load() < s0+2; {
			if time.Now().After(deadline) {
				return fmt.Errorf("client %d: the idler does not sweep", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// TestParkClosedConnection checks that a client whose connection was
// closed (a failed write closes it from another goroutine, while its
// reader, woken by a kick, is about to park it) is not parked: its
// descriptor's number may already be a new connection's, whose events
// would then resume the wrong client, and which could not park itself.
func TestParkClosedConnection(t *testing.T) {
	p, _ := proxyFor(t, startCorvids(t, 1))
	testutil.WaitFor(t, func() bool { return p.idle.sweeps.Load() > 0 }) // the idler runs
	// Connections to a listener that accepts none: the test's dials are
	// the only descriptors made meanwhile.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(p, nc)
	cl.pool = p.pools[0]
	nc.Close()
	// A new connection takes the lowest free descriptor: the one just
	// closed.
	other, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ofd := int32(-1)
	if sc, err := other.(*net.TCPConn).SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { ofd = int32(fd) })
	}
	if ofd != cl.fd {
		t.Skipf("the new connection has descriptor %d, not the closed one's %d", ofd, cl.fd)
	}
	if p.idle.park(cl) {
		p.idle.mu.Lock()
		p.idle.takeLocked(cl.fd)
		p.idle.mu.Unlock()
		t.Fatalf("a client whose connection is closed was parked, on descriptor %d, another connection's", cl.fd)
	}
}

// TestParkedClientKeepsNoQueue checks that a client that once pipelined
// many requests keeps none of the queue they needed once it is parked:
// a parked client costs the same whatever it sent before.
func TestParkedClientKeepsNoQueue(t *testing.T) {
	p, addr := proxyFor(t, startCorvids(t, 1))
	c := testutil.Dial(t, addr)
	defer c.Close()
	if got := roundTrip(c, "set q 0 0 1\r\nx\r\n", testutil.LineReply); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	const n = 2000
	c.Send([]byte(strings.Repeat("get q\r\n", n)))
	for i := range n {
		if got := string(c.ReadReply(testutil.ValuesReply)); got != "VALUE q 0 1\r\nx\r\nEND\r\n" {
			t.Fatalf("get %d: %q", i, got)
		}
	}
	testutil.WaitFor(t, func() bool { return parked(p) == 1 })
	p.mu.Lock()
	var cl *client
	for cl = range p.clients {
	}
	p.mu.Unlock()
	cl.mu.Lock()
	kept := cap(cl.queue.q)
	cl.mu.Unlock()
	if kept > 0 {
		t.Errorf("a parked client keeps a queue of %d calls (%d bytes)", kept, kept*8)
	}
}

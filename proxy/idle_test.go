//go:build linux

package proxy

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// parked returns how many clients p's idler watches, and with
// Config.EventLoop, how many its event loop reads (they hold no
// goroutine either).
func parked(p *Proxy) int {
	p.idle.mu.Lock()
	n := len(p.idle.parked)
	p.idle.mu.Unlock()
	return n + loopClients(p)
}

// idleParked returns how many clients p's idler watches: with
// Config.EventLoop, none (a client the loop reads holds no goroutine,
// busy or not, and is not parked).
func idleParked(p *Proxy) int {
	p.idle.mu.Lock()
	defer p.idle.mu.Unlock()
	return len(p.idle.parked)
}

// loopClients returns how many clients p's event loop reads.
func loopClients(p *Proxy) int {
	if p.loop == nil {
		return 0
	}
	p.loop.mu.Lock()
	defer p.loop.mu.Unlock()
	n := 0
	for _, s := range p.loop.slots {
		if s.cl != nil {
			n++
		}
	}
	return n
}

// useConn sets key i, gets it and gets keys spread over the servers,
// checking the replies.
func useConn(t *testing.T, c *testutil.Conn, i int) {
	t.Helper()
	key := fmt.Sprintf("idle%d", i)
	if got := roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(key), key), testutil.LineReply); got != "STORED\r\n" {
		t.Fatalf("set %s: %q", key, got)
	}
	want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(key), key)
	if got := roundTrip(c, "get "+key+"\r\n", testutil.ValuesReply); got != want {
		t.Fatalf("get %s: %q, want %q", key, got, want)
	}
	var keys []string
	for k := range 12 {
		keys = append(keys, fmt.Sprintf("absent%d", k))
	}
	keys = append(keys, key)
	if got := roundTrip(c, "get "+strings.Join(keys, " ")+"\r\n", testutil.ValuesReply); got != want {
		t.Fatalf("multi-get: %q, want %q", got, want)
	}
}

// allConnected reports whether every server of st has a connection.
func allConnected(st PoolStats) bool {
	for _, s := range st.Servers {
		if s.ServerConnections == 0 {
			return false
		}
	}
	return true
}

// TestIdleClientsHoldNoGoroutine checks that clients that sent nothing, or
// sent requests and then waited, hold no goroutine, and are served again
// when they send.
func TestIdleClientsHoldNoGoroutine(t *testing.T) {
	const n = 40
	p, addr := proxyFor(t, startCorvids(t, 3))
	// The server connections are made on first use, each with a reader
	// goroutine in the proxy and one in its in-process server: a get of a
	// key on every server makes them all before the goroutines are
	// counted (useConn's keys may all fall on one server).
	warm := testutil.Dial(t, addr)
	useConn(t, warm, -1)
	tr := p.pools[0].current()
	for _, b := range tr.all {
		k := keyOn(t, tr, b)
		if got := roundTrip(warm, "get "+k+"\r\n", testutil.ValuesReply); got != "END\r\n" {
			t.Fatalf("get %s: %q", k, got)
		}
	}
	if st := p.Stats().Pools[0]; !allConnected(st) {
		t.Fatalf("server connections after the warm-up: %+v", st.Servers)
	}
	warm.Close()
	testutil.WaitFor(t, func() bool { return p.Stats().CurrConnections == 0 })
	before := runtime.NumGoroutine()

	silent := make([]*testutil.Conn, n)
	used := make([]*testutil.Conn, n)
	for i := range n {
		silent[i] = testutil.Dial(t, addr)
		defer silent[i].Close()
		used[i] = testutil.Dial(t, addr)
		defer used[i].Close()
		useConn(t, used[i], i)
	}
	// Every client parks, and then holds no goroutine (the slack is for
	// goroutines of the runtime and the test).
	testutil.WaitFor(t, func() bool { return parked(p) == 2*n })
	testutil.WaitFor(t, func() bool { return runtime.NumGoroutine() <= before+2 })
	// Parked clients are served when they send, and park again.
	for i := range n {
		useConn(t, silent[i], n+i)
		useConn(t, used[i], i)
	}
	testutil.WaitFor(t, func() bool { return parked(p) == 2*n })
	// One that disconnects while parked is counted out.
	used[0].Close()
	testutil.WaitFor(t, func() bool { return p.Stats().CurrConnections == 2*n-1 })
	if st := p.Stats(); st.Pools[0].ClientEOF != 2 {
		t.Errorf("client_eof %d, want 2", st.Pools[0].ClientEOF)
	}
}

// TestIdleClientBusyDoesNotPark checks that a client with a request in
// flight is not parked however long it waits.
func TestIdleClientBusyDoesNotPark(t *testing.T) {
	release := make(chan struct{})
	got := make(chan struct{}, 1)
	slow := testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 64)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
			got <- struct{}{}
			<-release
			io.WriteString(nc, "END\r\n")
		}
	})
	p, addr := proxyFor(t, []string{slow})
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte("get k\r\n"))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the server")
	}
	// The client sits out sweeps, kicked by each.
	s0 := p.idle.sweeps.Load()
	testutil.WaitFor(t, func() bool { return p.idle.sweeps.Load() >= s0+3 })
	if n := idleParked(p); n != 0 {
		t.Errorf("%d clients parked with a request in flight", n)
	}
	close(release)
	if r := string(c.ReadReply(testutil.ValuesReply)); r != "END\r\n" {
		t.Fatalf("reply %q", r)
	}
	testutil.WaitFor(t, func() bool { return parked(p) == 1 })
}

// TestIdleClientOfRemovedPool checks that a parked client of a pool a
// reload removes is disconnected, so that the reload completes.
func TestIdleClientOfRemovedPool(t *testing.T) {
	s := startCorvids(t, 1)
	sock := filepath.Join(t.TempDir(), "beta.sock")
	p := startProxy(t, twoPoolYAML(sock, []string{s[0] + ":1"}, []string{s[0] + ":1"}))
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := testutil.Dial(t, p.Addrs()["alpha"].String())
	defer c.Close()
	testutil.WaitFor(t, func() bool { return parked(p) == 2 })
	if err := p.Reload(parseConf(t, twoPoolYAML(sock, []string{s[0] + ":1"}, nil))); err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if r, err := io.ReadAll(nc); err != nil || len(r) != 0 {
		t.Fatalf("the removed pool's client read %q, %v; want the end of the connection", r, err)
	}
	// The kept pool's client is still served.
	useConn(t, c, 0)
}

// TestIdleClientsAtClose checks that Close ends parked clients.
func TestIdleClientsAtClose(t *testing.T) {
	p, addr := proxyFor(t, startCorvids(t, 1))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testutil.WaitFor(t, func() bool { return parked(p) == 1 })
	p.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if r, err := io.ReadAll(nc); err != nil || len(r) != 0 {
		t.Fatalf("read %q, %v; want the end of the connection", r, err)
	}
	if n := p.Stats().CurrConnections; n != 0 {
		t.Errorf("curr_connections %d after Close", n)
	}
}

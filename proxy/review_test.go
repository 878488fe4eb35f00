package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// TestGatWithoutKeys: "gat <exptime>" with no key is answered END, as
// memcached answers it, in order, whatever the number of servers; it
// must not leave the client waiting (nor the proxy's Close).
func TestGatWithoutKeys(t *testing.T) {
	for _, n := range []int{1, 3} {
		backends := startCorvids(t, n)
		_, addr := proxyFor(t, backends)
		c := testutil.Dial(t, addr)
		if r := roundTrip(c, "set k 0 0 1\r\nv\r\n", testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
		c.Send([]byte("gat 10\r\ngats 0\r\nget k\r\n"))
		for i, want := range []string{"END\r\n", "END\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n"} {
			r, err := c.TryReadReply(testutil.ValuesReply)
			if err != nil || string(r) != want {
				t.Fatalf("%d servers, reply %d: %q, %v; want %q", n, i, r, err, want)
			}
		}
		c.Close()
	}
}

// TestTooLargeRemovesOldValue: memcached answers a set (and an ms, in any
// mode) whose value is too large with an error and removes the key's old
// value, so that a client never reads the value it meant to replace; add,
// replace, append, prepend and cas keep it. Refusing at the proxy must do
// the same.
func TestTooLargeRemovesOldValue(t *testing.T) {
	backends := startCorvids(t, 3)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	defer c.Close()
	big := strings.Repeat("x", DefaultMaxValueLen+1)
	steps := []struct{ key, req string }{
		{"s", "set s 0 0 %d\r\n%s\r\n"},
		{"sn", "set sn 0 0 %d noreply\r\n%s\r\n"},
		{"msk", "ms msk %d MA\r\n%s\r\n"},
		{"b64noreply", "ms YjY0bm9yZXBseQ== %d b\r\n%s\r\n"}, // key "b64noreply"
		{"a", "add a 0 0 %d\r\n%s\r\n"},
		{"p", "append p 0 0 %d\r\n%s\r\n"},
	}
	for _, s := range steps {
		if r := roundTrip(c, "set "+s.key+" 0 0 3\r\nold\r\n", testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set %s: %q", s.key, r)
		}
		c.Send([]byte(fmt.Sprintf(s.req, len(big), big)))
		if !strings.Contains(s.req, "noreply") {
			if r := string(c.ReadReply(testutil.LineReply)); r != "SERVER_ERROR object too large for cache\r\n" {
				t.Errorf("%q: %q", s.req[:20], r)
			}
		}
	}
	for _, s := range steps {
		want := "END\r\n"
		if s.key == "a" || s.key == "p" {
			want = "VALUE " + s.key + " 0 3\r\nold\r\nEND\r\n"
		}
		if r := roundTrip(c, "get "+s.key+"\r\n", testutil.ValuesReply); r != want {
			t.Errorf("get %s after a too large %q: %q, want %q", s.key, s.req[:strings.IndexByte(s.req, ' ')], r, want)
		}
	}
}

// TestCloseWithStuckPeers: Close returns within a bound while a server
// never answers (the pool has no timeout), a client never reads its
// replies, and another is in the middle of a request.
func TestCloseWithStuckPeers(t *testing.T) {
	silent := testutil.FakeServer(t, func(nc net.Conn) {
		io.Copy(io.Discard, nc) // reads, never answers
	})
	live := startCorvids(t, 1)[0]
	addrs := []string{live, silent}
	pc, err := nutcracker.Parse([]byte(poolYAML("127.0.0.1:0", addrs)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Pools: pc})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(context.Background()) }()
	addr := p.Addrs()["alpha"].String()
	rg := testRing(t, addrs)
	var liveKeys []string
	silentKey := ""
	for i := 0; (len(liveKeys) < 50 || silentKey == "") && i < 100000; i++ {
		k := fmt.Sprintf("k%d", i)
		if rg.PickString(k) == 0 {
			liveKeys = append(liveKeys, k)
		} else {
			silentKey = k
		}
	}
	c := testutil.Dial(t, addr)
	value := strings.Repeat("v", 100<<10)
	for _, k := range liveKeys[:50] {
		if r := roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(value), value), testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	// A client waiting for the silent server.
	c.Send([]byte("get " + silentKey + "\r\n"))
	// A client that never reads: write until the proxy stops reading it.
	reader, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	req := []byte("get " + strings.Join(liveKeys[:50], " ") + "\r\n")
	for range 10000 {
		reader.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := reader.Write(req); err != nil {
			break
		}
	}
	// A client in the middle of a set.
	half := testutil.Dial(t, addr)
	half.Send([]byte("set h 0 0 10\r\nabc"))
	testutil.WaitFor(t, func() bool { return p.Stats().CurrConnections == 3 })

	closed := make(chan struct{})
	start := time.Now()
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("Close did not return within 10s")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
}

// TestMultiGetDuplicateKeys: a get that names one key many times is
// answered with the value each time, as memcached answers it, but the
// proxy fetches the value once: otherwise one short request line makes it
// read and buffer the value as many times as the key is named (a 1 MiB
// line names a key half a million times).
func TestMultiGetDuplicateKeys(t *testing.T) {
	for _, n := range []int{1, 3} {
		backends := startCorvids(t, n)
		p, addr := proxyFor(t, backends)
		c := testutil.Dial(t, addr)
		value := strings.Repeat("v", 4<<10)
		for _, k := range []string{"a", "b"} {
			if r := roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(value), value), testutil.LineReply); r != "STORED\r\n" {
				t.Fatalf("set: %q", r)
			}
		}
		responseBytes := func() (n int64) {
			for _, s := range p.Stats().Pools[0].Servers {
				n += s.ResponseBytes
			}
			return n
		}
		before := responseBytes()
		const dups = 500
		req := "get" + strings.Repeat(" a miss b", dups) + "\r\n"
		r := roundTrip(c, req, testutil.ValuesReply)
		block := func(k string) string { return fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\n", k, len(value), value) }
		if want := strings.Repeat(block("a")+block("b"), dups) + "END\r\n"; r != want {
			t.Fatalf("%d servers: reply of %d bytes %s, want %d bytes", n, len(r), testutil.Quote([]byte(r), 100), len(want))
		}
		if read := responseBytes() - before; read > 4*int64(len(value)) {
			t.Errorf("%d servers: the proxy read %d bytes from servers for two values of %d bytes", n, read, len(value))
		}
		c.Close()
	}
}

// TestServerConnectionsKeepClientOrder: with several connections per
// server, a client's requests to one server still run in the order it
// sent them, as on one memcached connection: a get pipelined after a set
// of the same key sees that set.
func TestServerConnectionsKeepClientOrder(t *testing.T) {
	_, addr := proxyFor(t, startCorvids(t, 2), "server_connections: 4")
	c := testutil.Dial(t, addr)
	defer c.Close()
	for round := range 20 {
		var req strings.Builder
		for i := range 50 {
			v := fmt.Sprintf("%d-%d", round, i)
			k := fmt.Sprintf("k%d", i%5)
			fmt.Fprintf(&req, "set %s 0 0 %d noreply\r\n%s\r\nget %s\r\n", k, len(v), v, k)
		}
		c.Send([]byte(req.String()))
		for i := range 50 {
			v := fmt.Sprintf("%d-%d", round, i)
			k := fmt.Sprintf("k%d", i%5)
			want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)
			if r := string(c.ReadReply(testutil.ValuesReply)); r != want {
				t.Fatalf("round %d, get %d: %q, want %q", round, i, r, want)
			}
		}
	}
}

// TestStatsBeforeServerIsUp: requests sent before their server accepts
// connections fail with twemproxy's error and are counted as requests
// without responses (nutcracker counts the same); once the server is up
// the next ones are answered by it and counted as responses.
func TestStatsBeforeServerIsUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, paddr := proxyFor(t, []string{addr})
	c := testutil.Dial(t, paddr)
	defer c.Close()
	c.Send([]byte("get a\r\nget b\r\nset c 0 0 1\r\nx\r\n"))
	for range 3 {
		if r := string(c.ReadReply(testutil.LineReply)); r != "SERVER_ERROR Connection refused\r\n" {
			t.Fatalf("before the server is up: %q", r)
		}
	}
	s := p.Stats().Pools[0]
	if ss := s.Servers[0]; ss.Requests != 3 || ss.Responses != 0 || ss.ServerConnections != 0 || ss.ServerErr == 0 || s.ForwardError != 3 {
		t.Errorf("stats before the server is up: %+v, forward_error %d", ss, s.ForwardError)
	}
	srv, err := server.New(server.Config{TCPAddrs: []string{addr}})
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); srv.Close(); <-served }()
	if r := roundTrip(c, "set c 0 0 1\r\ny\r\n", testutil.LineReply); r != "STORED\r\n" {
		t.Fatalf("once the server is up: %q", r)
	}
	if r := roundTrip(c, "get c\r\n", testutil.ValuesReply); r != "VALUE c 0 1\r\ny\r\nEND\r\n" {
		t.Fatalf("once the server is up: %q", r)
	}
	if ss := p.Stats().Pools[0].Servers[0]; ss.Requests != 5 || ss.Responses != 2 || ss.ServerConnections != 1 {
		t.Errorf("stats once the server is up: %+v", ss)
	}
}

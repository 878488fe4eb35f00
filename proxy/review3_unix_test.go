//go:build unix

package proxy

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// unixServer listens on a Unix socket and runs handle for each connection
// on a goroutine of its own, until the test ends.
func unixServer(t *testing.T, handle func(nc net.Conn)) string {
	t.Helper()
	return testutil.FakeServerOn(t, "unix", filepath.Join(t.TempDir(), "srv.sock"), handle)
}

// A server on a Unix socket whose replies are larger than a server
// connection's read buffer, several times over, and that closes its
// connection with the last reply's bytes: every reply arrives whole, the
// close fails nothing answered, and the next request connects again.
func TestUnixServerBigReplyThenClose(t *testing.T) {
	const size = 3 << 20 // past maxKeptReadBuf: the buffer grows, then shrinks
	value := strings.Repeat("v", size)
	sock := unixServer(t, func(nc net.Conn) {
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			key := strings.TrimPrefix(sc.Text(), "get ")
			reply := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, size, value)
			if key == "last" {
				// The reply and the close in one go.
				nc.Write([]byte(reply))
				return
			}
			if _, err := nc.Write([]byte(reply)); err != nil {
				return
			}
		}
	})
	p := startProxy(t, poolYAML("127.0.0.1:0", []string{sock}, "timeout: 5000"))
	c := testutil.Dial(t, p.Addrs()["alpha"].String())
	defer c.Close()
	for round := range 2 {
		c.Send([]byte("get a\r\nget b\r\nget last\r\n"))
		for _, k := range []string{"a", "b", "last"} {
			want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, size, value)
			if got := string(c.ReadReply(testutil.ValuesReply)); got != want {
				t.Fatalf("round %d, get %s: reply of %d bytes %q..., want %d bytes", round, k, len(got), testutil.Quote([]byte(got), 40), len(want))
			}
		}
		testutil.WaitFor(t, func() bool { return p.Stats().Pools[0].Servers[0].ServerConnections == 0 })
	}
	s := p.Stats().Pools[0]
	if s.ForwardError != 0 || s.Servers[0].Responses != 6 {
		t.Errorf("stats: %+v", s)
	}
}

// A server that resets its connection fails the request in flight with a
// server error, and the next request is served on a new connection.
func TestServerReset(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			if sc.Text() == "get reset" {
				nc.(*net.TCPConn).SetLinger(0)
				return
			}
			if _, err := nc.Write([]byte("END\r\n")); err != nil {
				return
			}
		}
	})
	p, addr := proxyFor(t, []string{srv}, "timeout: 5000")
	c := testutil.Dial(t, addr)
	defer c.Close()
	if r := roundTrip(c, "get a\r\n", testutil.LineReply); r != "END\r\n" {
		t.Fatalf("reply %q", r)
	}
	if r := roundTrip(c, "get reset\r\n", testutil.LineReply); !strings.HasPrefix(r, "SERVER_ERROR ") {
		t.Fatalf("reply to a reset %q", r)
	}
	if r := roundTrip(c, "get a\r\n", testutil.LineReply); r != "END\r\n" {
		t.Fatalf("reply after a reset %q", r)
	}
	if s := p.Stats().Pools[0].Servers[0]; s.ServerErr+s.ServerEOF != 1 {
		t.Errorf("stats: %+v", s)
	}
}

// Closing the proxy while its server connections' readers wait for
// replies that never come (no timeout), and clients' readers wait for
// requests, returns promptly, failing the requests in flight.
func TestCloseWithReadersWaiting(t *testing.T) {
	silent := unixServer(t, func(nc net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
		}
	})
	pc := parseConf(t, poolYAML("127.0.0.1:0", []string{silent}, "server_connections: 2"))
	p, err := New(Config{Pools: pc})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(t.Context()) }()
	addr := p.Addrs()["alpha"].String()
	var cs []*testutil.Conn
	for i := range 4 {
		c := testutil.Dial(t, addr)
		cs = append(cs, c)
		c.Send(fmt.Appendf(nil, "get k%d\r\n", i))
	}
	idle := testutil.Dial(t, addr) // a client with nothing to say
	_ = idle
	testutil.WaitFor(t, func() bool { return p.Stats().Pools[0].Servers[0].OutQueue == 4 })
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	for i, c := range cs {
		if r, err := c.TryReadReply(testutil.LineReply); err == nil && !strings.HasPrefix(string(r), "SERVER_ERROR") {
			t.Errorf("client %d: reply %q", i, r)
		}
	}
}

package proxy

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestReplyBufsBoundManyClients: however many clients take replies and
// never release them, the total held stays within the limit plus its
// allowance, and a client holding nothing can take the largest reply
// while the total is at the limit.
func TestReplyBufsBoundManyClients(t *testing.T) {
	const limit, reply = 64 << 20, 1<<20 + replyOverhead
	m := newReplyBufs(limit, reply)
	if m.over != limit/8 || m.solo != 2*reply {
		t.Fatalf("allowance %d, per client %d; want %d, %d", m.over, m.solo, limit/8, 2*reply)
	}
	clients := make([]atomic.Int64, 500)
	for round := range 8 {
		for i := range clients {
			m.take(&clients[i], reply, func() bool { return false })
			if got := m.bytes.Load(); got > limit+m.over {
				t.Fatalf("round %d, client %d: %d bytes held, bound %d", round, i, got, limit+m.over)
			}
		}
	}
	var sum int64
	for i := range clients {
		sum += clients[i].Load()
	}
	if sum != m.bytes.Load() {
		t.Fatalf("clients hold %d bytes, total %d", sum, m.bytes.Load())
	}
	// Those that hold replies leave half of the allowance to a client
	// that holds nothing and reads.
	var fresh atomic.Int64
	if !m.take(&fresh, reply, func() bool { return true }) {
		t.Errorf("a client holding nothing cannot take a reply with %d bytes held", m.bytes.Load())
	}
}

// dialSmallWindow connects to addr with a small receive buffer, so that
// what the client does not read stays in the proxy rather than in the
// sockets.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			setRcvBuf(fd, 4<<10)
		})
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// TestUnreadClientsClosedPastLimit: clients that pipeline gets of large
// values and never read cannot make the proxy hold more than
// WriteBufMemLimit plus its allowance; once the total is past the limit,
// those whose socket takes nothing for stallGrace are closed and counted
// in write_buf_oom (the requests they sent are not forwarded), and a
// client that reads gets its values meanwhile.
func TestUnreadClientsClosedPastLimit(t *testing.T) {
	backends := startCorvids(t, 2)
	const size, limit = 200 << 10, 2 << 20
	p := serveProxy(t, Config{MaxValueLen: 256 << 10, WriteBufMemLimit: limit}, poolYAML("127.0.0.1:0", backends))
	addr := p.Addrs()["alpha"].String()
	bound := p.replies.limit + p.replies.over
	value := strings.Repeat("v", size)
	c := testutil.Dial(t, addr)
	defer c.Close()
	var gets strings.Builder
	for i := range 4 {
		if r := roundTrip(c, fmt.Sprintf("set big%d 0 0 %d\r\n%s\r\n", i, size, value), testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	// One read of the proxy's takes them all.
	const pipelined = 300
	for i := range pipelined {
		fmt.Fprintf(&gets, "get big%d\r\n", i%4)
	}
	ours := 4 // the requests of c
	forwarded := func() (n int) {
		for _, s := range p.Stats().Pools[0].Servers {
			n += int(s.Requests)
		}
		return n
	}
	const unread = 16
	var conns []net.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range unread {
		nc := dialSmallWindow(t, addr)
		conns = append(conns, nc)
		if _, err := io.WriteString(nc, gets.String()); err != nil {
			t.Fatal(err)
		}
	}
	// Held replies reach the limit, never the bound, and clients that do
	// not read are closed until the rest hold less than the limit.
	reached := false
	for deadline := time.Now().Add(30 * time.Second); p.replies.oom.Load() == 0 || p.replies.pastLimit() || ours < 20; {
		held := p.replies.bytes.Load()
		if held > bound {
			t.Fatalf("%d bytes of replies held, bound %d", held, bound)
		}
		reached = reached || held > limit/2 || p.replies.oom.Load() > 0
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d clients closed for not reading, %d bytes held, limit %d", p.replies.oom.Load(), held, limit)
		}
		if reached {
			// A client that reads is served while the others hold the
			// limit.
			want := fmt.Sprintf("VALUE big1 0 %d\r\n%s\r\nEND\r\n", size, value)
			ours++
			if r := roundTrip(c, "get big1\r\n", testutil.ValuesReply); r != want {
				t.Fatalf("get: %.60q", r)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !reached {
		t.Errorf("the replies held never reached half the limit, no client was closed: the test did not test the bound")
	}
	// Those counted are closed: the test's client and the others remain.
	testutil.WaitFor(t, func() bool {
		return p.Stats().CurrConnections == 1+unread-p.replies.oom.Load()
	})
	// A client is admitted at most a window of requests (up to
	// maxClientReplyBytes of replies); one that is closed has the rest
	// of what it sent dropped, not forwarded.
	perClient := 2*maxClientReplyBytes/size + initialWindow
	if n := forwarded() - ours; n > unread*perClient {
		t.Errorf("%d gets of the clients that do not read were forwarded, want at most %d each", n, perClient)
	}
	for _, nc := range conns {
		nc.Close()
	}
	testutil.WaitFor(t, func() bool { return p.replies.bytes.Load() == 0 })
	want := fmt.Sprintf("VALUE big2 0 %d\r\n%s\r\nEND\r\n", size, value)
	if r := roundTrip(c, "get big2\r\n", testutil.ValuesReply); r != want {
		t.Errorf("get once the others are closed: %.60q", r)
	}
}

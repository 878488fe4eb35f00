package proxy

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// commandScript is a transcript of text commands: each request with the
// kind of its reply ("" when noreply expects none).
var commandScript = []struct {
	req  string
	kind testutil.ReplyKind
}{
	{"set a 5 0 3\r\nabc\r\n", testutil.LineReply},
	{"add a 0 0 1\r\nx\r\n", testutil.LineReply},
	{"add b 1 0 1\r\nx\r\n", testutil.LineReply},
	{"replace c 0 0 1\r\nx\r\n", testutil.LineReply},
	{"replace b 2 0 2\r\nyy\r\n", testutil.LineReply},
	{"append a 0 0 2\r\nde\r\n", testutil.LineReply},
	{"prepend a 0 0 2\r\nzz\r\n", testutil.LineReply},
	{"append nokey 0 0 2\r\nde\r\n", testutil.LineReply},
	{"get a b c\r\n", testutil.ValuesReply},
	{"set n 0 0 2 noreply\r\n10\r\n", -1},
	{"incr n 5\r\n", testutil.LineReply},
	{"decr n 100\r\n", testutil.LineReply},
	{"incr n 18446744073709551615\r\n", testutil.LineReply},
	{"incr a 1\r\n", testutil.LineReply},
	{"incr missing 1\r\n", testutil.LineReply},
	{"incr n 1 noreply\r\n", -1},
	{"decr n 1 noreply\r\n", -1},
	{"get n\r\n", testutil.ValuesReply},
	{"touch a 100\r\n", testutil.LineReply},
	{"touch missing 100\r\n", testutil.LineReply},
	{"touch a 0 noreply\r\n", -1},
	{"gat 100 a b missing\r\n", testutil.ValuesReply},
	{"delete b\r\n", testutil.LineReply},
	{"delete b\r\n", testutil.LineReply},
	{"delete a 0\r\n", testutil.LineReply},
	{"delete n noreply\r\n", -1},
	{"get a b n\r\n", testutil.ValuesReply},
	{"cas a 0 0 1 1\r\nx\r\n", testutil.LineReply},
	{"set k 0 0 1\r\nv\r\n", testutil.LineReply},
	{"cas k 0 0 1 999999\r\nx\r\n", testutil.LineReply},
	{"add k 0 0 1 noreply\r\nx\r\n", -1},
	{"replace k 0 0 1 noreply\r\ny\r\n", -1},
	{"append k 0 0 1 noreply\r\nz\r\n", -1},
	{"prepend k 0 0 1 noreply\r\nw\r\n", -1},
	{"get k\r\n", testutil.ValuesReply},
	{"set big 0 0 2000000\r\n" + strings.Repeat("x", 2000000) + "\r\n", testutil.LineReply},
	{"set " + strings.Repeat("k", 251) + " 0 0 1\r\n", testutil.LineReply},
	{"x\r\n", testutil.LineReply},
	{"get " + strings.Repeat("k", 251) + "\r\n", testutil.LineReply},
	{"incr k abc\r\n", testutil.LineReply},
	{"delete k 5\r\n", testutil.LineReply},
	{"touch k abc\r\n", testutil.LineReply},
	{"get\r\n", testutil.LineReply},
	{"set k 0 0\r\n", testutil.LineReply},
	{"ms m 2 T0 F7\r\nhi\r\n", testutil.LineReply},
	{"mg m v f k\r\n", testutil.AnyReply},
	{"mg m s v q O1\r\n", testutil.AnyReply},
	{"mg missing v\r\n", testutil.LineReply},
	{"ma m\r\n", testutil.LineReply},
	{"ms c 1 q\r\n5\r\n", -1},
	{"ma c MI D4 v\r\n", testutil.AnyReply},
	{"md c q\r\n", -1},
	{"md c\r\n", testutil.LineReply},
	{"mg c v q\r\n", -1},
	{"mn\r\n", testutil.LineReply},
	{"mg m zz\r\n", testutil.LineReply},
	{"gets k\r\n", testutil.ValuesReply},
}

// TestCommandsMatchMemcached runs the same transcript through the proxy
// (in front of three real memcached) and against one memcached directly,
// and compares the replies; CAS uniques differ between servers, so the
// transcript checks them only where they are refused.
func TestCommandsMatchMemcached(t *testing.T) {
	direct := testutil.StartMemcached(t)
	backends := []string{testutil.StartMemcached(t), testutil.StartMemcached(t), testutil.StartMemcached(t)}
	_, paddr := proxyFor(t, backends)
	run := func(addr string) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		var out []string
		for _, s := range commandScript {
			c.Send([]byte(s.req))
			if s.kind < 0 {
				continue
			}
			r := string(c.ReadReply(s.kind))
			if f := strings.Fields(r); strings.HasPrefix(s.req, "gets ") && len(f) > 4 {
				r = strings.Join(f[:4], " ") // drop the CAS unique
			}
			out = append(out, r)
		}
		return out
	}
	want, got := run(direct), run(paddr)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d: proxy %q, memcached %q", i, testutil.Quote([]byte(got[i]), 200), testutil.Quote([]byte(want[i]), 200))
		}
	}
}

// TestPipelinedMixed sends many mixed requests for keys on every server
// in one write and checks each reply arrives in request order.
func TestPipelinedMixed(t *testing.T) {
	backends := startCorvids(t, 3)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	defer c.Close()
	var req bytes.Buffer
	var want []string
	for i := range 300 {
		k := fmt.Sprintf("p%d", i)
		fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\nget %s\r\nincr %s 1\r\nmg %s v\r\n", k, len(k), k, k, k, k)
		want = append(want, "STORED\r\n", fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k),
			"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", fmt.Sprintf("VA %d\r\n%s\r\n", len(k), k))
		if i%50 == 0 {
			req.WriteString("get p0 p1 p2 p3 p4 p5 p6 p7 nope\r\n")
			want = append(want, "*")
		}
	}
	c.Send(req.Bytes())
	for i, w := range want {
		r := string(c.ReadReply(testutil.AnyReply))
		if w == "*" {
			if !strings.HasPrefix(r, "VALUE p0 ") || !strings.HasSuffix(r, "END\r\n") {
				t.Fatalf("reply %d: %q", i, r)
			}
			continue
		}
		if r != w {
			t.Fatalf("reply %d: got %q, want %q", i, r, w)
		}
	}
}

// TestHalfWrittenRequest: a client that disconnects in the middle of a
// set must not send anything to the server, whose connection then stays
// in step for the next client.
func TestHalfWrittenRequest(t *testing.T) {
	backends := startCorvids(t, 1)
	_, addr := proxyFor(t, backends)
	for _, partial := range []string{"set a 0 0 10\r\nabc", "get a b", "set a 0 0 10\r\n", "ms a 5\r\nab"} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte("set x 0 0 1\r\n1\r\n" + partial))
		buf := make([]byte, 8)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := nc.Read(buf); err != nil || string(buf[:n]) != "STORED\r\n" {
			t.Fatalf("%q: %q %v", partial, buf[:n], err)
		}
		nc.Close()
	}
	c := testutil.Dial(t, addr)
	defer c.Close()
	for range 3 {
		if r := roundTrip(c, "get a x\r\n", testutil.ValuesReply); r != "VALUE x 0 1\r\n1\r\nEND\r\n" {
			t.Fatalf("get after half-written requests: %q", r)
		}
	}
}

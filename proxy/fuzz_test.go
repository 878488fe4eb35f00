package proxy

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// FuzzRequestPath sends any bytes, in two writes, through a proxy in
// front of two corvid servers, then closes the connection; the proxy must
// not fail, and once that client is gone another must get exactly its own
// replies, which shows every server connection still in step.
func FuzzRequestPath(f *testing.F) {
	for _, seed := range []string{
		"set a 0 0 1\r\nx\r\nget a b c\r\n",
		"set a 0 0 1 noreply\r\nx\r\nincr a 1\r\ndelete a noreply\r\n",
		"gat 10\r\ngats 0 a a a\r\nget a a b b\r\n",
		"ms a 2 q\r\nhi\r\nmg a v q k\r\nmg b v q\r\nmn\r\nma a q\r\nmd b q\r\n",
		"set a 0 0 5 \r\nhello\r\nset a 0 0 +5\r\nhello\r\ncas a 0 0 1\r\nx\r\n",
		"set a 0 0 2000000\r\nxx",
		"ms a 5 b\r\nhello\r\nmg YQ== b v\r\nme a\r\n",
		"flush_all noreply\r\nflush_all 0\r\nverbosity 1\r\nstats noreply\r\nversion\r\n",
		"get a\x00 b\r\nset a\x00 0 0 1\r\nx\r\n",
		"touch a 10\r\ntouch a x noreply\r\n\r\n\x00\r\nquit\r\nget a\r\n",
	} {
		f.Add([]byte(seed), uint16(len(seed)/2))
	}
	backends := []string{testutil.StartCorvid(f, server.Config{}), testutil.StartCorvid(f, server.Config{})}
	p := startProxyB(f, poolYAML("127.0.0.1:0", backends, "timeout: 5000"))
	addr := p.Addrs()["alpha"].String()
	n := 0
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		half := min(int(cut), len(in))
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(in[:half]); err == nil {
			nc.Write(in[half:])
		}
		nc.Close()
		// The client is gone once the proxy has its replies: every
		// request it forwarded has been answered.
		testutil.WaitFor(t, func() bool { return p.Stats().CurrConnections == 0 })
		// Keys no input names, so that each reply is known whatever the
		// input did (a delayed flush_all included), and the replies
		// differ, so that one out of place shows.
		n++
		k := fmt.Sprintf("fuzz:check:%d", n)
		c := testutil.Dial(t, addr)
		defer c.Close()
		c.Send([]byte(fmt.Sprintf("get %s %s:2\r\nmg %s v\r\nincr %s 1\r\nset %s 0 0 2\r\nok\r\ntouch %s:2 0\r\n", k, k, k, k, k, k)))
		for _, want := range []string{"END\r\n", "EN\r\n", "NOT_FOUND\r\n", "STORED\r\n", "NOT_FOUND\r\n"} {
			if r, err := c.TryReadReply(testutil.AnyReply); err != nil || string(r) != want {
				t.Fatalf("after %q: reply %q, %v; want %q", in, r, err, want)
			}
		}
	})
}

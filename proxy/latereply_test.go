package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestLateReplyAfterTimeout: a server answers a request just before, at
// or just after the proxy's timeout, then answers the requests that
// follow at once. Whatever the proxy makes of the late reply (the
// request's answer, or the timeout's error), no other request may get
// it: each get, the one pipelined behind the slow one and the ones sent
// after its error, gets its own key or an error.
func TestLateReplyAfterTimeout(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			f := bytes.Fields(line)
			if len(f) < 2 || string(f[0]) != "get" {
				nc.Write([]byte("ERROR\r\n"))
				continue
			}
			var reply []byte
			for _, k := range f[1:] {
				if ms, ok := strings.CutPrefix(string(k), "slow"); ok {
					d, _ := strconv.Atoi(ms)
					time.Sleep(time.Duration(d) * time.Millisecond)
				}
				reply = fmt.Appendf(reply, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
			}
			if _, err := nc.Write(append(reply, "END\r\n"...)); err != nil {
				return
			}
		}
	})
	_, addr := proxyFor(t, []string{srv}, "timeout: 50")
	c := testutil.Dial(t, addr)
	defer c.Close()
	n := 0
	for round := range 4 {
		for _, d := range []int{40, 45, 48, 50, 52, 55, 60} {
			slow := fmt.Sprintf("slow%d", d)
			var keys []string
			req := fmt.Appendf(nil, "get %s\r\n", slow)
			keys = append(keys, slow)
			for i := range 3 {
				k := fmt.Sprintf("k%d-%d-%d", round, d, i)
				req = fmt.Appendf(req, "get %s\r\n", k)
				keys = append(keys, k)
			}
			c.Send(req)
			for _, k := range keys {
				r := string(c.ReadReply(testutil.AnyReply))
				want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
				if r != want && r != "SERVER_ERROR Connection timed out\r\n" {
					t.Fatalf("get %s: reply %q", k, r)
				}
				n++
			}
		}
	}
	// Once the server keeps up, a get gets its own value. The timeout
	// (50 ms) bounds this get too, and a busy machine can hold up the
	// proxy or the server longer: a timeout is asked again, for 10 s at
	// most, but no other reply is taken.
	time.Sleep(100 * time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := roundTrip(c, "get last\r\n", testutil.AnyReply)
		if r == "VALUE last 0 4\r\nlast\r\nEND\r\n" {
			break
		}
		if r != "SERVER_ERROR Connection timed out\r\n" || time.Now().After(deadline) {
			t.Fatalf("get last: reply %q", r)
		}
	}
}

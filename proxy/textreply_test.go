package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestGetExtraReplyDisconnects: a server that answers every get twice
// puts its replies out of step with the requests; a VALUE for a key the
// request awaiting a reply did not ask must break the connection and
// fail what it holds, not reach that request's client: a get must never
// get another key's value.
func TestGetExtraReplyDisconnects(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			var reply []byte
			for _, k := range bytes.Fields(line)[1:] {
				reply = fmt.Appendf(reply, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
			}
			reply = append(reply, "END\r\n"...)
			if _, err := nc.Write(append(reply, reply...)); err != nil {
				return
			}
		}
	})
	_, addr := proxyFor(t, []string{srv})
	c := testutil.Dial(t, addr)
	defer c.Close()
	keys := []string{"k1", "k2", "k3 k4", "k5"}
	var req []byte
	for _, k := range keys {
		req = fmt.Appendf(req, "get %s\r\n", k)
	}
	c.Send(req)
	for _, k := range keys {
		r := c.ReadReply(testutil.AnyReply)
		if bytes.HasPrefix(r, []byte("SERVER_ERROR")) {
			continue
		}
		var want []byte
		for _, k := range bytes.Fields([]byte(k)) {
			want = fmt.Appendf(want, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
		}
		if want = append(want, "END\r\n"...); !bytes.Equal(r, want) {
			t.Errorf("get %s: reply %q", k, r)
		}
	}
}

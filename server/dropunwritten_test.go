package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// binReq is a binary request with no extras and the given key.
func binReq(op byte, key string) string {
	h := make([]byte, 24)
	h[0], h[1] = 0x80, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:], uint32(len(key)))
	return string(h) + key
}

// binReply is the response header a binary request gets with the given
// status and body.
func binReply(op byte, status uint16, body string) string {
	h := make([]byte, 24)
	h[0], h[1] = 0x81, op
	binary.BigEndian.PutUint16(h[6:], status)
	binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
	return string(h) + body
}

// closingCases end with bytes on which memcached closes the connection at
// once, without writing the replies it holds: a line of more than 2048
// bytes without a newline, a binary header without the request magic. It
// holds every reply since it last wrote: when its input ran out, at the end
// of a get or an mn (text), at an error or a noop (binary).
var closingCases = []struct{ name, send, want string }{
	{"long line drops version", "version\r\n" + strings.Repeat("x", 3000), ""},
	{"long line drops error", "bogus\r\nset k 0 0 abc\r\n" + strings.Repeat("x", 3000), ""},
	{"long line after get", "version\r\nget k\r\nversion\r\n" + strings.Repeat("x", 3000),
		"VERSION 1.6.18\r\nEND\r\n"},
	{"long line after mn", "version\r\nmn\r\nmg k v\r\n" + strings.Repeat("x", 3000),
		"VERSION 1.6.18\r\nMN\r\n"},
	{"long meta line", "version\r\nmg " + strings.Repeat("k", 3000), ""},
	{"bad magic drops version", binReq(0x0b, "") + "\x81" + strings.Repeat("\x00", 23), ""},
	{"bad magic after miss", binReq(0x00, "zz") + binReq(0x0b, "") + strings.Repeat("\x00", 24),
		binReply(0x00, 1, "Not found")},
	{"bad magic after noop", binReq(0x0b, "") + binReq(0x0a, "") + binReq(0x0b, "") + strings.Repeat("\x00", 24),
		binReply(0x0b, 0, server.Version) + binReply(0x0a, 0, "")},
}

// TestDropUnwrittenOnClose checks that the requests closing the connection
// at once drop the replies memcached would not have written, on corvid in
// both connection modes and on memcached when it is installed. Each case
// is sent in one write, which both servers read at once (their read
// buffers hold 16 KB).
func TestDropUnwrittenOnClose(t *testing.T) {
	check := func(t *testing.T, addr string) {
		for _, tc := range closingCases {
			nc, err := net.DialTimeout("tcp", addr, replyTimeout)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, tc.send); err != nil {
				nc.Close()
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, err := io.ReadAll(nc)
			nc.Close()
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("%s: read %q, then %v; want the connection closed", tc.name, got, err)
				continue
			}
			if !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("%s: replied %q, want %q", tc.name, got, tc.want)
			}
		}
	}
	for _, loops := range []int{0, 2} {
		name := "goroutines"
		if loops > 0 {
			name = "event_loops"
		}
		t.Run(name, func(t *testing.T) {
			srv := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}, EventLoops: loops})
			check(t, srv.Addrs()[0].String())
		})
	}
	t.Run("memcached", func(t *testing.T) {
		if testutil.MemcachedPath() == "" {
			t.Skip("memcached is not installed")
		}
		check(t, testutil.StartMemcached(t))
	})
}

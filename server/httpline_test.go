package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// httpCases are text lines (without their "\r\n") and what memcached 1.6.18
// answers each with before the "version" sent after it; hangUp marks the
// ones on which it closes the connection without a reply.
var httpCases = []struct {
	line   string
	reply  string
	hangUp bool
}{
	{line: "GET / HTTP/1.0", hangUp: true},
	{line: "PUT /a/b HTTP/1.1", hangUp: true},
	{line: "DELETE HTTP/1.1", hangUp: true},
	{line: "  POST  /x   HTTP/1.1", hangUp: true},
	{line: "HTTP/1.1", hangUp: true},
	{line: "zz HTTP/", hangUp: true},
	{line: "zz HTTP/1.1 ", hangUp: true},
	{line: "mxx HTTP/1.1", hangUp: true},
	{line: "GET / HTTP/1.0\t", hangUp: true},
	{line: "GET / HTTP/1.0\r", hangUp: true},
	{line: "GET / HTTP/1.0\x00x", hangUp: true},
	// A line is cut into 23 tokens at most: the 23rd is looked at.
	{line: "ZZ" + strings.Repeat(" w", 21) + " HTTP/1 x", hangUp: true},
	{line: "ZZ" + strings.Repeat(" w", 22) + " x HTTP/2", reply: "ERROR\r\n"},
	// Replies from the earlier requests not yet written are dropped.
	{line: "version\r\nGET / HTTP/1.0", hangUp: true},
	// A command dispatched by its first letter or its name is answered.
	{line: "get HTTP/1.1", reply: "END\r\n"},
	{line: "bget HTTP/1.1", reply: "END\r\n"},
	{line: "gxt / HTTP/1.0", reply: "ERROR\r\n"},
	{line: "sxx / HTTP/1.0", reply: "ERROR\r\n"},
	{line: "replace HTTP/1.1", reply: "ERROR\r\n"},
	{line: "prepend a HTTP/1.1", reply: "ERROR\r\n"},
	{line: "lru HTTP/1.1", reply: "ERROR\r\n"},
	{line: "lru_crawler HTTP/1.1", reply: "ERROR\r\n"},
	{line: "watch HTTP/1.1", reply: "ERROR\r\n"},
	{line: "extstore HTTP/1.1", reply: "ERROR\r\n"},
	{line: "mz HTTP/1.1", reply: "ERROR\r\n"},
	{line: "mn HTTP/1.1", reply: "MN\r\n"},
	{line: "version HTTP/1.1", reply: "VERSION 1.6.18\r\n"},
	{line: "flush_all HTTP/1.1", reply: "CLIENT_ERROR invalid exptime argument\r\n"},
	{line: "shutdown HTTP/1.1", reply: "ERROR: shutdown not enabled\r\n"},
	// Not an HTTP version, or not the last token.
	{line: "H HTTP/1.1", reply: "ERROR\r\n"},
	{line: "zz HTTP", reply: "ERROR\r\n"},
	{line: "zz http/1.1", reply: "ERROR\r\n"},
	{line: "zz HTTP/1.1 x", reply: "ERROR\r\n"},
	{line: "GET /\x00 HTTP/1.0", reply: "ERROR\r\n"},
}

// checkHTTPCases sends each case on a new connection from dial, followed
// by "version", and checks the connection closes without a reply or
// answers as memcached.
func checkHTTPCases(t *testing.T, dial func() (net.Conn, error)) {
	t.Helper()
	for _, tc := range httpCases {
		nc, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(nc, tc.line+"\r\nversion\r\n"); err != nil {
			nc.Close()
			t.Fatalf("%q: %v", tc.line, err)
		}
		var got []byte
		want := tc.reply + "VERSION 1.6.18\r\n"
		buf := make([]byte, 512)
		for tc.hangUp || len(got) < len(want) {
			n, err := nc.Read(buf)
			got = append(got, buf[:n]...)
			if tc.hangUp && bytes.HasSuffix(got, []byte("VERSION 1.6.18\r\n")) {
				break // answered: it will not close
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%q: read %q, then %v", tc.line, got, err)
				} else if !tc.hangUp {
					t.Errorf("%q: read %q, then the connection closed; want %q", tc.line, got, want)
				}
				break
			}
		}
		nc.Close()
		if tc.hangUp && len(got) > 0 {
			t.Errorf("%q: replied %q; want the connection closed without a reply", tc.line, got)
		}
		if !tc.hangUp && !bytes.Equal(got, []byte(want)) {
			t.Errorf("%q: replied %q, want %q", tc.line, got, want)
		}
	}
}

// TestHTTPHangUp checks that a line taken for an HTTP request closes the
// connection without a reply, and that the same lines memcached answers
// are answered, on TCP and Unix sockets in both connection modes, and
// against memcached when it is installed.
func TestHTTPHangUp(t *testing.T) {
	for _, loops := range []int{0, 2} {
		name := "goroutines"
		if loops > 0 {
			name = "event_loops"
		}
		t.Run(name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "corvid.sock")
			srv := testutil.ServeCorvid(t, server.Config{
				TCPAddrs: []string{"127.0.0.1:0"}, UnixPath: sock, EventLoops: loops,
			})
			addr := srv.Addrs()[0].String()
			t.Run("tcp", func(t *testing.T) {
				checkHTTPCases(t, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, replyTimeout) })
			})
			t.Run("unix", func(t *testing.T) {
				checkHTTPCases(t, func() (net.Conn, error) { return net.DialTimeout("unix", sock, replyTimeout) })
			})
		})
	}
	t.Run("memcached", func(t *testing.T) {
		addr := testutil.StartMemcached(t)
		checkHTTPCases(t, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, replyTimeout) })
	})
}

// TestUDPHTTPHangUp checks that a datagram holding a line taken for an
// HTTP request gets no reply, not even for the requests before it in the
// datagram, as memcached does. The datagram after it is answered; a server
// that reads its socket in order (memcached with one worker thread) would
// have answered the first one before.
func TestUDPHTTPHangUp(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	servers := map[string]string{"corvid": srv.UDPAddrs()[0].String()}
	if testutil.MemcachedPath() != "" {
		_, udp := startUDPMemcached(t, "-t", "1")
		servers["memcached"] = udp
	}
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			c := dialUDP(t, addr)
			c.do("version\r\n") // the server is up
			for _, body := range []string{"GET / HTTP/1.0\r\n", "version\r\nGET / HTTP/1.0\r\nversion\r\n"} {
				c.id++
				hangUp := c.id
				c.send(append(header(hangUp, 0, 1, 0), body...))
				c.id++
				c.send(append(header(c.id, 0, 1, 0), "version\r\n"...))
				buf := make([]byte, 1<<16)
				c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					n, err := c.nc.Read(buf)
					if err != nil {
						t.Fatalf("%q: no reply to the version after it: %v", body, err)
					}
					if n < 8 {
						t.Fatalf("datagram of %d bytes", n)
					}
					id := binary.BigEndian.Uint16(buf)
					if id == hangUp {
						t.Errorf("%q: replied %q", body, buf[8:n])
					}
					if id == c.id {
						if got := string(buf[8:n]); got != "VERSION 1.6.18\r\n" {
							t.Errorf("version after %q: %q", body, got)
						}
						break
					}
				}
			}
		})
	}
}

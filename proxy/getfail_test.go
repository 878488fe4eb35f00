package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// echoGetServer answers every "get k1 k2 ..." line with a hit for each
// key whose value is the key itself, then END. The failAt-th line it
// reads over all its connections (counting from 1; 0: none) is answered
// by fail instead, which returns false when the connection must end.
func echoGetServer(t *testing.T, failAt int64, fail func(nc net.Conn) bool) string {
	var lines atomic.Int64
	return testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if lines.Add(1) == failAt {
				if !fail(nc) {
					return
				}
				continue
			}
			fields := bytes.Fields(line)
			if len(fields) == 0 || string(fields[0]) != "get" {
				nc.Write([]byte("ERROR\r\n"))
				continue
			}
			var reply []byte
			for _, k := range fields[1:] {
				reply = fmt.Appendf(reply, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
			}
			if _, err := nc.Write(append(reply, "END\r\n"...)); err != nil {
				return
			}
		}
	})
}

// TestChunkedGetFailingMiddleChunk: a get of 100 keys on three servers
// is sent in four chunks; when one server fails on the second chunk
// (garbage, a closed connection, a timeout), the client gets the VALUE
// blocks of the first chunk and the error, as memcached answers a
// multi-get that fails part way, and nothing of the later chunks. The
// connection stays in step (the next get on it gets its own value), and
// the proxy holds nothing afterwards.
func TestChunkedGetFailingMiddleChunk(t *testing.T) {
	modes := []struct {
		name  string
		fail  func(nc net.Conn) bool
		extra []string
		reply string
	}{
		{"garbage", func(nc net.Conn) bool { nc.Write([]byte("HELLO\r\n")); return true }, nil,
			"SERVER_ERROR Invalid argument\r\n"},
		{"close", func(nc net.Conn) bool { return false }, nil,
			"SERVER_ERROR unknown\r\n"},
		{"timeout", func(nc net.Conn) bool {
			// Silent from here on; the proxy closes the connection.
			buf := make([]byte, 4096)
			for {
				if _, err := nc.Read(buf); err != nil {
					return false
				}
			}
		}, []string{"timeout: 300"}, "SERVER_ERROR Connection timed out\r\n"},
	}
	for _, m := range modes {
		for chunk := 1; chunk <= 3; chunk++ {
			t.Run(fmt.Sprintf("%s-chunk%d", m.name, chunk), func(t *testing.T) {
				testFailingChunk(t, chunk, m.fail, m.extra, m.reply)
			})
		}
	}
}

// testFailingChunk runs a get of 100 keys on three servers, the second
// of which fails on its chunk-th request with fail.
func testFailingChunk(t *testing.T, chunk int, fail func(net.Conn) bool, extra []string, reply string) {
	addrs := []string{
		echoGetServer(t, 0, nil),
		echoGetServer(t, int64(chunk), fail),
		echoGetServer(t, 0, nil),
	}
	p, addr := proxyFor(t, addrs, extra...)
	rg := testRing(t, addrs)
	const nkeys = 100
	keys := make([]string, nkeys)
	var want strings.Builder
	for i := range keys {
		keys[i] = fmt.Sprintf("k%x", uint64(i+1)*0x9E3779B97F4A7C15)
		if i < (chunk-1)*maxGetChunkKeys {
			fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", keys[i], len(keys[i]), keys[i])
		}
	}
	// The failing server must have keys in the chunks up to the
	// failing one: its chunk-th line is that chunk's.
	for c := range chunk {
		on := 0
		for _, k := range keys[c*maxGetChunkKeys : (c+1)*maxGetChunkKeys] {
			if rg.PickString(k) == 1 {
				on++
			}
		}
		if on == 0 {
			t.Fatalf("chunk %d has no key on the failing server", c)
		}
	}
	want.WriteString(reply)
	c := testutil.Dial(t, addr)
	defer c.Close()
	// The next request goes in the same write: its reply follows. Its
	// keys are on the other servers: a request sent to the failing one
	// while its connection fails may fail with it (the get's last chunks
	// and this request may be in flight at once).
	var two2 []string
	for i := 0; len(two2) < 2 && i < 1000; i++ {
		if k := strings.Repeat("p", len(two2)+1) + strconv.Itoa(i); rg.PickString(k) != 1 {
			two2 = append(two2, k)
		}
	}
	if len(two2) < 2 {
		t.Fatalf("no key off the failing server among 1000: %v", two2)
	}
	getTwo := "get " + strings.Join(two2, " ") + "\r\n"
	two := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n",
		two2[0], len(two2[0]), two2[0], two2[1], len(two2[1]), two2[1])
	c.Send([]byte("get " + strings.Join(keys, " ") + "\r\n" + getTwo))
	got := string(c.ReadReply(testutil.ValuesReply))
	if r := string(c.ReadReply(testutil.ValuesReply)); r != two {
		t.Errorf("%q pipelined after: %q, want %q", getTwo, r, two)
	}
	// A server that closes its connection while the proxy still writes
	// to it may be seen to reset it instead: the reason is then the
	// reset's, as twemproxy's would be.
	const reset = "SERVER_ERROR Connection reset by peer\r\n"
	if reply == "SERVER_ERROR unknown\r\n" && got == strings.TrimSuffix(want.String(), reply)+reset {
		got = want.String()
	}
	if got != want.String() {
		t.Errorf("get of %d keys:\n got %s\nwant %s", nkeys, testutil.Quote([]byte(got), 400), testutil.Quote([]byte(want.String()), 400))
	}
	// In step: each server's next request is answered with its
	// own reply, on this connection and on a new one.
	c2 := testutil.Dial(t, addr)
	defer c2.Close()
	for _, cc := range []*testutil.Conn{c, c2} {
		for i := range 12 {
			k := keys[nkeys-1-i]
			w := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(k), k)
			if r := roundTrip(cc, "get "+k+"\r\n", testutil.ValuesReply); r != w {
				t.Errorf("get %s after the failure: %q, want %q", k, r, w)
			}
		}
		if r := roundTrip(cc, getTwo, testutil.ValuesReply); r != two {
			t.Errorf("%q after the failure: %q, want %q", getTwo, r, two)
		}
	}
	testutil.WaitFor(t, func() bool {
		if p.replies.bytes.Load() != 0 {
			return false
		}
		for _, s := range p.Stats().Pools[0].Servers {
			if s.InQueue != 0 || s.OutQueue != 0 {
				return false
			}
		}
		return true
	})
}

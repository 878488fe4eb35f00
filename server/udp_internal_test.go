package server

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// testEpoch is the time of newTestServer's clock, which never moves: two
// servers given the same requests then expire the same items (with the
// system clocks their one-second ticks fall at different instants).
var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestServer returns a server serving UDP on a free loopback port,
// without its goroutines (Serve is not called): tests call udpConn.handle
// directly. Its clock stands still at testEpoch. It is closed when the
// test ends.
func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(Config{UDPAddrs: []string{"127.0.0.1:0"}, Storage: storage.Config{
		MemoryLimit: 16 << 20,
		Now:         func() time.Time { return testEpoch },
	}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// capture makes u's datagrams collect in the returned slice.
func capture(u *udpConn) *[][]byte {
	var sent [][]byte
	u.write = func(b []byte, _ netip.AddrPort) (int, error) {
		sent = append(sent, bytes.Clone(b))
		return len(b), nil
	}
	return &sent
}

// streamConn returns a conn of s that handles input as a stream
// connection does, collecting its replies in out.
func streamConn(s *Server, out *[]byte) *conn {
	c := newConn(s, nil)
	c.flushFn = func() error {
		*out = append(*out, c.wbuf...)
		c.wbuf = c.wbuf[:0]
		return nil
	}
	return c
}

var udpSeeds = []string{
	"\x00\x01\x00\x00\x00\x01\x00\x00get k\r\n",
	"\x00\x02\x00\x00\x00\x01\x00\x00set k 1 0 2\r\nhi\r\nget k k\r\n",
	"\x00\x03\x00\x07\x00\x01\xff\xffversion\r\n",
	"\x00\x04\x00\x00\x00\x02\x00\x00version\r\n",
	"\x00\x05\x00\x00\x00\x01\x00\x00",
	"\x00\x06\x00\x00\x00\x01\x00",
	"\x00\x07\x00\x00\x00\x01\x00\x00set big 0 0 3000\r\n" + strings.Repeat("b", 3000) + "\r\nget big big big\r\n",
	"\x00\x08\x00\x00\x00\x01\x00\x00set half 0 0 10\r\nabc",
	"\x00\x09\x00\x00\x00\x01\x00\x00incr n 1\r\nbogus\r\ndelete k\r\ntouch k 10\r\ngets k\r\nquit\r\nget k\r\n",
	"\x00\x0a\x00\x00\x00\x01\x00\x00" + strings.Repeat("get big big big big big\r\n", 6),
}

// FuzzUDPDatagram feeds datagrams to a UDP socket's handler and checks the
// framing of the replies, and that their contents are what a stream
// connection of a twin server answers to the same requests.
func FuzzUDPDatagram(f *testing.F) {
	for _, s := range udpSeeds {
		f.Add([]byte(s))
	}
	srv, twin := newTestServer(f), newTestServer(f)
	u := srv.udp[0]
	sent := capture(u)
	var streamOut []byte
	sc := streamConn(twin, &streamOut)
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, d []byte) {
		*sent = (*sent)[:0]
		u.handle(d, peer)
		if len(d) <= udpHeaderSize || binary.BigEndian.Uint16(d[4:]) != 1 {
			if len(*sent) != 0 {
				t.Fatalf("datagram % x answered", d)
			}
			return
		}
		var reply []byte
		for i, p := range *sent {
			if len(p) > udpMaxDatagram || (i < len(*sent)-1 && len(p) != udpMaxDatagram) || len(p) <= udpHeaderSize {
				t.Fatalf("datagram %d of %d is %d bytes", i, len(*sent), len(p))
			}
			want := appendUDPFrame(nil, binary.BigEndian.Uint16(d), uint16(i), uint16(len(*sent)), nil)
			if !bytes.Equal(p[:udpHeaderSize], want) {
				t.Fatalf("datagram %d header % x, want % x", i, p[:udpHeaderSize], want)
			}
			reply = append(reply, p[udpHeaderSize:]...)
		}

		// The same requests on a stream connection of the twin server,
		// which has seen the same requests so far.
		body := d[udpHeaderSize:]
		streamOut = streamOut[:0]
		sc.rbuf, sc.r, sc.w = body, 0, len(body)
		sc.wbuf, sc.swallow, sc.closeAfterWrite, sc.proto = sc.wbuf[:0], 0, false, ProtoAuto
		sc.processAll()
		streamOut = append(streamOut, sc.wbuf...)
		if bytes.Contains(body, []byte("stats")) || bytes.Contains(streamOut, []byte{0x81, 0x10}) {
			// Counters and times differ between the servers (text
			// stats, or a binary stat reply).
			return
		}
		if len(streamOut) > udpMaxReply {
			if string(reply) != replyUDPTooLarge {
				t.Fatalf("%d bytes of replies sent over UDP", len(reply))
			}
			return
		}
		if !bytes.Equal(reply, streamOut) {
			t.Fatalf("UDP reply %q, stream reply %q", reply, streamOut)
		}
	})
}

// TestUDPHandleAllocs pins the datagram path of a get hit: framing and
// sending allocate nothing once the buffers are warm.
func TestUDPHandleAllocs(t *testing.T) {
	s := newTestServer(t)
	u := s.udp[0]
	u.write = func(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	u.handle([]byte("\x00\x01\x00\x00\x00\x01\x00\x00set k 0 0 5\r\nhello\r\n"), peer)
	d := []byte("\x00\x02\x00\x00\x00\x01\x00\x00get k\r\n")
	if n := testing.AllocsPerRun(100, func() { u.handle(d, peer) }); n != 0 {
		t.Errorf("get hit over UDP: %v allocations, want 0", n)
	}
}

// BenchmarkUDPGet measures a get hit handled from datagram to framed
// reply, without the socket.
func BenchmarkUDPGet(b *testing.B) {
	s := newTestServer(b)
	u := s.udp[0]
	u.write = func(p []byte, _ netip.AddrPort) (int, error) { return len(p), nil }
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	u.handle([]byte("\x00\x01\x00\x00\x00\x01\x00\x00set k 0 0 100\r\n"+strings.Repeat("v", 100)+"\r\n"), peer)
	d := []byte("\x00\x02\x00\x00\x00\x01\x00\x00get k\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		u.handle(d, peer)
	}
}

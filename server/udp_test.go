package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// startUDPCorvid runs corvid with cfg until the test ends, serving UDP on
// a free loopback port when cfg names no UDP address, and returns it.
func startUDPCorvid(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	if len(cfg.UDPAddrs) == 0 {
		cfg.UDPAddrs = []string{"127.0.0.1:0"}
	}
	return testutil.ServeCorvid(t, cfg)
}

// startUDPMemcached starts memcached serving UDP on a free loopback port
// and returns its TCP and UDP addresses.
func startUDPMemcached(t *testing.T, args ...string) (tcp, udp string) {
	t.Helper()
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	tcp = testutil.StartMemcached(t, append([]string{"-U", strconv.Itoa(port)}, args...)...)
	return tcp, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// udpClient sends framed requests and reassembles framed replies.
type udpClient struct {
	t  *testing.T
	nc *net.UDPConn
	id uint16
}

func dialUDP(t *testing.T, addr string) *udpClient {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &udpClient{t: t, nc: nc, id: 0x1200}
}

// header returns an 8-byte frame header.
func header(id, seq, total, reserved uint16) []byte {
	var h [8]byte
	binary.BigEndian.PutUint16(h[0:], id)
	binary.BigEndian.PutUint16(h[2:], seq)
	binary.BigEndian.PutUint16(h[4:], total)
	binary.BigEndian.PutUint16(h[6:], reserved)
	return h[:]
}

// readMessage reads the datagrams of the reply with request id until all
// of its sequence numbers have arrived, skipping other ids, and returns
// them in order. It fails after timeout.
func (c *udpClient) readMessage(id uint16, timeout time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(timeout)
	var parts [][]byte
	got := 0
	buf := make([]byte, 1<<16)
	for {
		c.nc.SetReadDeadline(deadline)
		n, err := c.nc.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // the server's socket was not bound yet
			}
			return parts, err
		}
		d := bytes.Clone(buf[:n])
		if n < 8 {
			return parts, fmt.Errorf("datagram of %d bytes", n)
		}
		if binary.BigEndian.Uint16(d) != id {
			continue
		}
		seq, total := int(binary.BigEndian.Uint16(d[2:])), int(binary.BigEndian.Uint16(d[4:]))
		if parts == nil {
			parts = make([][]byte, total)
		}
		if total != len(parts) || seq >= total || parts[seq] != nil {
			return parts, fmt.Errorf("datagram seq %d total %d in a message of %d", seq, total, len(parts))
		}
		parts[seq] = d
		if got++; got == total {
			return parts, nil
		}
	}
}

// do sends body in one datagram with a new request id and returns the
// reply's datagrams. The request is sent again a few times while nothing
// comes back (a server may not have bound its socket yet).
func (c *udpClient) do(body string) [][]byte {
	c.t.Helper()
	var err error
	for range 5 {
		c.id++
		c.send(append(header(c.id, 0, 1, 0), body...))
		var parts [][]byte
		parts, err = c.readMessage(c.id, time.Second)
		if err == nil {
			return parts
		}
	}
	c.t.Fatalf("%q: no reply: %v", body, err)
	return nil
}

func (c *udpClient) send(d []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(d); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
		c.t.Fatal(err)
	}
}

// payload concatenates the payloads of a reply's datagrams.
func payload(parts [][]byte) string {
	var b []byte
	for _, p := range parts {
		b = append(b, p[8:]...)
	}
	return string(b)
}

// udpServers starts corvid and, when installed, memcached with UDP and
// returns the TCP and UDP address of each by name.
func udpServers(t *testing.T) map[string][2]string {
	t.Helper()
	srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	out := map[string][2]string{"corvid": {srv.Addrs()[0].String(), srv.UDPAddrs()[0].String()}}
	if testutil.MemcachedPath() != "" {
		tcp, udp := startUDPMemcached(t)
		out["memcached"] = [2]string{tcp, udp}
	}
	return out
}

// TestUDP runs the same datagrams against corvid and memcached and
// compares the framing of the replies as well as their contents.
func TestUDP(t *testing.T) {
	big := strings.Repeat("x", 5000)
	for name, addrs := range udpServers(t) {
		t.Run(name, func(t *testing.T) {
			tc := testutil.Dial(t, addrs[0])
			tc.Send([]byte("set big 3 0 5000\r\n" + big + "\r\n"))
			if got := tc.ReadReply(testutil.LineReply); string(got) != "STORED\r\n" {
				t.Fatalf("set big: %q", got)
			}
			c := dialUDP(t, addrs[1])
			if got := payload(c.do("version\r\n")); got != "VERSION 1.6.18\r\n" {
				t.Errorf("version: %q", got)
			}
			if got := payload(c.do("set k 1 0 2\r\nhi\r\n")); got != "STORED\r\n" {
				t.Errorf("set: %q", got)
			}
			if got := payload(c.do("get k\r\n")); got != "VALUE k 1 2\r\nhi\r\nEND\r\n" {
				t.Errorf("get: %q", got)
			}
			if got := payload(c.do("get nope\r\n")); got != "END\r\n" {
				t.Errorf("get miss: %q", got)
			}
			if got := payload(c.do("bogus\r\n")); got != "ERROR\r\n" {
				t.Errorf("bogus: %q", got)
			}
			// A reply of several datagrams: 1400 bytes each, header
			// included, numbered 0 to n-1, with the request's id.
			parts := c.do("get big\r\n")
			want := "VALUE big 3 5000\r\n" + big + "\r\nEND\r\n"
			if got := payload(parts); got != want {
				t.Errorf("get big: %s", testutil.Quote([]byte(got), 80))
			}
			if len(parts) != 4 {
				t.Fatalf("get big: %d datagrams, want 4", len(parts))
			}
			for i, p := range parts {
				if !bytes.Equal(p[:8], header(c.id, uint16(i), 4, 0)) {
					t.Errorf("datagram %d header % x, want % x", i, p[:8], header(c.id, uint16(i), 4, 0))
				}
				if i < 3 && len(p) != 1400 {
					t.Errorf("datagram %d is %d bytes, want 1400", i, len(p))
				}
			}
			// Sequence number and reserved field of a request are not
			// looked at.
			c.id++
			c.send(append(header(c.id, 7, 1, 0xffff), "version\r\n"...))
			if parts, err := c.readMessage(c.id, 2*time.Second); err != nil || payload(parts) != "VERSION 1.6.18\r\n" ||
				!bytes.Equal(parts[0][:8], header(c.id, 0, 1, 0)) {
				t.Errorf("seq 7, reserved 0xffff: %q, %v", parts, err)
			}
			// Malformed frames are dropped without a reply: no more than
			// a header, or more (or fewer) than one datagram announced.
			for _, d := range [][]byte{
				header(0x7001, 0, 1, 0),
				header(0x7002, 0, 1, 0)[:5],
				append(header(0x7003, 0, 2, 0), "version\r\n"...),
				append(header(0x7004, 0, 0, 0), "version\r\n"...),
				append(header(0x7005, 1, 0x101, 0), "version\r\n"...),
			} {
				c.send(d)
			}
			// The next reply must be this one's: none of the above was
			// answered.
			c.id++
			c.send(append(header(c.id, 0, 1, 0), "get k\r\n"...))
			c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 2048)
			n, err := c.nc.Read(buf)
			if err != nil || binary.BigEndian.Uint16(buf) != c.id {
				t.Errorf("after malformed datagrams: got % x, %v; want the reply to id %#x", buf[:min(n, 8)], err, c.id)
			}
			// A set whose data is not in the datagram is dropped; the
			// next datagram starts afresh.
			c.id++
			c.send(append(header(c.id, 0, 1, 0), "set half 0 0 5\r\n"...))
			if got := payload(c.do("abcde\r\n")); got != "ERROR\r\n" {
				t.Errorf("data in a second datagram: %q", got)
			}
		})
	}
}

// TestUDPOneMessage checks that the replies to all the requests of a
// datagram, a multi-get's included, form one message numbered 0 to n-1.
// (memcached 1.6.18 starts a new message at sequence 0 for each key of a
// multi-get and each request, which clients cannot reassemble; corvid
// follows the protocol text.)
func TestUDPOneMessage(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	c := dialUDP(t, srv.UDPAddrs()[0].String())
	a, b := strings.Repeat("a", 3000), strings.Repeat("b", 2000)
	if got := payload(c.do("set a 0 0 3000\r\n" + a + "\r\nset b 0 0 2000 noreply\r\n" + b + "\r\n")); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	parts := c.do("get a b\r\nversion\r\n")
	want := "VALUE a 0 3000\r\n" + a + "\r\nVALUE b 0 2000\r\n" + b + "\r\nEND\r\nVERSION 1.6.18\r\n"
	if got := payload(parts); got != want {
		t.Errorf("get a b: %s", testutil.Quote([]byte(got), 80))
	}
	if n := (len(want) + 1391) / 1392; len(parts) != n {
		t.Errorf("%d datagrams, want %d", len(parts), n)
	}
}

// TestUDPReplyCap checks the amplification cap: the replies to one
// datagram are at most 64 KiB, else the datagram is answered with
// SERVER_ERROR.
func TestUDPReplyCap(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	tc := testutil.Dial(t, srv.Addrs()[0].String())
	v60, v100 := strings.Repeat("6", 60000), strings.Repeat("1", 100000)
	tc.Send([]byte("set v60 0 0 60000\r\n" + v60 + "\r\nset v100 0 0 100000\r\n" + v100 + "\r\n"))
	for range 2 {
		if got := tc.ReadReply(testutil.LineReply); string(got) != "STORED\r\n" {
			t.Fatalf("set: %q", got)
		}
	}
	c := dialUDP(t, srv.UDPAddrs()[0].String())
	parts := c.do("get v60\r\n")
	if got := payload(parts); got != "VALUE v60 0 60000\r\n"+v60+"\r\nEND\r\n" {
		t.Errorf("get v60: %s", testutil.Quote([]byte(got), 80))
	}
	for _, req := range []string{"get v100\r\n", "get v60 v60\r\n", "get v60\r\nget v60\r\n",
		strings.Repeat("get v60 v60 v60 v60 v60\r\n", 20)} {
		if got := payload(c.do(req)); got != "SERVER_ERROR reply too large for UDP\r\n" {
			t.Errorf("%.40q: %s", req, testutil.Quote([]byte(got), 80))
		}
	}
	// The cap is per datagram: the next one is answered as usual.
	if got := payload(c.do("get nope\r\n")); got != "END\r\n" {
		t.Errorf("after the cap: %q", got)
	}
}

// TestUDPStats checks the UDP sockets in "stats conns", curr_connections
// and the byte counters.
func TestUDPStats(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	udpAddr := srv.UDPAddrs()[0].String()
	tc := testutil.Dial(t, srv.Addrs()[0].String())
	conns := func() string { return string(readStatsRaw(t, tc, "stats conns\r\n")) }
	// As memcached 1.6.18, the socket is listed under its descriptor
	// with its own address while it waits for a datagram, and with the
	// client's while it handles one.
	idle := regexp.MustCompile(`STAT (\d+):UDP UDP\r\nSTAT (\d+):addr udp:` + regexp.QuoteMeta(udpAddr) +
		`\r\nSTAT (\d+):state conn_read\r\n`)
	if got := conns(); !idle.MatchString(got) {
		t.Errorf("stats conns before a datagram:\n%s\nwant it to match\n%s", got, idle)
	}
	c := dialUDP(t, udpAddr)
	c.do("version\r\n")
	client := c.nc.LocalAddr().String()
	if got := conns(); !idle.MatchString(got) {
		t.Errorf("stats conns after a datagram:\n%s\nwant it to match\n%s", got, idle)
	}
	// Asked over UDP, the socket answering is parsing a command.
	busy := regexp.MustCompile(`STAT (\d+):UDP UDP\r\nSTAT (\d+):addr udp:` + regexp.QuoteMeta(client) +
		`\r\nSTAT (\d+):listen_addr udp:` + regexp.QuoteMeta(udpAddr) + `\r\nSTAT (\d+):state conn_parse_cmd\r\n`)
	if got := payload(c.do("stats conns\r\n")); !busy.MatchString(got) {
		t.Errorf("stats conns over UDP:\n%s\nwant it to match\n%s", got, busy)
	}
	stats := readStats(t, tc, "stats\r\n")
	if stats["curr_connections"] != "5" {
		// memcached's count: the TCP listener, a connection per worker
		// thread (4) for the UDP socket and this one, less one.
		t.Errorf("curr_connections = %s, want 5", stats["curr_connections"])
	}
	before := readStats(t, tc, "stats\r\n")
	c.do("version\r\n")
	after := readStats(t, tc, "stats\r\n")
	// 17 bytes read (header and request), 24 written; the TCP "stats"
	// request in between adds 7 read.
	if d := atoi(t, after["bytes_read"]) - atoi(t, before["bytes_read"]); d != 17+7 {
		t.Errorf("bytes_read grew by %d, want 24", d)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readStatsRaw(t *testing.T, c *testutil.Conn, req string) []byte {
	t.Helper()
	c.Send([]byte(req))
	return c.ReadReply(testutil.AnyReply)
}

// TestUDPOnly checks a server with UDP and no TCP listener (-p 0 -U N),
// and that closing it stops its reader (goleak checks at the end).
func TestUDPOnly(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{})
	if len(srv.Addrs()) != 0 {
		t.Fatalf("TCP addresses %v", srv.Addrs())
	}
	c := dialUDP(t, srv.UDPAddrs()[0].String())
	if got := payload(c.do("set k 0 0 1\r\nv\r\nget k\r\n")); got != "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n" {
		t.Errorf("got %q", got)
	}
	srv.Close()
	c.id++
	c.send(append(header(c.id, 0, 1, 0), "version\r\n"...))
	if parts, err := c.readMessage(c.id, 200*time.Millisecond); err == nil {
		t.Errorf("reply after Close: %q", parts)
	}
}

// TestUDPWithAuthFile checks that New refuses UDP with ASCII
// authentication, as memcached does: UDP requests cannot authenticate.
func TestUDPWithAuthFile(t *testing.T) {
	_, err := server.New(server.Config{UDPAddrs: []string{"127.0.0.1:0"}, AuthFile: writeAuthFile(t, authFileText)})
	if !errors.Is(err, server.ErrAuthWithUDP) {
		t.Errorf("New: %v, want ErrAuthWithUDP", err)
	}
}

// exchange sends body in one datagram, then a "version" probe in another,
// and returns what came back to body before the probe's reply: the
// datagrams of one socket are answered in order, so an empty result means
// body was not answered at all.
func (c *udpClient) exchange(body string) string {
	c.t.Helper()
	c.id++
	id := c.id
	c.send(append(header(id, 0, 1, 0), body...))
	c.id++
	c.send(append(header(c.id, 0, 1, 0), "version\r\n"...))
	var got []byte
	buf := make([]byte, 1<<16)
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := c.nc.Read(buf)
		if err != nil {
			c.t.Fatalf("%q: no reply to the probe after it: %v", body, err)
		}
		if n < 8 {
			c.t.Fatalf("%q: datagram of %d bytes", body, n)
		}
		switch binary.BigEndian.Uint16(buf) {
		case id:
			got = append(got, buf[8:n]...)
		case c.id:
			if string(buf[8:n]) != "VERSION 1.6.18\r\n" {
				c.t.Fatalf("%q: probe answered %q", body, buf[8:n])
			}
			return string(got)
		}
	}
}

// TestUDPWatchAndMetadump checks that "watch" and "lru_crawler metadump"
// over UDP are answered as memcached 1.6.18 answers them: the errors
// found before the command starts are sent, but a command that would
// start is dropped silently with the rest of its datagram, since a
// datagram peer cannot be streamed to. No watcher is left behind: twenty
// spoofable datagrams must not use up every watcher slot.
func TestUDPWatchAndMetadump(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	peers := map[string][2]string{"corvid": {srv.Addrs()[0].String(), srv.UDPAddrs()[0].String()}}
	if testutil.MemcachedPath() != "" {
		// One worker thread: datagrams are then answered in order.
		tcp, udp := startUDPMemcached(t, "-t", "1")
		peers["memcached"] = [2]string{tcp, udp}
	}
	tests := []struct {
		req, want  string
		corvidOnly bool // memcached's answer depends on timing
	}{
		{"watch\r\n", "", false},
		{"watch fetchers mutations\r\n", "", false},
		// memcached hands the datagram socket to its logger thread, whose
		// first write fails (no peer address) and gives the connection back
		// to its worker: the rest of the datagram is answered or not by
		// which comes first.
		{"watch\r\nversion\r\n", "", true},
		{"watch bogus\r\n", "ERROR\r\n", false},
		{"version\r\nwatch\r\n", "VERSION 1.6.18\r\nERROR cannot pipeline other commands before watch\r\n", false},
		{"lru_crawler metadump all\r\n", "", false},
		{"lru_crawler metadump hash\r\n", "", false},
		// memcached drops the rest of the datagram unless its crawler
		// has finished by the time it looks again.
		{"lru_crawler metadump 1\r\nversion\r\n", "", true},
		{"lru_crawler metadump 99\r\n", "BADCLASS invalid class id\r\n", false},
		{"version\r\nlru_crawler metadump all\r\n", "VERSION 1.6.18\r\nERROR cannot pipeline other commands before metadump\r\n", false},
	}
	for name, addrs := range peers {
		t.Run(name, func(t *testing.T) {
			tc := testutil.Dial(t, addrs[0])
			tc.Send([]byte("set k 0 0 1\r\nv\r\n"))
			if got := tc.ReadReply(testutil.LineReply); string(got) != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
			c := dialUDP(t, addrs[1])
			c.do("version\r\n") // the socket is bound
			for _, tt := range tests {
				if tt.corvidOnly && name != "corvid" {
					continue
				}
				if got := c.exchange(tt.req); got != tt.want {
					t.Errorf("%q: got %q, want %q", tt.req, got, tt.want)
				}
			}
			for range 25 {
				if got := c.exchange("watch\r\n"); got != "" {
					t.Fatalf("watch: got %q", got)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				n := readStats(t, tc, "stats\r\n")["log_watchers"]
				if n == "0" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("log_watchers = %s after watch over UDP, want 0", n)
				}
				time.Sleep(10 * time.Millisecond)
			}
			watchConn(t, addrs[0], "watch")
		})
	}
}

// TestUDPWatchAndMetadumpDisabled checks that -W and -X refuse watch and
// metadump over UDP with their usual errors.
func TestUDPWatchAndMetadumpDisabled(t *testing.T) {
	srv := startUDPCorvid(t, server.Config{DisableWatch: true, DisableDumping: true})
	c := dialUDP(t, srv.UDPAddrs()[0].String())
	c.do("version\r\n") // the socket is bound
	for req, want := range map[string]string{
		"watch\r\n":                    "CLIENT_ERROR watch commands not allowed\r\n",
		"lru_crawler metadump all\r\n": "ERROR metadump not allowed\r\n",
	} {
		if got := c.exchange(req); got != want {
			t.Errorf("%q: got %q, want %q", req, got, want)
		}
	}
}

package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// limitConnTimeout bounds each wait of the connection limit tests.
const limitConnTimeout = 10 * time.Second

// recordingConn keeps every byte read from it, so that what a server
// wrote in the clear to a TLS client can be shown.
type recordingConn struct {
	net.Conn
	got []byte
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.got = append(c.got, p[:n]...)
	return n, err
}

// limitClient is one client of a connection limit test.
type limitClient struct {
	raw *recordingConn
	rw  io.ReadWriter // raw, or a TLS client over it
	r   *bufio.Reader
}

// dialLimit connects to addr, over TLS when tlsCfg is set, and sends
// "version". It fails the test when the connection cannot be made.
func dialLimit(t *testing.T, addr string, tlsCfg *tls.Config) *limitClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, limitConnTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &limitClient{raw: &recordingConn{Conn: nc}}
	c.rw = c.raw
	if tlsCfg != nil {
		c.rw = tls.Client(c.raw, tlsCfg)
	}
	c.r = bufio.NewReader(c.rw)
	nc.SetDeadline(time.Now().Add(limitConnTimeout))
	io.WriteString(c.rw, "version\r\n")
	return c
}

// served reads the reply to "version": it returns true for a VERSION
// line, else false with everything the server wrote before closing (in
// the clear, also to a TLS client).
func (c *limitClient) served() (bool, string) {
	c.raw.SetReadDeadline(time.Now().Add(limitConnTimeout))
	l, err := c.r.ReadString('\n')
	if err == nil && strings.HasPrefix(l, "VERSION ") {
		return true, l
	}
	io.Copy(io.Discard, c.raw) // the rest, until the server closes
	return false, string(c.raw.got)
}

// stats returns the values of "stats" read over c.
func (c *limitClient) stats(t *testing.T) map[string]string {
	t.Helper()
	c.raw.SetDeadline(time.Now().Add(limitConnTimeout))
	io.WriteString(c.rw, "stats\r\n")
	m := map[string]string{}
	for range 1000 {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		if l == "END\r\n" {
			return m
		}
		if f := strings.Fields(l); len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
	t.Fatal("stats: no END")
	return nil
}

// connStats are the stats a connection limit test compares.
var connStats = []string{"max_connections", "curr_connections", "rejected_connections", "accepting_conns", "listen_disabled_num"}

func pickStats(m map[string]string) string {
	var b strings.Builder
	for _, name := range connStats {
		v, ok := m[name]
		if !ok {
			v = "(none)"
		}
		fmt.Fprintf(&b, "%s=%s ", name, v)
	}
	return b.String()
}

// fillUntilRefused opens connections to addr until one is not served
// and returns the number served, what the refused one read, and the
// stats seen then. The clients stay open until the test ends.
func fillUntilRefused(t *testing.T, addr string, tlsCfg *tls.Config) string {
	t.Helper()
	var first *limitClient
	for n := range 200 {
		c := dialLimit(t, addr, tlsCfg)
		ok, reply := c.served()
		if !ok {
			if first == nil {
				t.Fatalf("the first connection is refused: %q", reply)
			}
			return fmt.Sprintf("served %d, then %q; %s", n, reply, pickStats(first.stats(t)))
		}
		if first == nil {
			first = c
		}
	}
	t.Fatal("200 connections served")
	return ""
}

// memcachedFDs is how many descriptors memcached keeps open for itself
// with threads worker threads and sockets listening sockets (see
// Config.MaxConns).
func memcachedFDs(threads, sockets int) int { return 6 + 4*threads + sockets }

// TestConnLimitMatchesMemcached checks that corvid refuses the connection
// memcached 1.6.18 refuses for the same -c, -t and listeners, with the
// same line, and counts it the same: memcached's -c limits descriptors,
// and it keeps some for itself (4 per thread, and 1 per listening socket,
// a UDP one counting once per thread).
func TestConnLimitMatchesMemcached(t *testing.T) {
	tlsFiles := newTLSFiles(t)
	for _, tc := range []struct {
		name    string
		args    []string
		cfg     server.Config
		sockets int
		tls     bool
	}{
		{"c30 t2", []string{"-c", "30", "-t", "2"}, server.Config{MaxConns: 30, Threads: 2}, 1, false},
		{"c40 t4", []string{"-c", "40", "-t", "4"}, server.Config{MaxConns: 40, Threads: 4}, 1, false},
		{"c30 t2 udp", []string{"-c", "30", "-t", "2", "-U", "udp"}, server.Config{MaxConns: 30, Threads: 2,
			UDPAddrs: []string{"127.0.0.1:0"}}, 3, false},
		{"c30 t2 tls", []string{"-c", "30", "-t", "2", "-Z", "-o", "ssl_chain_cert=" + tlsFiles.cert + ",ssl_key=" + tlsFiles.key},
			server.Config{MaxConns: 30, Threads: 2, TLS: tlsFiles.config()}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tlsCfg *tls.Config
			if tc.tls {
				tlsCfg = tlsFiles.clientConfig()
			}
			served := tc.cfg.MaxConns - 1 - memcachedFDs(tc.cfg.Threads, tc.sockets)
			// The asking client is one of the served ones; the
			// listeners count in curr_connections, less one.
			want := fmt.Sprintf("served %d, then %q; max_connections=%d curr_connections=%d "+
				"rejected_connections=1 accepting_conns=1 listen_disabled_num=0 ",
				served, "ERROR Too many open connections\r\n", tc.cfg.MaxConns, served+tc.sockets-1)
			got := fillUntilRefused(t, testutil.StartCorvid(t, tc.cfg), tlsCfg)
			if got != want {
				t.Errorf("corvid:\n got %s\nwant %s", got, want)
			}
			if testutil.MemcachedPath() == "" || (tc.tls && !memcachedHasTLS()) {
				return
			}
			args := tc.args
			if args[len(args)-1] == "udp" {
				port, err := testutil.FreePort()
				if err != nil {
					t.Fatal(err)
				}
				args = append(args[:len(args)-1:len(args)-1], strconv.Itoa(port))
			}
			if got := fillUntilRefused(t, testutil.StartMemcached(t, args...), tlsCfg); got != want {
				t.Errorf("memcached:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestMaxConnsTooLow checks the limits below which New refuses to start,
// as memcached 1.6.18 refuses (its descriptors do not fit in -c, or its
// check that -c leaves room beyond 5 reserved descriptors per thread
// fails), and that the lowest accepted ones start.
func TestMaxConnsTooLow(t *testing.T) {
	for _, tc := range []struct {
		maxConns, threads int
		ok                bool
	}{
		{14, 2, false}, // 6 + 4*2 + 1 listener = 15 descriptors
		{15, 2, true},
		{10, 1, false},
		{11, 1, true},
		{42, 8, false}, // 1 listener + 5*8 reserved >= 42-1
		{43, 8, true},
	} {
		s, err := server.New(server.Config{TCPAddrs: []string{"127.0.0.1:0"}, MaxConns: tc.maxConns, Threads: tc.threads})
		if err == nil {
			s.Close()
		}
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, server.ErrMaxConnsTooLow)) {
			t.Errorf("-c %d -t %d: New: %v, want success %v", tc.maxConns, tc.threads, err, tc.ok)
		}
	}
}

// waitStats polls c's stats until cond holds of them, and returns them.
func waitStats(t *testing.T, c *limitClient, what string, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(limitConnTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		m := c.stats(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s: %s", what, pickStats(m))
		}
		time.Sleep(delay)
	}
}

// TestNoMaxConnsFastMatchesMemcached checks -o no_maxconns_fast against
// memcached 1.6.18: the client that takes the last descriptor of -c is
// served; the next one is not refused but waits, the server accepting
// nothing (accepting_conns 0, listen_disabled_num counting each stop),
// and is served once a connection closes; rejected_connections is not
// shown.
func TestNoMaxConnsFastMatchesMemcached(t *testing.T) {
	servers := map[string]string{
		"corvid": testutil.StartCorvid(t, server.Config{MaxConns: 24, Threads: 1, NoMaxConnsFast: true}),
	}
	if testutil.MemcachedPath() != "" {
		servers["memcached"] = testutil.StartMemcached(t, "-c", "24", "-t", "1", "-o", "no_maxconns_fast")
	}
	const served = 24 - (6 + 4 + 1) // one thread, one listener
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			var clients []*limitClient
			for i := range served {
				c := dialLimit(t, addr, nil)
				if ok, reply := c.served(); !ok {
					t.Fatalf("client %d is not served: %q", i, reply)
				}
				clients = append(clients, c)
			}
			first := clients[0]
			if m := first.stats(t); pickStats(m) != "max_connections=24 curr_connections=13 rejected_connections=(none) accepting_conns=1 listen_disabled_num=0 " {
				t.Errorf("full: %s", pickStats(m))
			}
			waiting := dialLimit(t, addr, nil)
			waitStats(t, first, "stop listening", func(m map[string]string) bool {
				return m["accepting_conns"] == "0" && m["listen_disabled_num"] == "1"
			})
			clients[1].raw.Close()
			if ok, reply := waiting.served(); !ok {
				t.Fatalf("the waiting client is not served once another closes: %q", reply)
			}
			m := waitStats(t, first, "listening again", func(m map[string]string) bool { return m["accepting_conns"] == "1" })
			if got := pickStats(m); got != "max_connections=24 curr_connections=13 rejected_connections=(none) accepting_conns=1 listen_disabled_num=1 " {
				t.Errorf("after the waiting client is served: %s", got)
			}
			if m["time_in_listen_disabled_us"] == "0" {
				t.Error("time_in_listen_disabled_us stays 0")
			}
			// Full again: the next client stops the listeners again.
			dialLimit(t, addr, nil)
			waitStats(t, first, "second stop", func(m map[string]string) bool {
				return m["accepting_conns"] == "0" && m["listen_disabled_num"] == "2"
			})
		})
	}
}

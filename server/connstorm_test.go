package server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// stormDial connects to addr (over TLS when cfg is set) and sends
// "version"; how it ends is chosen by i: closed at once, after the
// request is written, or after its reply (or refusal) is read.
func stormDial(network, addr string, cfg *tls.Config, i int) {
	nc, err := net.DialTimeout(network, addr, limitConnTimeout)
	if err != nil {
		return
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(limitConnTimeout))
	var rw io.ReadWriter = nc
	if cfg != nil {
		rw = tls.Client(nc, cfg)
	}
	switch i % 3 {
	case 0:
	case 1:
		io.WriteString(rw, "version\r\n")
	default:
		io.WriteString(rw, "version\r\n")
		bufio.NewReader(rw).ReadString('\n')
	}
}

// fillServed opens clients until one is not served, over network to
// addr (TLS when cfg is set), and returns how many were; it closes them.
func fillServed(t *testing.T, network, addr string, cfg *tls.Config) int {
	t.Helper()
	var open []net.Conn
	defer func() {
		for _, nc := range open {
			nc.Close()
		}
	}()
	for n := range 200 {
		nc, err := net.DialTimeout(network, addr, limitConnTimeout)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, nc)
		nc.SetDeadline(time.Now().Add(time.Second))
		var rw io.ReadWriter = nc
		if cfg != nil {
			rw = tls.Client(nc, cfg)
		}
		io.WriteString(rw, "version\r\n")
		if l, err := bufio.NewReader(rw).ReadString('\n'); err != nil || l[:8] != "VERSION " {
			return n
		}
	}
	t.Fatal("200 clients served")
	return 0
}

// TestConnLimitStorm opens and closes connections in a storm at the
// limit, over a Unix socket and TCP (plain or TLS), with and without
// maxconns_fast: once they are all gone, the server counts none of them
// (curr_connections as before), accepts, and serves as many clients as
// before the storm.
func TestConnLimitStorm(t *testing.T) {
	f := newTLSFiles(t)
	for _, useTLS := range []bool{false, true} {
		for _, fast := range []bool{true, false} {
			t.Run(fmt.Sprintf("tls=%v,maxconns_fast=%v", useTLS, fast), func(t *testing.T) {
				unix := filepath.Join(t.TempDir(), "s.sock")
				cfg := server.Config{
					MaxConns: 40, Threads: 1, NoMaxConnsFast: !fast,
					TCPAddrs: []string{"127.0.0.1:0"}, UnixPath: unix,
				}
				var clientTLS *tls.Config
				if useTLS {
					cfg.TLS = f.config()
					clientTLS = f.clientConfig()
				}
				srv := testutil.ServeCorvid(t, cfg)
				tcp := srv.Addrs()[0].String()
				first := dialLimit(t, tcp, clientTLS)
				if ok, reply := first.served(); !ok {
					t.Fatalf("first client: %q", reply)
				}
				before := first.stats(t)["curr_connections"]
				capacity := fillServed(t, "unix", unix, nil)
				waitStats(t, first, "the fill's clients gone", func(m map[string]string) bool {
					return m["curr_connections"] == before && m["accepting_conns"] == "1"
				})

				var wg sync.WaitGroup
				for g := range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range 30 {
							if (g+i)%2 == 0 {
								stormDial("unix", unix, nil, g+i)
							} else {
								stormDial("tcp", tcp, clientTLS, g+i)
							}
						}
					}()
				}
				wg.Wait()
				m := waitStats(t, first, "every storm client gone", func(m map[string]string) bool {
					return m["curr_connections"] == before && m["accepting_conns"] == "1"
				})
				t.Logf("capacity %d; after the storm: %s", capacity, pickStats(m))
				if n := fillServed(t, "unix", unix, nil); n != capacity {
					t.Fatalf("%d clients served after the storm, %d before", n, capacity)
				}
			})
		}
	}
}

// TestListenDisabledShutdown stops a server with no_maxconns_fast that
// is full and accepts nothing, with clients waiting to be accepted: Close
// returns well within the grace, and every waiting client is closed
// (sees the end of the stream or a reset) instead of being left hanging.
func TestListenDisabledShutdown(t *testing.T) {
	srv := testutil.ServeCorvid(t, server.Config{MaxConns: 24, Threads: 1, NoMaxConnsFast: true, ShutdownGrace: 30 * time.Second,
		TCPAddrs: []string{"127.0.0.1:0"}})
	addr := srv.Addrs()[0].String()
	first := dialLimit(t, addr, nil)
	if ok, reply := first.served(); !ok {
		t.Fatalf("first client: %q", reply)
	}
	for range 24 - (6 + 4 + 1) - 1 {
		if ok, reply := dialLimit(t, addr, nil).served(); !ok {
			t.Fatalf("not served: %q", reply)
		}
	}
	var waiting []*limitClient
	for range 3 {
		waiting = append(waiting, dialLimit(t, addr, nil))
	}
	waitStats(t, first, "stop listening", func(m map[string]string) bool { return m["accepting_conns"] == "0" })
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		srv.Close()
	}()
	select {
	case <-closed:
	case <-time.After(limitConnTimeout):
		t.Fatal("Close hangs while the server is not listening")
	}
	for i, c := range waiting {
		c.raw.SetReadDeadline(time.Now().Add(limitConnTimeout))
		_, err := c.r.ReadString('\n')
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("waiting client %d is left open after Close", i)
		}
	}
}

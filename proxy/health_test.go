package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/ring"
	"github.com/corvidcache/corvid/server"
)

// answerEachLine answers every line read with reply.
func answerEachLine(reply string) func(net.Conn) {
	return func(nc net.Conn) {
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			if _, err := nc.Write([]byte(reply)); err != nil {
				return
			}
		}
	}
}

func TestServerTimeout(t *testing.T) {
	silent := testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
		}
	})
	p, addr := proxyFor(t, []string{silent}, "timeout: 100")
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte("get a\r\nset b 0 0 1\r\nx\r\nincr c 1\r\n"))
	for range 3 {
		if r := string(c.ReadReply(testutil.LineReply)); r != "SERVER_ERROR Connection timed out\r\n" {
			t.Fatalf("reply %q", r)
		}
	}
	s := p.Stats().Pools[0]
	if s.Servers[0].ServerTimedout != 1 || s.ForwardError != 3 {
		t.Errorf("stats after a timeout: %+v", s)
	}
}

// TestServerReplyReadBeforeTimeout: a reply that reached the proxy's
// socket is framed and answered even when the read deadline's timer ran
// before the server connection's reader did (here the reader is held on
// its connection's lock until after the deadline, and the reply comes
// meanwhile), as nutcracker handles the events of a wait before its
// timeouts: the request is not failed as timed out, and nothing counts a
// timeout.
func TestServerReplyReadBeforeTimeout(t *testing.T) {
	got := make(chan net.Conn, 1)
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		buf := make([]byte, 64)
		if _, err := nc.Read(buf); err != nil {
			return
		}
		got <- nc
		// Held open until the test ends.
		nc.Read(buf)
	})
	const timeout = 100 * time.Millisecond
	p, addr := proxyFor(t, []string{srv}, fmt.Sprintf("timeout: %d", timeout.Milliseconds()))
	if !rawIO {
		t.Skip("the proxy reads its sockets with net.Conn here")
	}
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte("get a\r\n"))
	var sc net.Conn
	select {
	case sc = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the server")
	}
	bc := p.pools[0].current().all[0].conns[0]
	bc.mu.Lock()
	time.Sleep(3 * timeout) // the deadline passes; the reader waits for mu
	if _, err := sc.Write([]byte("END\r\n")); err != nil {
		bc.mu.Unlock()
		t.Fatal(err)
	}
	time.Sleep(timeout / 2) // the reply is in the proxy's socket
	bc.mu.Unlock()
	if r := string(c.ReadReply(testutil.LineReply)); r != "END\r\n" {
		t.Fatalf("reply %q, want END", r)
	}
	if s := p.Stats().Pools[0].Servers[0]; s.ServerTimedout != 0 {
		t.Errorf("server_timedout %d, want 0", s.ServerTimedout)
	}
}

// A server that answers every request in time never times out, however
// long the requests keep coming past the timeout, and one that then stops
// answering times out when its oldest request is due: no sooner, and not
// a period later (the read deadline is set once per timeout or so, not
// per request, so it may pass for a request already answered).
func TestServerTimeoutAfterAnswers(t *testing.T) {
	srv := testutil.FakeServer(t, func(nc net.Conn) {
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			if sc.Text() == "get hang" {
				continue
			}
			if _, err := nc.Write([]byte("END\r\n")); err != nil {
				return
			}
		}
	})
	const timeout = 100 * time.Millisecond
	p, addr := proxyFor(t, []string{srv}, fmt.Sprintf("timeout: %d", timeout.Milliseconds()))
	c := testutil.Dial(t, addr)
	defer c.Close()
	// Requests for four timeouts, some spaced so that the connection
	// waits with nothing written.
	for start, i := time.Now(), 0; time.Since(start) < 4*timeout; i++ {
		if r := roundTrip(c, "get a\r\n", testutil.LineReply); r != "END\r\n" {
			t.Fatalf("request %d, %v after the first: reply %q", i, time.Since(start), r)
		}
		if i%50 == 0 {
			time.Sleep(timeout / 3)
		}
	}
	start := time.Now()
	c.Send([]byte("get hang\r\n"))
	if r := string(c.ReadReply(testutil.LineReply)); r != "SERVER_ERROR Connection timed out\r\n" {
		t.Fatalf("reply %q", r)
	}
	if d := time.Since(start); d < timeout*9/10 || d > 3*timeout {
		t.Errorf("timed out after %v; want about %v", d, timeout)
	}
	if s := p.Stats().Pools[0].Servers[0]; s.ServerTimedout != 1 {
		t.Errorf("server_timedout %d, want 1", s.ServerTimedout)
	}
}

func TestGarbageFromServer(t *testing.T) {
	for _, garbage := range []string{"HELLO\r\n", "VALUE a 0 99999999999\r\n", "STORED\n", "VA x\r\n", strings.Repeat("x", 20000)} {
		bad := testutil.FakeServer(t, answerEachLine(garbage))
		p, addr := proxyFor(t, []string{bad})
		c := testutil.Dial(t, addr)
		for range 2 {
			if r := roundTrip(c, "get a\r\n", testutil.LineReply); r != "SERVER_ERROR Invalid argument\r\n" {
				t.Errorf("%q: reply %q", garbage, r)
			}
		}
		if e := p.Stats().Pools[0].Servers[0].ServerErr; e != 2 {
			t.Errorf("%q: server_err %d, want 2", garbage, e)
		}
		c.Close()
	}
}

func TestServerRefused(t *testing.T) {
	dead := testutil.RefusedAddr(t)
	live := startCorvids(t, 1)[0]
	_, addr := proxyFor(t, []string{dead, live})
	c := testutil.Dial(t, addr)
	defer c.Close()
	// Without auto_eject_hosts, keys of the dead server get errors and
	// nothing moves; a multi-get touching it fails as a whole.
	r := testRing(t, []string{dead, live})
	var deadKey, liveKey string
	for i := 0; deadKey == "" || liveKey == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		if r.PickString(k) == 0 {
			deadKey = k
		} else {
			liveKey = k
		}
	}
	if got := roundTrip(c, "set "+deadKey+" 0 0 1\r\nx\r\n", testutil.LineReply); got != "SERVER_ERROR Connection refused\r\n" {
		t.Errorf("set on the dead server: %q", got)
	}
	if got := roundTrip(c, "set "+liveKey+" 0 0 1\r\nx\r\n", testutil.LineReply); got != "STORED\r\n" {
		t.Errorf("set on the live server: %q", got)
	}
	if got := roundTrip(c, "get "+liveKey+" "+deadKey+"\r\n", testutil.LineReply); got != "SERVER_ERROR Connection refused\r\n" {
		t.Errorf("get across both: %q", got)
	}
}

// TestKillOneOfThree stops one of three backends under load: only its
// keys fail, and with auto_eject_hosts the errors stop well within
// server_retry_timeout.
func TestKillOneOfThree(t *testing.T) {
	var srvs []*server.Server
	var addrs []string
	for range 3 {
		s := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
		srvs = append(srvs, s)
		addrs = append(addrs, s.Addrs()[0].String())
	}
	const retry = 20 * time.Second
	_, paddr := proxyFor(t, addrs, "auto_eject_hosts: true", "server_failure_limit: 2",
		fmt.Sprintf("server_retry_timeout: %d", retry.Milliseconds()), "timeout: 1000")
	placement := testRing(t, addrs)
	// Keys on every server, 100 each.
	var keys []string
	per := make([]int, len(addrs))
	for i := 0; len(keys) < 100*len(addrs) && i < 1e6; i++ {
		k := fmt.Sprintf("load%d", i)
		if s := placement.PickString(k); per[s] < 100 {
			per[s]++
			keys = append(keys, k)
		}
	}

	var (
		stop      atomic.Bool
		wrongKeys atomic.Int64 // errors for keys of a live server
		okCount   atomic.Int64
		mu        sync.Mutex
		lastErr   time.Time
		errs      int
		wg        sync.WaitGroup
	)
	killed := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", paddr)
			if err != nil {
				return
			}
			defer nc.Close()
			rd := bufio.NewReader(nc)
			for i := g; !stop.Load() && i < 1e7; i++ {
				k := keys[i%len(keys)]
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := fmt.Fprintf(nc, "set %s 0 0 1\r\nx\r\n", k); err != nil {
					return
				}
				line, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if line == "STORED\r\n" {
					okCount.Add(1)
				} else {
					select {
					case <-killed:
					default:
						wrongKeys.Add(1) // an error before the kill
					}
					if placement.PickString(k) != 1 {
						wrongKeys.Add(1)
					}
					mu.Lock()
					lastErr, errs = time.Now(), errs+1
					mu.Unlock()
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	testutil.WaitFor(t, func() bool { return okCount.Load() > 200 })
	// Mark the kill first: a request failing as the server stops is not
	// an error before the kill.
	killedAt := time.Now()
	close(killed)
	srvs[1].Close()
	// Errors must stop: wait for a second without any.
	testutil.WaitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return errs > 0 && time.Since(lastErr) > time.Second
	})
	mu.Lock()
	settled := lastErr.Sub(killedAt)
	mu.Unlock()
	if settled > retry/2 {
		t.Errorf("errors went on for %v after the kill", settled)
	}
	if n := wrongKeys.Load(); n > 0 {
		t.Errorf("%d errors for keys of live servers", n)
	}
}

// testRing is the default ketama ring over addrs (weight 1 each).
func testRing(t *testing.T, addrs []string) *ring.Ring {
	t.Helper()
	var servers []ring.Server
	for _, a := range addrs {
		servers = append(servers, ring.Server{Addr: a, Weight: 1})
	}
	r, err := ring.New(ring.Config{Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

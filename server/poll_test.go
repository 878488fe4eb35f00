package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// ioModes are the ways a server can serve its connections; the behaviour
// tests below run against each.
var ioModes = []struct {
	name  string
	loops int
}{
	{"goroutines", 0},
	{"eventloops", 2},
}

// forEachMode runs test once per connection mode, passing a function that
// sets the mode in a Config. It sets the mode itself, so a run of the
// suite with CORVID_TEST_EVENT_LOOPS (the event loops' pass, after a pass
// without it) skips it rather than repeat both modes.
func forEachMode(t *testing.T, test func(t *testing.T, mode func(Config) Config)) {
	if testEventLoops() > 0 {
		t.Skip("runs in both connection modes without CORVID_TEST_EVENT_LOOPS")
	}
	for _, m := range ioModes {
		t.Run(m.name, func(t *testing.T) {
			if m.loops > 0 && runtime.GOOS != "linux" {
				t.Skip("event loops are Linux only")
			}
			test(t, func(cfg Config) Config {
				cfg.EventLoops = m.loops
				return cfg
			})
		})
	}
}

func TestModeBasicCommands(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		c := dial(t, "tcp", addr)
		c.expect("set k 5 0 3\r\nabc\r\n", "STORED")
		c.expect("get k\r\n", "VALUE k 5 3", "abc", "END")
		c.expect("add k 0 0 1\r\nx\r\n", "NOT_STORED")
		c.expect("append k 0 0 2\r\nde\r\n", "STORED")
		c.expect("get k nope\r\n", "VALUE k 5 5", "abcde", "END")
		c.expect("set n 0 0 2\r\n10\r\n", "STORED")
		c.expect("incr n 5\r\n", "15")
		c.expect("delete n\r\n", "DELETED")
		c.expect("set q 0 0 1 noreply\r\nq\r\nget q\r\n", "VALUE q 0 1", "q", "END")
		c.expect("bogus\r\n", "ERROR")
		// Pipelined requests and a quit in one packet: all answered,
		// then closed.
		c.expect("get q\r\nversion\r\nquit\r\nget q\r\n",
			"VALUE q 0 1", "q", "END", "VERSION "+Version)
		if !c.closed() {
			t.Error("quit did not close the connection")
		}
	})
}

// TestModeSplitInput feeds requests one byte at a time: the parser must resume.
func TestModeSplitInput(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		c := dial(t, "tcp", addr)
		for _, b := range []byte("set k 0 0 5\r\nhello\r\nget k\r\n") {
			c.send(string(b))
		}
		for _, want := range []string{"STORED", "VALUE k 0 5", "hello", "END"} {
			if got := c.line(); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	})
}

func TestModeLargeValues(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		c := dial(t, "tcp", addr)
		big := strings.Repeat("v", 1000*1000)
		c.expect("set big 0 0 1000000\r\n"+big+"\r\n", "STORED")
		c.send("get big\r\n")
		if got := c.line(); got != "VALUE big 0 1000000" {
			t.Fatalf("got %q", got)
		}
		if got := c.line(); got != big {
			t.Fatalf("value differs (len %d)", len(got))
		}
		c.expect("", "END")
		// A value over -I is answered at once, swallowed, and a set drops
		// the old value so stale data cannot persist.
		huge := strings.Repeat("h", 2<<20)
		c.expect("set big 0 0 2097152\r\n"+huge+"\r\nget big\r\n",
			"SERVER_ERROR object too large for cache", "END")
		if got := c.stat("store_too_large"); got != "1" {
			t.Errorf("store_too_large = %s, want 1", got)
		}
	})
}

func TestModeLineTooLong(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		g := dial(t, "tcp", addr)
		g.send("get " + strings.Repeat("k ", 2000))
		g.expect("\r\n", "END")
		c := dial(t, "tcp", addr)
		c.send(strings.Repeat("x", 3000))
		if !c.closed() {
			t.Error("connection stays open after a 3000-byte line")
		}
	})
}

func TestModeConnectionLimit(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		s, addr := start(t, mode(Config{Threads: 1, MaxConns: twoClients}))
		a := dial(t, "tcp", addr)
		a.expect("version\r\n", "VERSION "+Version)
		b := dial(t, "tcp", addr)
		b.expect("version\r\n", "VERSION "+Version)
		extra := dial(t, "tcp", addr)
		if got := extra.line(); got != "ERROR Too many open connections" {
			t.Fatalf("got %q", got)
		}
		if !extra.closed() {
			t.Error("connection over the limit stays open")
		}
		// A closed connection frees its slot.
		b.nc.Close()
		waitFor(t, "connection count to drop", func() bool { return s.currConns() == 1 })
		d := dial(t, "tcp", addr)
		d.expect("version\r\n", "VERSION "+Version)
		if got := a.stat("rejected_connections"); got != "1" {
			t.Errorf("stats rejected_connections = %s", got)
		}
	})
}

func TestModeIdleTimeout(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{IdleTimeout: 200 * time.Millisecond}))
		idle := dial(t, "tcp", addr)
		idle.expect("version\r\n", "VERSION "+Version)
		if !idle.closed() {
			t.Fatal("idle connection was not closed")
		}
		c := dial(t, "tcp", addr)
		if got := c.stat("idle_kicks"); got != "1" {
			t.Errorf("idle_kicks = %q, want 1", got)
		}
	})
}

// TestModeWatcherOutlivesIdleTimeout checks that a watcher is not an idle
// connection: memcached's idle timeout skips watchers, so one that only
// receives log lines is never kicked.
func TestModeWatcherOutlivesIdleTimeout(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{IdleTimeout: 200 * time.Millisecond}))
		w := dial(t, "tcp", addr)
		w.expect("watch fetchers\r\n", "OK")
		// An idle connection opened after the watcher's last command
		// is kicked: the watcher has then been silent for longer than
		// the timeout too.
		idle := dial(t, "tcp", addr)
		idle.expect("version\r\n", "VERSION "+Version)
		if !idle.closed() {
			t.Fatal("idle connection was not closed")
		}
		c := dial(t, "tcp", addr)
		c.expect("get wkey\r\n", "END")
		w.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := w.r.ReadString('\n')
		if err != nil || !strings.Contains(l, "key=wkey") {
			t.Fatalf("watcher read %q, %v; want the item_get line", l, err)
		}
	})
}

func TestModeUnixSocket(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		path := filepath.Join(t.TempDir(), "corvid.sock")
		_, _ = start(t, mode(Config{UnixPath: path}))
		c := dial(t, "unix", path)
		c.expect("set k 0 0 1\r\nv\r\nget k\r\n", "STORED", "VALUE k 0 1", "v", "END")
	})
}

func TestModeStatsConns(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		c := dial(t, "tcp", addr)
		c.send("stats conns\r\n")
		want := "tcp:" + c.nc.LocalAddr().String()
		found := false
		for {
			l := c.line()
			if l == "END" {
				break
			}
			if strings.HasSuffix(l, ":addr "+want) {
				found = true
			}
		}
		if !found {
			t.Errorf("stats conns does not list %s", want)
		}
	})
}

func TestModeShutdownCommand(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		s, err := New(mode(Config{TCPAddrs: []string{"127.0.0.1:0"}, EnableShutdown: true}))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		d := dial(t, "tcp", s.Addrs()[0].String())
		d.send("shutdown\r\n")
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("shutdown did not stop the server")
		}
		if !d.closed() {
			t.Error("connection left open after shutdown")
		}
	})
}

// TestModeGracefulStop checks that requests already sent are answered when
// the server is stopped, and that every connection is closed.
func TestModeGracefulStop(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		s, err := New(mode(Config{TCPAddrs: []string{"127.0.0.1:0"}}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		var cs []*client
		for range 5 {
			c := dial(t, "tcp", s.Addrs()[0].String())
			c.expect("set k 0 0 1\r\nv\r\n", "STORED")
			cs = append(cs, c)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			if !c.closed() {
				t.Errorf("connection %d left open after stop", i)
			}
		}
	})
}

// TestModeCloseWithoutServe checks that a server created but never served
// releases its event loops.
func TestModeCloseWithoutServe(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		s, err := New(mode(Config{TCPAddrs: []string{"127.0.0.1:0"}}))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

// TestModeSlowReader pipelines many gets of a large value without reading,
// then reads everything: replies the socket cannot take at once must all
// arrive, in order, however long the client waits.
func TestModeSlowReader(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		c := dial(t, "tcp", addr)
		val := strings.Repeat("0123456789", 50*1000) // 500 KB
		c.expect(fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(val), val), "STORED")
		const gets = 40
		// A multi-get of several large values goes through the flush
		// inside a request as well.
		req := strings.Repeat("get big\r\n", gets) + "get big big big\r\nversion\r\n"
		c.send(req)
		time.Sleep(200 * time.Millisecond) // let the server fill the socket
		header := fmt.Sprintf("VALUE big 0 %d", len(val))
		for i := range gets {
			if got := c.line(); got != header {
				t.Fatalf("get %d: got %q", i, got)
			}
			if got := c.line(); got != val {
				t.Fatalf("get %d: value differs (len %d)", i, len(got))
			}
			if got := c.line(); got != "END" {
				t.Fatalf("get %d: got %q", i, got)
			}
		}
		for i := range 3 {
			if got := c.line(); got != header {
				t.Fatalf("multi-get %d: got %q", i, got)
			}
			if got := c.line(); got != val {
				t.Fatalf("multi-get %d: value differs (len %d)", i, len(got))
			}
		}
		c.expect("", "END", "VERSION "+Version)
	})
}

// TestModeManyClients runs concurrent clients, more than there are loops,
// each with its own keys.
func TestModeManyClients(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		const clients, rounds = 16, 200
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			c := dial(t, "tcp", addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- exchange(c, i, rounds)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

// exchange sets and gets rounds keys on c, without t (it runs on its own
// goroutine).
func exchange(c *client, id, rounds int) error {
	for j := range rounds {
		key := fmt.Sprintf("c%d-%d", id, j)
		val := strings.Repeat("x", j%300)
		req := fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", key, len(val), val, key)
		if _, err := io.WriteString(c.nc, req); err != nil {
			return err
		}
		want := fmt.Sprintf("STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c.r, got); err != nil {
			return err
		}
		if string(got) != want {
			return fmt.Errorf("client %d round %d: got %q, want %q", id, j, got, want)
		}
	}
	return nil
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoopReadBuffersMoveBetweenConnections checks that a connection
// keeps its partial request while drained connections of the same loop
// hand their read buffers on.
func TestLoopReadBuffersMoveBetweenConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux only")
	}
	_, addr := start(t, Config{EventLoops: 1})
	a := dial(t, "tcp", addr)
	b := dial(t, "tcp", addr)
	// The version reply shows the server has read a's partial set.
	a.expect("version\r\nset ka 0 0 10\r\n01234", "VERSION "+Version)
	big := strings.Repeat("x", 40<<10)
	for range 3 {
		b.expect("set kb 0 0 3\r\nabc\r\nget kb\r\n", "STORED", "VALUE kb 0 3", "abc", "END")
		b.expect("set big 0 0 "+fmt.Sprint(len(big))+"\r\n"+big+"\r\n", "STORED")
		b.expect("get big\r\n", "VALUE big 0 "+fmt.Sprint(len(big)), big, "END")
	}
	a.expect("56789\r\n", "STORED")
	a.expect("get ka kb\r\n", "VALUE ka 0 10", "0123456789", "VALUE kb 0 3", "abc", "END")
	b.expect("get ka\r\n", "VALUE ka 0 10", "0123456789", "END")
}

// TestModeStatsCountedBeforeClose checks that a connection's commands are
// in "stats" by the time its client sees the server close it.
func TestModeStatsCountedBeforeClose(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{}))
		admin := dial(t, "tcp", addr)
		for i := 1; i <= 100; i++ {
			c := dial(t, "tcp", addr)
			c.send("get a\r\nquit\r\n")
			if l := c.line(); l != "END" {
				t.Fatalf("get: %q", l)
			}
			if !c.closed() {
				t.Fatal("quit did not close the connection")
			}
			if got := admin.stat("cmd_get"); got != fmt.Sprint(i) {
				t.Fatalf("after %d closed connections cmd_get is %s", i, got)
			}
		}
	})
}

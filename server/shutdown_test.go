package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// stuckValue is the value stuckReader asks for again and again.
var stuckValue = strings.Repeat("0123456789", 50*1000)

// stuckReader stores a 500 KB value through addr and returns a client that
// asked for it 80 times (40 MB, more than sockets buffer) and read only
// the first reply line: the server is then writing replies to a client
// that does not read.
func stuckReader(t *testing.T, addr string) *client {
	t.Helper()
	c := dial(t, "tcp", addr)
	c.expect(fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(stuckValue), stuckValue), "STORED")
	c.send(strings.Repeat("get big\r\n", 80))
	if got, want := c.line(), fmt.Sprintf("VALUE big 0 %d", len(stuckValue)); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	return c
}

// closedAfterData reads what the server still sends and reports whether
// it then closed the connection (EOF or reset) within five seconds.
func (c *client) closedAfterData() bool {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c.r)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// serveUntilStopped serves s in a goroutine and returns a function that
// stops it and reports how long Serve took to return, failing the test
// when it has not returned within limit.
func serveUntilStopped(t *testing.T, s *Server) (stop func(limit time.Duration) time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done // the test's clients are closed first (cleanups run last first)
	})
	return func(limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			done <- err
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(limit):
			t.Fatalf("the server did not stop within %v", limit)
		}
		return time.Since(start)
	}
}

// TestModeStopClosesStuckConns stops a server that is writing a large
// reply to a client that does not read, beside a half-sent request, an
// idle connection and a watcher: once the shutdown grace is over every
// connection is closed, Serve returns and the snapshot is saved.
func TestModeStopClosesStuckConns(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		snap := filepath.Join(t.TempDir(), "snapshot")
		const grace = 200 * time.Millisecond
		s, err := New(mode(Config{TCPAddrs: []string{"127.0.0.1:0"}, ShutdownGrace: grace, SnapshotFile: snap}))
		if err != nil {
			t.Fatal(err)
		}
		stop := serveUntilStopped(t, s)
		addr := s.Addrs()[0].String()
		stuck := stuckReader(t, addr)
		half := dial(t, "tcp", addr)
		half.send("set half 0 0 10\r\nabc")
		idle := dial(t, "tcp", addr)
		idle.expect("version\r\n", "VERSION "+Version)
		w := dial(t, "tcp", addr)
		w.expect("watch mutations\r\n", "OK")

		took := stop(grace + 10*time.Second)
		if took < grace {
			t.Errorf("stopped after %v, before the grace of %v was over", took, grace)
		}
		for name, c := range map[string]*client{"stuck": stuck, "half-sent": half, "idle": idle, "watcher": w} {
			if !c.closedAfterData() {
				t.Errorf("%s connection left open after stop", name)
			}
		}
		_, addr = start(t, Config{SnapshotFile: snap})
		c := dial(t, "tcp", addr)
		c.expect("get big half\r\n", fmt.Sprintf("VALUE big 0 %d", len(stuckValue)), stuckValue, "END")
	})
}

// TestModeCloseNowSkipsGrace stops a server with an hour of grace and a
// client that does not read; CloseNow then closes it at once.
func TestModeCloseNowSkipsGrace(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		snap := filepath.Join(t.TempDir(), "snapshot")
		s, err := New(mode(Config{TCPAddrs: []string{"127.0.0.1:0"}, ShutdownGrace: time.Hour, SnapshotFile: snap}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		stuck := stuckReader(t, s.Addrs()[0].String())
		t.Cleanup(func() {
			stuck.nc.Close() // unblocks the server should the test fail
			<-done
		})
		cancel()
		waitFor(t, "the server to begin stopping", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.closing
		})
		closed := make(chan struct{})
		go func() {
			s.CloseNow()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("CloseNow did not close the server")
		}
		select {
		case err := <-done:
			done <- err
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after CloseNow")
		}
		if !stuck.closedAfterData() {
			t.Error("stuck connection left open")
		}
		_, addr := start(t, Config{SnapshotFile: snap})
		c := dial(t, "tcp", addr)
		c.expect("get big\r\n", fmt.Sprintf("VALUE big 0 %d", len(stuckValue)), stuckValue, "END")
	})
}

// TestStopBeatsIdleDeadline stops a goroutine-served connection just
// before it sets the idle timeout's read deadline for its next read: the
// read must still end at once, not when the idle timeout (an hour) is up.
func TestStopBeatsIdleDeadline(t *testing.T) {
	reached := make(chan struct{})
	var once sync.Once
	testHookIdleDeadline = func(c *conn) {
		once.Do(func() {
			close(reached)
			// Hold the connection here until the server has stopped it.
			for deadline := time.Now().Add(10 * time.Second); !c.stopped.Load() && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		})
	}
	t.Cleanup(func() { testHookIdleDeadline = nil })
	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, IdleTimeout: time.Hour, ShutdownGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := serveUntilStopped(t, s)
	c := dial(t, "tcp", s.Addrs()[0].String())
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection never prepared a read")
	}
	stop(10 * time.Second)
	if !c.closed() {
		t.Error("connection left open after stop")
	}
}

// TestSnapshotPathCheckedAtStart gives New a snapshot file it could not
// save to: New fails, as memcached fails to start, instead of serving for
// days and losing the cache at the stop.
func TestSnapshotPathCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{
		"missing directory": filepath.Join(dir, "missing", "snapshot"),
		"directory":         dir,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, SnapshotFile: path})
			if err == nil {
				s.Close()
				t.Fatalf("New accepted snapshot file %s", path)
			}
		})
	}
	// A writable one is accepted, and the check leaves nothing behind.
	path := filepath.Join(dir, "snapshot")
	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, SnapshotFile: path, ShutdownGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("files left by the check: %v", left)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no snapshot saved: %v", err)
	}
}

// TestServeReportsFailedSave removes the snapshot's directory while the
// server runs: the stop cannot save the cache, and Serve (and Close) say
// so instead of reporting a clean stop.
func TestServeReportsFailedSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snapshots")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, SnapshotFile: filepath.Join(dir, "snapshot")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve returned nil after failing to save the snapshot")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if s.Close() == nil {
		t.Error("Close returned nil after failing to save the snapshot")
	}
}

// TestServeReturnsAfterClose closes a server without cancelling Serve's
// context, while Serve runs and before it is called: Serve returns in
// both cases instead of waiting forever on a closed server.
func TestServeReturnsAfterClose(t *testing.T) {
	for _, before := range []bool{false, true} {
		t.Run(fmt.Sprintf("before=%v", before), func(t *testing.T) {
			s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}})
			if err != nil {
				t.Fatal(err)
			}
			if before {
				s.Close()
			}
			done := make(chan error, 1)
			go func() { done <- s.Serve(context.Background()) }()
			if !before {
				// Serve is accepting once a connection is answered.
				c := dial(t, "tcp", s.Addrs()[0].String())
				c.expect("version\r\n", "VERSION "+Version)
				s.Close()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				s.requestShutdown() // lets Serve return
				<-done
				t.Fatal("Serve did not return after Close")
			}
		})
	}
}

// TestStopLeavesSuccessorSocket starts a second server on the Unix socket
// path of a first one, as an overlapping restart does (the newcomer
// replaces the socket file, as memcached's start does), then stops the
// first: the path must still reach the second. A server alone removes its
// socket file when it stops.
func TestStopLeavesSuccessorSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corvid.sock")
	alone, err := New(Config{UnixPath: path})
	if err != nil {
		t.Fatal(err)
	}
	alone.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after the stop: %v", err)
	}
	old, err := New(Config{UnixPath: path})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	_, _ = start(t, Config{UnixPath: path})
	old.Close()
	c := dial(t, "unix", path)
	c.expect("version\r\n", "VERSION "+Version)
}

// TestModeStopFinishesMetadump stops a server while it streams a metadump
// to a client that reads: the dump, a request already received, goes on
// within the grace, and is never cut short and ended with END as if it
// were whole.
func TestModeStopFinishesMetadump(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		const items = 200000 // about 15 MB of dump
		s, err := New(mode(Config{TCPAddrs: []string{"127.0.0.1:0"}, ShutdownGrace: time.Minute,
			Storage: storage.Config{MemoryLimit: 256 << 20}}))
		if err != nil {
			t.Fatal(err)
		}
		for i := range items {
			if _, err := s.cache.Store(storage.ModeSet, fmt.Appendf(nil, "key:%d", i), 0, 0, []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
		}
		stop := serveUntilStopped(t, s)
		d := dialSmall(t, s.Addrs()[0].String())
		d.send("lru_crawler metadump all\r\nversion\r\n")
		d.line() // the dump has begun; the rest waits in the sockets
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			stop(time.Minute)
		}()
		// Stopping has begun when the listener refuses connections.
		deadline := time.Now().Add(10 * time.Second)
		for {
			nc, err := net.DialTimeout("tcp", s.Addrs()[0].String(), time.Second)
			if err != nil {
				break
			}
			nc.Close()
			if time.Now().After(deadline) {
				t.Fatal("the server still accepts connections")
			}
			time.Sleep(time.Millisecond)
		}
		n := 1
		var last string
		for {
			l, err := d.r.ReadString('\n')
			if err != nil {
				break
			}
			if l == "END\r\n" || !strings.HasPrefix(l, "key=") {
				last = l
				break
			}
			n++
		}
		if last == "END\r\n" && n != items {
			t.Errorf("the dump ended with END after %d of %d items", n, items)
		}
		if last != "END\r\n" {
			t.Errorf("the dump was cut after %d of %d items (then %q)", n, items, last)
		}
		<-stopped
	})
}

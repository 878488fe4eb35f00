package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

func TestDialContext(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	var dials atomic.Int32
	c := newClient(t, []string{addr}, func(cfg *Config) {
		cfg.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			dials.Add(1)
			if network != "tcp" || a != addr {
				return nil, errors.New("dialled " + network + " " + a)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		}
	})
	ctx := context.Background()
	if err := c.Set(ctx, &Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("Get = %+v, %v", it, err)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1 (the connection is reused)", n)
	}

	refused := errors.New("refused by the dialer")
	c2 := newClient(t, []string{addr}, func(cfg *Config) {
		cfg.DialContext = func(context.Context, string, string) (net.Conn, error) { return nil, refused }
	})
	var se *ServerError
	if _, err := c2.Get(ctx, "k"); !errors.Is(err, refused) || !errors.As(err, &se) || se.Addr != addr {
		t.Fatalf("Get through a failing dialer: %v", err)
	}
}

// lateContext is a context whose deadline passes a while before its Err is
// set: it stretches the moment between a socket deadline firing at the
// context's deadline and the context's own timer running.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (l lateContext) Deadline() (time.Time, bool) { return l.deadline, true }

// soon returns a lateContext whose deadline is 50ms away and whose Err is
// set 300ms later.
func soon(t *testing.T) lateContext {
	d := time.Now().Add(50 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), d.Add(300*time.Millisecond))
	t.Cleanup(cancel)
	return lateContext{ctx, d}
}

// blockingDial is a DialContext that waits for its context to end, as a
// dial to a server that does not answer SYNs does.
func blockingDial(ctx context.Context, network, addr string) (net.Conn, error) {
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
}

// The caller's cancellations and deadlines are not the server's failures;
// only the client's own DialTimeout and Timeout are.
func TestCallerEndsAreNotFailures(t *testing.T) {
	silent := silentServer(t)
	failing := func(t *testing.T, mod func(*Config)) *Client {
		return newClient(t, []string{silent}, func(cfg *Config) {
			cfg.MaxFailures = 1
			cfg.Timeout = 10 * time.Second
			mod(cfg)
		})
	}
	t.Run("dial cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := failing(t, func(cfg *Config) {
			cfg.DialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
				cancel()
				return blockingDial(dctx, network, addr)
			}
		})
		if _, err := c.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get: %v", err)
		}
		if c.servers[0].dead() {
			t.Error("a dial cancelled by the caller counted as a server failure")
		}
	})
	t.Run("dial at the context deadline", func(t *testing.T) {
		c := failing(t, func(cfg *Config) { cfg.DialContext = blockingDial })
		if _, err := c.Get(soon(t), "k"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get: %v", err)
		}
		if c.servers[0].dead() {
			t.Error("a dial ended by the caller's deadline counted as a server failure")
		}
	})
	t.Run("read at the context deadline", func(t *testing.T) {
		c := failing(t, func(*Config) {})
		if _, err := c.Get(soon(t), "k"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get: %v", err)
		}
		if c.servers[0].dead() {
			t.Error("a read ended by the caller's deadline counted as a server failure")
		}
	})
	// The same waits cut short by the client's own timeouts are failures.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("DialTimeout", func(t *testing.T) {
		c := failing(t, func(cfg *Config) {
			cfg.DialContext = blockingDial
			cfg.DialTimeout = 50 * time.Millisecond
		})
		var se *ServerError
		if _, err := c.Get(ctx, "k"); !errors.As(err, &se) || se.Addr != silent {
			t.Fatalf("Get: %v", err)
		}
		if !c.servers[0].dead() {
			t.Error("a dial timeout was not counted")
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		c := failing(t, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond })
		var se *ServerError
		if _, err := c.Get(ctx, "k"); !errors.As(err, &se) || se.Addr != silent {
			t.Fatalf("Get: %v", err)
		}
		if !c.servers[0].dead() {
			t.Error("a read timeout was not counted")
		}
	})
}

// A server restart leaves the pool full of connections the server closed;
// they are dropped unused, not counted as failures that eject the server.
func TestRestartedServerKeepsItsPlace(t *testing.T) {
	ctx := context.Background()
	victim := startKillable(t, "127.0.0.1:0")
	c := newClient(t, []string{victim.addr}, func(cfg *Config) {
		cfg.MaxFailures = 2
		cfg.FailureTimeout = time.Minute
	})
	s := c.servers[0]
	var cns []*conn
	for range DefaultMaxIdleConns {
		cn, err := s.getConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cns = append(cns, cn)
	}
	for _, cn := range cns {
		cn.release()
	}
	victim.stop()
	startKillable(t, victim.addr)
	for i := range 2 * DefaultMaxIdleConns {
		if err := c.Set(ctx, &Item{Key: "k", Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatalf("Set %d after the restart: %v", i, err)
		}
		if _, err := c.Get(ctx, "k"); err != nil {
			t.Fatalf("Get %d after the restart: %v", i, err)
		}
	}
	if s.dead() {
		t.Error("the restarted server was marked dead")
	}
}

// A pooled connection can pass the check for a close and still be closed
// by the server as the request arrives. A read is sent again on a fresh
// connection; a write, which the server may have executed, is not.
func TestClosedOnArrival(t *testing.T) {
	ctx := context.Background()
	secondCloses := func(n int, _ string) fault {
		if n == 1 {
			return faultClose
		}
		return faultNone
	}
	f := startFake(t, secondCloses)
	c := newClient(t, []string{f.addr}, func(cfg *Config) { cfg.MaxFailures = 1 })
	for i := range 2 {
		if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get %d: %v", i, err)
		}
	}
	if c.servers[0].dead() {
		t.Error("a read retried on a fresh connection counted as a failure")
	}
	if n := f.accepted.Load(); n != 2 {
		t.Errorf("%d connections for two reads, want 2", n)
	}

	f2 := startFake(t, secondCloses)
	c2 := newClient(t, []string{f2.addr}, nil)
	if err := c2.Set(ctx, &Item{Key: "k", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	var se *ServerError
	if err := c2.Set(ctx, &Item{Key: "k", Value: []byte("2")}); !errors.As(err, &se) {
		t.Fatalf("Set on a connection closed on arrival: %v", err)
	}
	if n := f2.requests.Load(); n != 2 {
		t.Errorf("the server got %d sets, want 2: a set it may have executed was sent again", n)
	}

	// An mg that may hand out a win token (N, R) is no read only: the
	// server may have given this caller the win before closing, and would
	// answer a second request that another caller holds it.
	for _, opt := range []MetaGetOptions{{Vivify: 30}, {RecacheBelow: 30}} {
		f3 := startFake(t, secondCloses)
		c3 := newClient(t, []string{f3.addr}, nil)
		if _, err := c3.MetaGet(ctx, "k", MetaGetOptions{}); !errors.Is(err, ErrCacheMiss) {
			t.Fatal(err)
		}
		if _, err := c3.MetaGet(ctx, "k", opt); !errors.As(err, &se) {
			t.Fatalf("MetaGet %+v on a connection closed on arrival: %v", opt, err)
		}
		if n := f3.requests.Load(); n != 2 {
			t.Errorf("the server got %d mg, want 2: an mg %+v it may have executed was sent again", n, opt)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	ctx := context.Background()
	f := startFake(t, nil)
	c := newClient(t, []string{f.addr}, func(cfg *Config) { cfg.IdleTimeout = time.Minute })
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	c.now = func() time.Time { return time.Unix(0, clock.Load()) }
	get := func() {
		t.Helper()
		if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrCacheMiss) {
			t.Fatal(err)
		}
	}
	get()
	clock.Add(int64(59 * time.Second))
	get()
	if n := f.accepted.Load(); n != 1 {
		t.Fatalf("%d connections before the idle timeout, want 1", n)
	}
	clock.Add(int64(61 * time.Second))
	get()
	if n := f.accepted.Load(); n != 2 {
		t.Fatalf("%d connections after the idle timeout, want 2", n)
	}
	testutil.WaitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.conns) == 1
	})
}

func TestPing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		if err := newClient(t, addrs, nil).Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		down := testutil.RefusedAddr(t)
		silent := silentServer(t)
		c := newClient(t, append([]string{down, silent}, addrs...), func(cfg *Config) { cfg.Timeout = time.Second })
		err := c.Ping(ctx)
		for _, a := range []string{down, silent} {
			if err == nil || !strings.Contains(err.Error(), a) {
				t.Errorf("Ping error %v does not name %s", err, a)
			}
		}
		for _, a := range addrs {
			if err != nil && strings.Contains(err.Error(), a) {
				t.Errorf("Ping error %v names the healthy %s", err, a)
			}
		}
		var se *ServerError
		if !errors.As(err, &se) {
			t.Errorf("Ping error %v holds no ServerError", err)
		}
	})
}

// A multi-get reply cut short leaves the server's keys out: no value half
// read is returned.
func TestGetMultiTruncated(t *testing.T) {
	ctx := context.Background()
	f := startFake(t, func(_ int, cmd string) fault {
		if cmd == "gets" {
			return faultTruncate
		}
		return faultNone
	})
	c := newClient(t, []string{f.addr}, nil)
	value := []byte(strings.Repeat("v", 100))
	if err := c.Set(ctx, &Item{Key: "k", Value: value}); err != nil {
		t.Fatal(err)
	}
	m, err := c.GetMulti(ctx, []string{"k"})
	if err == nil || len(m) != 0 {
		t.Fatalf("GetMulti of a truncated reply = %q, %v", m["k"].Value, err)
	}
}

// writesThenBreaks lets its first n writes through, then fails the rest
// as brokenConn does.
type writesThenBreaks struct {
	net.Conn
	n int
}

func (w *writesThenBreaks) Write(p []byte) (int, error) {
	if w.n == 0 {
		return brokenConn{}.Write(p)
	}
	w.n--
	return w.Conn.Write(p)
}

// A server that fails in a later round of a long GetMulti leaves out the
// keys it answered in earlier rounds too, as the package doc says.
func TestGetMultiLaterRoundFails(t *testing.T) {
	ctx := context.Background()
	f := startFake(t, nil)
	pad := strings.Repeat("k", 200)
	keys := make([]string, 3000) // about 600 KB of keys: three get lines
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%05d", pad, i)
	}
	setter := newClient(t, []string{f.addr}, nil)
	if err := setter.Set(ctx, &Item{Key: keys[0], Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, []string{f.addr}, func(cfg *Config) {
		cfg.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &writesThenBreaks{Conn: nc, n: 1}, nil
		}
	})
	m, err := c.GetMulti(ctx, keys)
	if err == nil || len(m) != 0 {
		t.Fatalf("GetMulti failing in its second round = %d items, %v", len(m), err)
	}
}

// brokenConn fails every write as a socket the server reset does.
type brokenConn struct{ net.Conn }

func (brokenConn) Write([]byte) (int, error) {
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
}

// A write whose request could not be written to a pooled connection never
// reached the server: it is sent again on a fresh connection.
func TestWriteFailedOnPooledConn(t *testing.T) {
	f := startFake(t, nil)
	c := newClient(t, []string{f.addr}, func(cfg *Config) { cfg.MaxFailures = 1 })
	s := c.servers[0]
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tc := &trackedConn{Conn: brokenConn{a}}
	s.free = append(s.free, &conn{s: s, tc: tc, nc: tc, r: bufio.NewReader(tc), idleSince: c.now()})
	if err := c.Set(context.Background(), &Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("the server got %d requests, want 1", n)
	}
	if s.dead() {
		t.Error("the broken pooled connection counted as a failure")
	}
}

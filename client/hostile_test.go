package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// keysOn returns n keys starting with prefix that c places on server idx.
func keysOn(t *testing.T, c *Client, prefix string, idx, n int) []string {
	t.Helper()
	var keys []string
	for i := 0; len(keys) < n && i < 100000; i++ {
		k := fmt.Sprint(prefix, i)
		s, err := c.pick(k)
		if err != nil {
			t.Fatal(err)
		}
		if s.idx == idx {
			keys = append(keys, k)
		}
	}
	if len(keys) < n {
		t.Fatalf("found %d keys on server %d, want %d", len(keys), idx, n)
	}
	return keys
}

// A server that does not answer a multi-get holds up the reading of the
// other servers' replies, which are already there: they are returned, and
// the healthy servers are not counted as failing for the silent one's
// delay.
func TestGetMultiSilentServerSparesOthers(t *testing.T) {
	ctx := context.Background()
	silent := silentServer(t)
	f := startFake(t, nil)
	// MetaGetMulti reads its servers in no set order: three tries make it
	// likely that one reads the silent server first.
	for _, multi := range []string{"GetMulti", "MetaGetMulti", "MetaGetMulti", "MetaGetMulti"} {
		t.Run(multi, func(t *testing.T) {
			c := newClient(t, []string{silent, f.addr}, func(cfg *Config) {
				cfg.Timeout = 500 * time.Millisecond
				cfg.MaxFailures = 1
				cfg.FailureTimeout = time.Minute
			})
			healthy := keysOn(t, c, "key", 1, 5)
			for _, k := range healthy {
				if err := c.Set(ctx, &Item{Key: k, Value: []byte("v" + k)}); err != nil {
					t.Fatal(err)
				}
			}
			keys := append(keysOn(t, c, "key", 0, 5), healthy...)
			get := c.GetMulti
			if multi == "MetaGetMulti" {
				get = c.MetaGetMulti
			}
			m, err := get(ctx, keys)
			var se *ServerError
			if !errors.As(err, &se) || se.Addr != silent {
				t.Errorf("%s: %v, want an error naming the silent server", multi, err)
			}
			for _, k := range healthy {
				if it := m[k]; it == nil || string(it.Value) != "v"+k {
					t.Errorf("%s[%s] = %v, want the healthy server's value", multi, k, it)
				}
			}
			if c.servers[1].dead() {
				t.Error("the healthy server was marked dead for the silent one's delay")
			}
			if !c.servers[0].dead() {
				t.Error("the silent server was not counted")
			}
		})
	}
}

// A server can declare a value of up to 1 GiB and send nothing of it: the
// client allocates as the bytes arrive, not what the header says.
func TestHugeDeclaredLength(t *testing.T) {
	const huge = 1 << 30
	addr := scriptedServer(t, func(line string, _ *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "gets":
			return fmt.Sprintf("VALUE %s 0 %d 1\r\nabc", f[1], huge)
		case len(f) >= 2 && f[0] == "mg":
			ret := ""
			for _, fl := range f[2:] {
				if fl[0] == 'O' {
					ret = " " + fl
				}
			}
			return fmt.Sprintf("VA %d k%s%s\r\nabc", huge, f[1], ret)
		}
		return "ERROR\r\n"
	})
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	ctx := context.Background()
	calls := map[string]func() error{
		"Get": func() error { _, err := c.Get(ctx, "k"); return err },
		"GetMulti": func() error {
			_, err := c.GetMulti(ctx, []string{"k"})
			return err
		},
		"MetaGet": func() error { _, err := c.MetaGet(ctx, "k", MetaGetOptions{}); return err },
		"MetaGetMulti": func() error {
			_, err := c.MetaGetMulti(ctx, []string{"k"})
			return err
		},
	}
	for name, call := range calls {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := call()
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s of a value that never comes succeeded", name)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
			t.Errorf("%s allocated %d MB for a value of which 3 bytes came", name, n>>20)
		}
	}
}

// Values longer than what is allocated ahead of their bytes are read whole.
func TestLargeValues(t *testing.T) {
	value := make([]byte, 3*valueAllocAhead+7)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	addr := scriptedServer(t, func(line string, _ *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "gets":
			return fmt.Sprintf("VALUE %s 0 %d 1\r\n%s\r\nEND\r\n", f[1], len(value), value)
		case len(f) >= 2 && f[0] == "mg":
			ret := ""
			for _, fl := range f[2:] {
				if fl[0] == 'O' {
					ret = " " + fl
				}
			}
			end := ""
			if ret != "" {
				end = "MN\r\n"
			}
			return fmt.Sprintf("VA %d k%s%s\r\n%s\r\n%s", len(value), f[1], ret, value, end)
		}
		return ""
	})
	c := newClient(t, []string{addr}, nil)
	ctx := context.Background()
	check := func(name string, it *Item, err error) {
		t.Helper()
		if err != nil || it == nil || !bytes.Equal(it.Value, value) {
			t.Errorf("%s: %s", name, describe(it, err))
		}
	}
	it, err := c.Get(ctx, "k")
	check("Get", it, err)
	m, err := c.GetMulti(ctx, []string{"k"})
	check("GetMulti", m["k"], err)
	mi, err := c.MetaGet(ctx, "k", MetaGetOptions{})
	if err != nil {
		t.Errorf("MetaGet: %v", err)
	} else {
		check("MetaGet", &mi.Item, nil)
	}
	m, err = c.MetaGetMulti(ctx, []string{"k"})
	check("MetaGetMulti", m["k"], err)
}

// Calls cancelled at random moments, and a Close racing them, leave no
// connection open on the server once they return.
func TestNoConnectionLeft(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		addr := addrs[0]
		probe := newClient(t, []string{addr}, nil)
		idle := curConns(t, probe, addr)
		c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxIdleConns = 2 })
		keys := make([]string, 50)
		for i := range keys {
			keys[i] = fmt.Sprint("leak:", i)
			if err := c.Set(context.Background(), &Item{Key: keys[i], Value: bytes.Repeat([]byte("v"), 3000)}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration((i*7+w)%2000)*time.Microsecond)
					switch i % 4 {
					case 0:
						c.Get(ctx, keys[i%len(keys)])
					case 1:
						c.GetMulti(ctx, keys)
					case 2:
						c.MetaGetMulti(ctx, keys)
					case 3:
						c.Set(ctx, &Item{Key: keys[i%len(keys)], Value: []byte("v")})
					}
					cancel()
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c.GetMulti(context.Background(), keys)
			}
			c.Close()
		}()
		wg.Wait()
		var n string
		testutil.WaitFor(t, func() bool {
			n = curConns(t, probe, addr)
			return n == idle
		})
	})
}

// curConns returns the server's curr_connections, asked on probe's
// connection.
func curConns(t *testing.T, probe *Client, addr string) string {
	t.Helper()
	st, err := probe.Stats(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return st[addr]["curr_connections"]
}

// pausingServer answers every "mg" with a value of size bytes and "mn"
// with MN, writing each reply before it reads the next request. It reads
// nothing of a connection for pause after accepting it, as a server whose
// replies back up, and with a small receive buffer, so that a client's
// long pipeline waits for it. It stops with the test.
func pausingServer(t *testing.T, size int, pause time.Duration) string {
	t.Helper()
	value := bytes.Repeat([]byte("v"), size)
	stop := make(chan struct{})
	addr := testutil.FakeServer(t, func(nc net.Conn) {
		nc.(*net.TCPConn).SetReadBuffer(16 << 10)
		select {
		case <-time.After(pause):
		case <-stop:
			return
		}
		r := bufio.NewReaderSize(nc, 512)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			var out []byte
			switch {
			case len(f) == 1 && f[0] == "mn":
				out = []byte("MN\r\n")
			case len(f) >= 2 && f[0] == "mg":
				out = fmt.Appendf(nil, "VA %d k%s %s\r\n", size, f[1], f[len(f)-1])
				out = append(append(out, value...), crlf...)
			default:
				out = []byte("ERROR\r\n")
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	})
	// Cleanups run last first: the pauses end before the server waits
	// for its connections.
	t.Cleanup(func() { close(stop) })
	return addr
}

// MetaGetMulti starts writing a server's pipeline only once it has a
// connection to every server: waiting for a slow dial to another server
// while a pipeline is stuck (behind replies nobody reads yet, or here a
// server that reads later) made the healthy server late, and counted it
// as failing.
func TestMetaGetMultiSlowDialSparesOthers(t *testing.T) {
	// The healthy server reads once the slow dial is nearly over: had its
	// request been sent before, it would be late by the client's Timeout.
	healthy := pausingServer(t, 100, 2200*time.Millisecond)
	slow := testutil.RefusedAddr(t)
	c := newClient(t, []string{healthy, slow}, func(cfg *Config) {
		cfg.Timeout = 2 * time.Second
		cfg.DialTimeout = 2500 * time.Millisecond
		cfg.MaxFailures = 1
		cfg.FailureTimeout = time.Minute
		cfg.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == slow {
				return blockingDial(ctx, network, addr)
			}
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				nc.(*net.TCPConn).SetWriteBuffer(16 << 10)
			}
			return nc, err
		}
	})
	// Long keys make long requests (about 460 KB) for short replies.
	keys := append(keysOn(t, c, "key", 1, 5), keysOn(t, c, strings.Repeat("k", 200), 0, 2000)...)
	m, err := c.MetaGetMulti(context.Background(), keys)
	var se *ServerError
	if !errors.As(err, &se) || se.Addr != slow {
		t.Errorf("MetaGetMulti: %v, want an error naming the slow server", err)
	}
	if len(m) != 2000 {
		t.Errorf("MetaGetMulti returned %d items of the healthy server's 2000", len(m))
	}
	if c.servers[0].dead() {
		t.Error("the healthy server was marked dead for the slow one's dial")
	}
}

// As with GetMulti, a server whose meta pipeline breaks off leaves all its
// keys out, including those answered before the break: once the
// connection is out of step, those answers may be another request's.
func TestMetaGetMultiBrokenPipeline(t *testing.T) {
	ctx := context.Background()
	f := startFake(t, func(n int, cmd string) fault {
		if cmd == "mg" && n == 2 {
			return faultTruncate
		}
		return faultNone
	})
	setter := newClient(t, []string{f.addr}, nil)
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		if err := setter.Set(ctx, &Item{Key: k, Value: []byte("value of " + k)}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, []string{f.addr}, nil)
	m, err := c.MetaGetMulti(ctx, keys)
	if err == nil || len(m) != 0 {
		t.Fatalf("MetaGetMulti of a pipeline cut short = %d items, %v", len(m), err)
	}
}

// A Stats argument cannot smuggle a second command onto the connection.
func TestStatsArgumentInjection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs[:1], nil)
		if err := c.Set(ctx, &Item{Key: "k", Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		for _, arg := range []string{"settings\r\nflush_all", "settings\nflush_all", "x\x00y"} {
			if _, err := c.Stats(ctx, arg); !errors.Is(err, ErrMalformedKey) {
				t.Errorf("Stats(%q): %v, want ErrMalformedKey", arg, err)
			}
		}
		if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
			t.Fatalf("Get after the Stats calls = %s", describe(it, err))
		}
		if _, err := c.Stats(ctx, "settings"); err != nil {
			t.Errorf("Stats(settings): %v", err)
		}
	})
}

// A meta reply repeated late, for the same key, is not taken for the
// answer to a later request: every meta request carries an opaque of its
// own.
func TestMetaGetRepeatedReply(t *testing.T) {
	ctx := context.Background()
	for _, multi := range []bool{false, true} {
		var mu sync.Mutex // guards version, first
		version, first := 0, ""
		addr := scriptedServer(t, func(line string, _ *bufio.Reader) string {
			mu.Lock()
			defer mu.Unlock()
			f := strings.Fields(line)
			switch {
			case len(f) == 1 && f[0] == "mn" && version == 1:
				// The whole pipeline's reply, again.
				return "MN\r\n" + holdBack + first + "MN\r\n"
			case len(f) == 1 && f[0] == "mn":
				return "MN\r\n"
			case len(f) < 2 || f[0] != "mg":
				return "ERROR\r\n"
			}
			version++
			v := fmt.Sprint("v", version)
			ret := ""
			for _, fl := range f[2:] {
				switch fl[0] {
				case 'k':
					ret += " k" + f[1]
				case 'O':
					ret += " " + fl
				}
			}
			reply := fmt.Sprintf("VA %d%s\r\n%s\r\n", len(v), ret, v)
			if version == 1 {
				first = reply
				if !multi {
					return reply + holdBack + reply // again, after the next request
				}
			}
			return reply
		})
		c := newClient(t, []string{addr}, nil)
		get := func() (*Item, error) {
			if multi {
				m, err := c.MetaGetMulti(ctx, []string{"a"})
				return m["a"], err
			}
			mi, err := c.MetaGet(ctx, "a", MetaGetOptions{})
			if err != nil {
				return nil, err
			}
			return &mi.Item, nil
		}
		if it, err := get(); err != nil || string(it.Value) != "v1" {
			t.Fatalf("first get (multi %v) = %s", multi, describe(it, err))
		}
		if it, err := get(); err == nil && string(it.Value) != "v2" {
			t.Errorf("second get (multi %v) = %q, the first request's reply", multi, it.Value)
		}
	}
}

// A text-protocol reply repeated late, for the same key, is taken for the
// answer to the next request of that key: the text protocol has no tag to
// tell them apart (the pooled-connection check only sees bytes that
// arrived before the request was sent).
func TestGetRepeatedReply(t *testing.T) {
	t.Skip("known: a text reply repeated late passes for the next same-key request's; only meta requests carry an opaque")
	ctx := context.Background()
	var mu sync.Mutex // guards version
	version := 0
	addr := scriptedServer(t, func(line string, _ *bufio.Reader) string {
		mu.Lock()
		defer mu.Unlock()
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "gets" {
			return "ERROR\r\n"
		}
		version++
		v := fmt.Sprint("v", version)
		reply := fmt.Sprintf("VALUE %s 0 %d 1\r\n%s\r\nEND\r\n", f[1], len(v), v)
		if version == 1 {
			return reply + holdBack + reply
		}
		return reply
	})
	c := newClient(t, []string{addr}, nil)
	if it, err := c.Get(ctx, "a"); err != nil || string(it.Value) != "v1" {
		t.Fatalf("first Get = %s", describe(it, err))
	}
	if it, err := c.Get(ctx, "a"); err == nil && string(it.Value) != "v2" {
		t.Errorf("second Get = %q, the first request's reply", it.Value)
	}
}

// TestWriteBufferNotKept checks that a connection back in the pool does
// not keep the buffer of a large request it wrote (a large value, a long
// meta pipeline) for as long as it lives.
func TestWriteBufferNotKept(t *testing.T) {
	addr := scriptedServer(t, func(line string, r *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "set":
			var n int
			fmt.Sscan(f[4], &n)
			r.Discard(n + 2)
			return "STORED\r\n"
		case len(f) >= 1 && f[0] == "mn":
			return "MN\r\n"
		case len(f) >= 1 && f[0] == "mg":
			return ""
		}
		return "ERROR\r\n"
	})
	// Timeout bounds each call's I/O whole: the meta pipeline below, 2 MB
	// that the server reads line by line before its one reply, took more
	// than the tests' usual 2 s under the race detector on a busy machine.
	// Nothing here is about time; the bound only ends a test that hangs.
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.Timeout = time.Minute })
	ctx := context.Background()
	const big = 2 << 20
	checkPool := func(op string) {
		t.Helper()
		s := c.servers[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.free) == 0 {
			t.Fatalf("no connection went back to the pool after %s", op)
		}
		for _, cn := range s.free {
			if cap(cn.w) >= big/2 {
				t.Errorf("after %s a pooled connection keeps a write buffer of %d bytes", op, cap(cn.w))
			}
		}
	}
	if err := c.Set(ctx, &Item{Key: "big", Value: bytes.Repeat([]byte("x"), big)}); err != nil {
		t.Fatal(err)
	}
	checkPool("Set")
	var keys []string
	for i := range 40000 {
		keys = append(keys, fmt.Sprint("a-fairly-long-key-to-fill-the-pipeline-", i))
	}
	if _, err := c.MetaGetMulti(ctx, keys); err != nil {
		t.Fatal(err)
	}
	checkPool("MetaGetMulti")
}

// TestStatsWithoutEnd: a server that streams STAT lines without end fails
// the Stats call once its reply passes the bound, long before the
// timeout, instead of growing the result without limit.
func TestStatsWithoutEnd(t *testing.T) {
	defer func(n int) { maxStatsBytes = n }(maxStatsBytes)
	maxStatsBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := bufio.NewReader(nc).ReadString('\n'); err != nil {
			return
		}
		w := bufio.NewWriter(nc)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "STAT name%d value\r\n", i); err != nil {
				return
			}
		}
	}()
	c := newClient(t, []string{ln.Addr().String()}, func(cfg *Config) { cfg.Timeout = time.Minute })
	start := time.Now()
	_, err = c.Stats(context.Background(), "")
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("Stats: %v, want a protocol error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Stats failed after %v", d)
	}
}

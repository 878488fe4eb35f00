package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// backend starts n servers of one kind and returns their addresses.
type backend struct {
	name  string
	start func(t *testing.T, n int) []string
}

var backends = []backend{
	{"corvid", func(t *testing.T, n int) []string {
		var addrs []string
		for range n {
			addrs = append(addrs, testutil.StartCorvid(t, server.Config{}))
		}
		return addrs
	}},
	{"memcached", func(t *testing.T, n int) []string {
		var addrs []string
		for range n {
			addrs = append(addrs, testutil.StartMemcached(t, "-m", "32"))
		}
		return addrs
	}},
}

// forEachBackend runs fn against three corvid servers and against three
// real memcached (skipped when memcached is not installed).
func forEachBackend(t *testing.T, fn func(t *testing.T, addrs []string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.start(t, 3)) })
	}
}

func newClient(t testing.TB, addrs []string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Timeout: 2 * time.Second}
	for _, a := range addrs {
		cfg.Servers = append(cfg.Servers, Server{Addr: a, Weight: 1})
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOperations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs, nil)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Get(ctx, "absent"); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get absent: %v", err)
		}
		must(c.Set(ctx, &Item{Key: "k", Value: []byte("v1"), Flags: 41}))
		it, err := c.Get(ctx, "k")
		must(err)
		if string(it.Value) != "v1" || it.Flags != 41 || it.CAS == 0 || it.Key != "k" {
			t.Fatalf("Get = %+v", it)
		}
		if err := c.Add(ctx, &Item{Key: "k", Value: []byte("x")}); !errors.Is(err, ErrNotStored) {
			t.Fatalf("Add existing: %v", err)
		}
		must(c.Add(ctx, &Item{Key: "new", Value: []byte("x")}))
		if err := c.Replace(ctx, &Item{Key: "nope", Value: []byte("x")}); !errors.Is(err, ErrNotStored) {
			t.Fatalf("Replace absent: %v", err)
		}
		must(c.Replace(ctx, &Item{Key: "new", Value: []byte("y")}))
		must(c.Append(ctx, &Item{Key: "new", Value: []byte("z")}))
		must(c.Prepend(ctx, &Item{Key: "new", Value: []byte("x")}))
		if it, _ := c.Get(ctx, "new"); it == nil || string(it.Value) != "xyz" {
			t.Fatalf("after append/prepend: %+v", it)
		}
		if err := c.Append(ctx, &Item{Key: "nope", Value: []byte("x")}); !errors.Is(err, ErrNotStored) {
			t.Fatalf("Append absent: %v", err)
		}

		it, _ = c.Get(ctx, "k")
		it.Value = []byte("v2")
		must(c.CompareAndSwap(ctx, it))
		it.Value = []byte("v3")
		if err := c.CompareAndSwap(ctx, it); !errors.Is(err, ErrCASConflict) {
			t.Fatalf("stale CAS: %v", err)
		}
		if err := c.CompareAndSwap(ctx, &Item{Key: "nope", CAS: 1}); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("CAS absent: %v", err)
		}

		must(c.Set(ctx, &Item{Key: "n", Value: []byte("10")}))
		if v, err := c.Incr(ctx, "n", 5); err != nil || v != 15 {
			t.Fatalf("Incr = %d, %v", v, err)
		}
		if v, err := c.Decr(ctx, "n", 20); err != nil || v != 0 {
			t.Fatalf("Decr = %d, %v", v, err)
		}
		if _, err := c.Incr(ctx, "nope", 1); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Incr absent: %v", err)
		}
		if _, err := c.Incr(ctx, "k", 1); err == nil {
			t.Fatal("Incr of a non-number succeeded")
		}

		must(c.Touch(ctx, "k", 100))
		if err := c.Touch(ctx, "nope", 100); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Touch absent: %v", err)
		}
		if it, err := c.GetAndTouch(ctx, "k", 100); err != nil || string(it.Value) != "v2" {
			t.Fatalf("GetAndTouch = %+v, %v", it, err)
		}
		if _, err := c.GetAndTouch(ctx, "nope", 100); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("GetAndTouch absent: %v", err)
		}

		must(c.Delete(ctx, "k"))
		if err := c.Delete(ctx, "k"); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Delete twice: %v", err)
		}

		v, err := c.Version(ctx)
		must(err)
		if len(v) != 3 {
			t.Fatalf("Version = %v", v)
		}
		st, err := c.Stats(ctx, "")
		must(err)
		if len(st) != 3 || st[addrs[0]]["pid"] == "" {
			t.Fatalf("Stats = %v", st)
		}
		must(c.Flush(ctx, 0))
		if _, err := c.Get(ctx, "new"); !errors.Is(err, ErrCacheMiss) {
			t.Fatalf("Get after Flush: %v", err)
		}
	})
}

// TestEmptyValue reads an empty value with Get and GetMulti: both give an
// empty slice, not nil, as for any value that is there.
func TestEmptyValue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs, nil)
		if err := c.Set(ctx, &Item{Key: "empty"}); err != nil {
			t.Fatal(err)
		}
		it, err := c.Get(ctx, "empty")
		if err != nil || it.Value == nil || len(it.Value) != 0 {
			t.Fatalf("Get: %+v, %v", it, err)
		}
		m, err := c.GetMulti(ctx, []string{"empty", "absent"})
		if err != nil || len(m) != 1 || m["empty"].Value == nil || len(m["empty"].Value) != 0 {
			t.Fatalf("GetMulti: %+v, %v", m, err)
		}
	})
}

func TestGetMulti(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs, func(cfg *Config) { cfg.Namespace = "ns:" })
		var keys []string
		for i := range 300 {
			k := fmt.Sprintf("key-%d", i)
			keys = append(keys, k)
			if i%3 != 0 {
				if err := c.Set(ctx, &Item{Key: k, Value: bytes.Repeat([]byte{byte('a' + i%26)}, i), Flags: uint32(i) << 2}); err != nil {
					t.Fatal(err)
				}
			}
		}
		keys = append(keys, "key-1") // asked twice
		for range 3 {
			m, err := c.GetMulti(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 200 {
				t.Fatalf("%d items, want 200", len(m))
			}
			for i := range 300 {
				it, ok := m[fmt.Sprintf("key-%d", i)]
				if ok != (i%3 != 0) {
					t.Fatalf("key-%d found=%v", i, ok)
				}
				if ok && (len(it.Value) != i || it.Flags != uint32(i)<<2 || (i > 0 && it.Value[0] != byte('a'+i%26))) {
					t.Fatalf("key-%d = %+v", i, it)
				}
			}
		}
		// The keys were spread: every server holds some.
		per := map[string]int{}
		for _, k := range keys {
			s, _ := c.pick("ns:" + k)
			per[s.addr]++
		}
		if len(per) != 3 {
			t.Errorf("keys on %d servers", len(per))
		}
		if m, err := c.GetMulti(ctx, nil); err != nil || len(m) != 0 {
			t.Errorf("GetMulti(nil) = %v, %v", m, err)
		}
		m, err := c.GetMulti(ctx, []string{"key-1", "bad key"})
		if !errors.Is(err, ErrMalformedKey) || len(m) != 1 {
			t.Errorf("GetMulti with a bad key = %v, %v", m, err)
		}
	})
}

func TestKeys(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	ctx := context.Background()
	c := newClient(t, []string{addr}, nil)
	for _, k := range []string{"", "a b", "a\nb", "a\x00", "a\x7f", strings.Repeat("k", 251)} {
		if err := c.Set(ctx, &Item{Key: k, Value: []byte("v")}); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Set(%q): %v", k, err)
		}
		if _, err := c.Get(ctx, k); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("Get(%q): %v", k, err)
		}
	}
	if err := c.Set(ctx, &Item{Key: strings.Repeat("k", 250), Value: []byte("v")}); err != nil {
		t.Errorf("250-byte key: %v", err)
	}
	ns := newClient(t, []string{addr}, func(cfg *Config) { cfg.Namespace = "app:" })
	if err := ns.Set(ctx, &Item{Key: strings.Repeat("k", 248), Value: []byte("v")}); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("key too long with its namespace: %v", err)
	}
	h := newClient(t, []string{addr}, func(cfg *Config) { cfg.HashLongKeys = true })
	long := strings.Repeat("long key ", 100)
	if err := h.Set(ctx, &Item{Key: long, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if it, err := h.Get(ctx, long); err != nil || string(it.Value) != "v" || it.Key != long {
		t.Fatalf("Get hashed key = %+v, %v", it, err)
	}
	if m, err := h.GetMulti(ctx, []string{long, "other"}); err != nil || len(m) != 1 || m[long] == nil {
		t.Fatalf("GetMulti hashed key = %v, %v", m, err)
	}
}

func TestNamespace(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	ctx := context.Background()
	a := newClient(t, []string{addr}, func(cfg *Config) { cfg.Namespace = "a:" })
	b := newClient(t, []string{addr}, func(cfg *Config) { cfg.Namespace = "b:" })
	plain := newClient(t, []string{addr}, nil)
	if err := a.Set(ctx, &Item{Key: "k", Value: []byte("from a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("namespaces leak: %v", err)
	}
	if it, err := plain.Get(ctx, "a:k"); err != nil || string(it.Value) != "from a" {
		t.Errorf("raw key = %+v, %v", it, err)
	}
}

func TestNamespacePlacement(t *testing.T) {
	servers := []Server{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}, {Addr: "127.0.0.1:3"}}
	plain, _ := New(Config{Servers: servers})
	ns, _ := New(Config{Servers: servers, Namespace: "app:"})
	hashed, _ := New(Config{Servers: servers, Namespace: "app:", HashNamespace: true})
	differ := 0
	for i := range 200 {
		k := fmt.Sprint("k", i)
		p, _ := plain.pick(k)
		n, _ := ns.pick("app:" + k)
		h, _ := hashed.pick("app:" + k)
		if p.idx != n.idx {
			t.Fatalf("namespace moved %q", k)
		}
		hp, _ := plain.pick("app:" + k)
		if h.idx != hp.idx {
			t.Fatalf("hashed namespace placed %q elsewhere than its full key", k)
		}
		if p.idx != h.idx {
			differ++
		}
	}
	if differ == 0 {
		t.Error("HashNamespace changed no placement")
	}
}

func TestCompression(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	ctx := context.Background()
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.CompressThreshold = 100 })
	raw := newClient(t, []string{addr}, func(cfg *Config) { cfg.CompressThreshold = -1 })
	big := bytes.Repeat([]byte("compressible "), 1000)
	if err := c.Set(ctx, &Item{Key: "big", Value: big, Flags: 1}); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Flags != 1|DefaultCompressFlag || len(stored.Value) >= len(big)/4 {
		t.Errorf("stored %d bytes with flags %d", len(stored.Value), stored.Flags)
	}
	for _, get := range []func() (*Item, error){
		func() (*Item, error) { return c.Get(ctx, "big") },
		func() (*Item, error) {
			m, err := c.GetMulti(ctx, []string{"big"})
			return m["big"], err
		},
	} {
		it, err := get()
		if err != nil || !bytes.Equal(it.Value, big) || it.Flags != 1 {
			t.Fatalf("read back %d bytes, flags %d, %v", len(it.Value), it.Flags, err)
		}
	}
	// Small and incompressible values stay as they are.
	c.Set(ctx, &Item{Key: "small", Value: []byte("tiny")})
	if it, _ := raw.Get(ctx, "small"); it.Flags != 0 {
		t.Errorf("small value flagged %d", it.Flags)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
	start := time.Now()
	_, err = c.Get(context.Background(), "k")
	var se *ServerError
	if !errors.As(err, &se) || se.Addr != addr || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %v does not name %s", err, addr)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}

	// A server that accepts but never answers times out within Timeout.
	silent := silentServer(t)
	c2 := newClient(t, []string{silent}, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	start = time.Now()
	_, err = c2.Get(context.Background(), "k")
	if !errors.As(err, &se) || se.Addr != silent {
		t.Fatalf("silent server: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("silent server took %v", d)
	}
	// A context deadline sooner than Timeout wins.
	c3 := newClient(t, []string{silent}, func(cfg *Config) { cfg.Timeout = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c3.Get(ctx, "k"); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("context deadline ignored: %v", d)
	}
}

// rawKeys returns which of keys the server at addr holds, asking it
// directly.
func rawKeys(t *testing.T, addr string, keys []string) map[string]bool {
	t.Helper()
	conn := testutil.Dial(t, addr)
	defer conn.Close()
	conn.Send([]byte("get " + strings.Join(keys, " ") + "\r\n"))
	held := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(conn.ReadReply(testutil.ValuesReply)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 4 && f[0] == "VALUE" {
			held[f[1]] = true
		}
	}
	return held
}

func TestReplicas(t *testing.T) {
	var addrs []string
	for range 4 {
		addrs = append(addrs, testutil.StartCorvid(t, server.Config{}))
	}
	ctx := context.Background()
	c := newClient(t, addrs, func(cfg *Config) { cfg.Replicas = []Replica{{Prefix: "hot:", Copies: 3}} })
	var keys []string
	for i := range 20 {
		keys = append(keys, fmt.Sprint("hot:", i))
	}
	keys = append(keys, "cold")
	for _, k := range keys {
		if err := c.Set(ctx, &Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	copies := map[string]int{}
	for _, a := range addrs {
		for k := range rawKeys(t, a, keys) {
			copies[k]++
		}
	}
	for _, k := range keys {
		want := 3
		if k == "cold" {
			want = 1
		}
		if copies[k] != want {
			t.Errorf("%s on %d servers, want %d", k, copies[k], want)
		}
	}
	for range 10 {
		if it, err := c.Get(ctx, "hot:1"); err != nil || string(it.Value) != "v" {
			t.Fatalf("Get replicated = %+v, %v", it, err)
		}
	}
	if err := c.Delete(ctx, "hot:1"); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if rawKeys(t, a, []string{"hot:1"})["hot:1"] {
			t.Errorf("hot:1 still on %s after Delete", a)
		}
	}
}

// killable is a corvid server that a test can stop and start again on the
// same address.
type killable struct {
	t    *testing.T
	addr string
	stop func()
}

func startKillable(t *testing.T, addr string) *killable {
	t.Helper()
	srv, err := server.New(server.Config{TCPAddrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	k := &killable{t: t, addr: srv.Addrs()[0].String()}
	var stopped bool
	k.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		srv.Close()
		<-done
	}
	t.Cleanup(k.stop)
	return k
}

func TestFailover(t *testing.T) {
	for _, policy := range []FailurePolicy{FailError, FailRehash} {
		t.Run(fmt.Sprint("policy", policy), func(t *testing.T) {
			ctx := context.Background()
			a := testutil.StartCorvid(t, server.Config{})
			b := testutil.StartCorvid(t, server.Config{})
			victim := startKillable(t, "127.0.0.1:0")
			c := newClient(t, []string{a, b, victim.addr}, func(cfg *Config) {
				cfg.MaxFailures = 2
				cfg.FailureTimeout = time.Minute
				cfg.RetryTimeout = 300 * time.Millisecond
				cfg.OnDead = policy
				cfg.Timeout = 500 * time.Millisecond
			})
			// Keys on the victim.
			var keys []string
			for i := 0; len(keys) < 5; i++ {
				k := fmt.Sprint("k", i)
				if s, _ := c.pick(k); s.addr == victim.addr {
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				if err := c.Set(ctx, &Item{Key: k, Value: []byte("v")}); err != nil {
					t.Fatal(err)
				}
			}
			victim.stop()
			c.servers[2].closeIdle()
			// Failures until the server is marked dead.
			for i := range 2 {
				err := c.Set(ctx, &Item{Key: keys[0], Value: []byte("v")})
				var se *ServerError
				if !errors.As(err, &se) || se.Addr != victim.addr {
					t.Fatalf("failure %d: %v", i, err)
				}
			}
			err := c.Set(ctx, &Item{Key: keys[0], Value: []byte("v2")})
			switch policy {
			case FailError:
				var se *ServerError
				if !errors.Is(err, ErrServerDead) || !errors.As(err, &se) || se.Addr != victim.addr {
					t.Fatalf("dead server: %v", err)
				}
			case FailRehash:
				if err != nil {
					t.Fatalf("rehashed Set: %v", err)
				}
				if it, err := c.Get(ctx, keys[0]); err != nil || string(it.Value) != "v2" {
					t.Fatalf("rehashed Get = %+v, %v", it, err)
				}
				m, err := c.GetMulti(ctx, keys)
				if err != nil || len(m) != 1 {
					t.Fatalf("rehashed GetMulti = %v, %v", m, err)
				}
			}
			// After the retry timeout the server is tried again.
			back := startKillable(t, victim.addr)
			testutil.WaitFor(t, func() bool { return !c.servers[2].dead() })
			if err := c.Set(ctx, &Item{Key: keys[1], Value: []byte("back")}); err != nil {
				t.Fatal(err)
			}
			if !rawKeys(t, back.addr, keys[1:2])[keys[1]] {
				t.Error("key did not return to its server")
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	var addrs []string
	for range 3 {
		addrs = append(addrs, testutil.StartCorvid(t, server.Config{}))
	}
	c := newClient(t, addrs, nil)
	ctx := context.Background()
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				k := fmt.Sprintf("g%d-%d", g, i%20)
				if err := c.Set(ctx, &Item{Key: k, Value: []byte(k)}); err != nil {
					errs <- err
					return
				}
				m, err := c.GetMulti(ctx, []string{k, "g0-0", "g1-1"})
				if err != nil || string(m[k].Value) != k {
					errs <- fmt.Errorf("GetMulti %s: %v %v", k, m, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	// Nothing listens at addr: a client that dialled before looking at
	// the context would fail with "connection refused" instead.
	addr := testutil.RefusedAddr(t)
	c := newClient(t, []string{addr}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v", err)
	}
	if _, err := c.GetMulti(ctx, []string{"k"}); !errors.Is(err, context.Canceled) {
		t.Errorf("GetMulti: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrNoServers) {
		t.Errorf("no servers: %v", err)
	}
	if _, err := New(Config{Servers: []Server{{Addr: "a:1"}}, Hash: "sha1"}); err == nil {
		t.Error("unknown hash accepted")
	}
	c, _ := New(Config{Servers: []Server{{Addr: "127.0.0.1:1"}}})
	c.Close()
	if _, err := c.Get(context.Background(), "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// silentServer returns the address of a server that accepts connections
// and never answers; it closes with the test.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

func TestCancelDuringOperation(t *testing.T) {
	silent := silentServer(t)
	addr := testutil.StartCorvid(t, server.Config{})
	c := newClient(t, []string{silent}, func(cfg *Config) {
		cfg.Timeout = 10 * time.Second
		cfg.MaxFailures = 1
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if c.servers[0].dead() {
		t.Error("a cancelled call counted as a server failure")
	}
	// A cancellable context that is not cancelled leaves connections usable.
	ok := newClient(t, []string{addr}, nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	for i := range 20 {
		if err := ok.Set(ctx2, &Item{Key: "k", Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if it, err := ok.Get(ctx2, "k"); err != nil || string(it.Value) != fmt.Sprint(i) {
			t.Fatalf("Get = %+v, %v", it, err)
		}
	}
}

// TestReplicatedCAS checks that a compare-and-swap of a replicated key
// never leaves its copies disagreeing. A CAS unique is one server's: the
// one a read returns comes from the copy it was read from, and means
// nothing on the others, whose counters differ (here the first server's
// is moved on by writes of other keys).
func TestReplicatedCAS(t *testing.T) {
	addrs := []string{testutil.StartCorvid(t, server.Config{}), testutil.StartCorvid(t, server.Config{})}
	ctx := context.Background()
	c := newClient(t, addrs, func(cfg *Config) { cfg.Replicas = []Replica{{Prefix: "hot:", Copies: 2}} })
	direct := []*Client{newClient(t, addrs[:1], nil), newClient(t, addrs[1:], nil)}
	for i := range 5 {
		if err := direct[0].Set(ctx, &Item{Key: fmt.Sprint("other", i), Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	swaps := map[string]func(it *Item) error{
		"CompareAndSwap": func(it *Item) error { return c.CompareAndSwap(ctx, it) },
		"MetaSet": func(it *Item) error {
			return c.MetaSet(ctx, it, MetaSetOptions{CAS: it.CAS})
		},
		"MetaSet Invalidate": func(it *Item) error {
			return c.MetaSet(ctx, it, MetaSetOptions{CAS: it.CAS, Invalidate: true})
		},
	}
	for name, swap := range swaps {
		key := "hot:" + strings.ReplaceAll(name, " ", "-")
		if err := c.Set(ctx, &Item{Key: key, Value: []byte("old")}); err != nil {
			t.Fatal(err)
		}
		it, err := c.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		it.Value = []byte("new")
		err = swap(it)
		var got []string
		for _, d := range direct {
			v, gerr := d.Get(ctx, key)
			if gerr != nil {
				t.Fatalf("%s: reading a copy: %v", name, gerr)
			}
			got = append(got, string(v.Value))
		}
		want := "old"
		if err == nil {
			want = "new"
		}
		for i, v := range got {
			if v != want {
				t.Errorf("%s returned %v, and the copy on server %d holds %q: copies %q", name, err, i, v, got)
			}
		}
	}
}

package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// testEventLoops is the number of event loops CORVID_TEST_EVENT_LOOPS
// asks the suite's servers to use, 0 when it is unset (goroutine mode).
func testEventLoops() int {
	if n, err := strconv.Atoi(os.Getenv("CORVID_TEST_EVENT_LOOPS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// start runs a server with cfg on a free loopback port until the test ends.
// Like testutil.StartCorvid, it uses CORVID_TEST_EVENT_LOOPS event loops
// when cfg.EventLoops is 0 and the variable is set.
func start(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.EventLoops == 0 {
		cfg.EventLoops = testEventLoops()
	}
	if cfg.TCPAddrs == nil && cfg.UnixPath == "" {
		cfg.TCPAddrs = []string{"127.0.0.1:0"}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, s.Addrs()[0].String()
}

type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, network, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one reply line without its "\r\n".
func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read reply: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect sends req and checks the reply lines.
func (c *client) expect(req string, want ...string) {
	c.t.Helper()
	c.send(req)
	for _, w := range want {
		if got := c.line(); got != w {
			c.t.Fatalf("%q: got %q, want %q", req, got, w)
		}
	}
}

// closed reports whether the server closed the connection.
func (c *client) closed() bool {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadByte()
	return err == io.EOF
}

// stat returns the value of one "stats" field.
func (c *client) stat(name string) string {
	c.t.Helper()
	c.send("stats\r\n")
	val := ""
	for {
		l := c.line()
		if l == "END" {
			return val
		}
		if f := strings.Fields(l); len(f) == 3 && f[1] == name {
			val = f[2]
		}
	}
}

func TestBasicCommands(t *testing.T) {
	_, addr := start(t, Config{})
	c := dial(t, "tcp", addr)
	c.expect("set k 5 0 3\r\nabc\r\n", "STORED")
	c.expect("get k\r\n", "VALUE k 5 3", "abc", "END")
	c.expect("add k 0 0 1\r\nx\r\n", "NOT_STORED")
	c.expect("append k 0 0 2\r\nde\r\n", "STORED")
	c.expect("prepend k 0 0 2\r\nzz\r\n", "STORED")
	c.expect("get k nope\r\n", "VALUE k 5 7", "zzabcde", "END")
	c.expect("set n 0 0 2\r\n10\r\n", "STORED")
	c.expect("incr n 5\r\n", "15")
	c.expect("decr n 100\r\n", "0")
	c.expect("touch n 100\r\n", "TOUCHED")
	c.expect("delete n\r\n", "DELETED")
	c.expect("delete n\r\n", "NOT_FOUND")
	c.expect("version\r\n", "VERSION "+Version)
	c.expect("verbosity 1\r\n", "OK")
	c.expect("flush_all\r\n", "OK")
	c.expect("get k\r\n", "END")
	c.expect("set q 0 0 1 noreply\r\nq\r\nget q\r\n", "VALUE q 0 1", "q", "END")
	c.expect("bogus\r\n", "ERROR")
	c.expect("quit\r\n")
	if !c.closed() {
		t.Error("quit did not close the connection")
	}
}

// twoClients is the -c with which memcached, with one thread and one
// listener, serves two clients: it keeps 6 descriptors, 4 for its thread
// and 1 for the listener, and refuses the client that would take the
// last one.
const twoClients = 6 + 4 + 1 + 2 + 1

func TestConnectionLimit(t *testing.T) {
	s, addr := start(t, Config{Threads: 1, MaxConns: twoClients})
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
	if got := s.stats.rejectedConns.Load(); got != 1 {
		t.Errorf("rejected_connections = %d, want 1", got)
	}
	if got := a.stat("rejected_connections"); got != "1" {
		t.Errorf("stats rejected_connections = %s", got)
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corvid.sock")
	_, _ = start(t, Config{UnixPath: path, UnixMask: 0o750})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o750 {
		t.Errorf("socket mode %o, want 750", perm)
	}
	c := dial(t, "unix", path)
	c.expect("set k 0 0 1\r\nv\r\nget k\r\n", "STORED", "VALUE k 0 1", "v", "END")
}

func TestShutdownCommand(t *testing.T) {
	_, addr := start(t, Config{})
	c := dial(t, "tcp", addr)
	c.expect("shutdown\r\n", "ERROR: shutdown not enabled")

	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, EnableShutdown: true})
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
}

// TestGracefulStop checks that requests already sent are answered when the
// server is stopped.
func TestGracefulStop(t *testing.T) {
	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c := dial(t, "tcp", s.Addrs()[0].String())
	c.expect("set k 0 0 1\r\nv\r\n", "STORED")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !c.closed() {
		t.Error("connection left open after stop")
	}
}

// runOn feeds req to c as one batch and returns the replies.
func runOn(c *conn, req string) []byte {
	c.rbuf = append(c.rbuf[:0], req...)
	c.r, c.w, c.ahead = 0, len(c.rbuf), 0
	c.wbuf = c.wbuf[:0]
	c.processAll()
	return c.wbuf
}

// benchGetBatch stores 1,000 keys of 100-byte values through c, then serves
// batches of 64 pipelined gets of them, reporting the time per get.
func benchGetBatch(b *testing.B, c *conn) {
	var req strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&req, "set key:%d 0 0 100\r\n%s\r\n", i, strings.Repeat("v", 100))
	}
	runOn(c, req.String())
	req.Reset()
	for i := range 64 {
		fmt.Fprintf(&req, "get key:%d\r\n", (i*i*7919)%1000)
	}
	batch := req.String()
	b.ReportAllocs()
	for b.Loop() {
		runOn(c, batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/get")
}

// BenchmarkPipelinedGets serves batches of 16 pipelined gets of random
// keys among 400,000, more than the CPU caches hold, in each protocol,
// reporting the time per get.
func BenchmarkPipelinedGets(b *testing.B) {
	s, _ := start(b, Config{Storage: storage.Config{MemoryLimit: 256 << 20}})
	const keys = 400_000
	setup := newConn(s, nil)
	var req strings.Builder
	value := strings.Repeat("v", 100)
	for i := range keys {
		fmt.Fprintf(&req, "set key:%d 0 0 100 noreply\r\n%s\r\n", i, value)
		if req.Len() > 1<<20 {
			runOn(setup, req.String())
			req.Reset()
		}
	}
	runOn(setup, req.String())
	for _, p := range []struct {
		name  string
		proto Protocol
		get   func(key string) []byte
		hits  string // in the replies to a batch, once per hit
	}{
		{"text", ProtoASCII, func(k string) []byte { return []byte("get " + k + "\r\n") }, "VALUE "},
		{"meta", ProtoASCII, func(k string) []byte { return []byte("mg " + k + " v f\r\n") }, "VA "},
		{"binary", ProtoBinary, func(k string) []byte { return binPacket(protocol.OpGetKQ, nil, []byte(k), nil, 0) }, k100},
	} {
		b.Run(p.name, func(b *testing.B) {
			c := newConn(s, nil)
			c.proto = p.proto
			batches := make([]string, 1024)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range batches {
				var batch []byte
				for range 16 {
					batch = append(batch, p.get(fmt.Sprintf("key:%d", rng.IntN(keys)))...)
				}
				batches[i] = string(batch)
			}
			if got := runOn(c, batches[0]); bytes.Count(got, []byte(p.hits)) != 16 {
				b.Fatalf("a batch found %d of 16 keys", bytes.Count(got, []byte(p.hits)))
			}
			i := 0
			for b.Loop() {
				runOn(c, batches[i%len(batches)])
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*16), "ns/get")
		})
	}
}

// k100 is how a binary get's reply shows each hit of BenchmarkPipelinedGets:
// its 100-byte value.
var k100 = strings.Repeat("v", 100)

// TestPipelinedGets checks which keys prefetchAhead takes from text input:
// those of the single-key gets and meta gets that start it, up to a batch,
// and of a storage command, which ends the scan.
func TestPipelinedGets(t *testing.T) {
	var many strings.Builder
	var manyKeys []string
	for i := range storage.PrefetchBatch + 3 {
		fmt.Fprintf(&many, "get k%d\r\n", i)
		if i < storage.PrefetchBatch {
			manyKeys = append(manyKeys, fmt.Sprintf("k%d", i))
		}
	}
	for _, tc := range []struct {
		in      string
		keys    []string
		scanned int
	}{
		{"get a\r\n", []string{"a"}, 7},
		{"get a\r\ngets b\nget c\r\nget d", []string{"a", "b", "c"}, 21},
		{"get a\r\nset b 0 0 1\r\nx\r\nget c\r\n", []string{"a", "b"}, 20},
		{"cas k 0 0 1 5\r\nx\r\nget c\r\n", []string{"k"}, 15},
		{"ms k 1 T0\r\nx\r\n", []string{"k"}, 11},
		{"set \r\nget c\r\n", nil, 0},
		{"incr n 1\r\nget c\r\n", nil, 0},
		{"mg a v f\r\nmg b\r\nget c\r\nmn\r\n", []string{"a", "b", "c"}, 23},
		{"get a b\r\nget c\r\n", nil, 0},
		{"get \r\nget c\r\n", nil, 0},
		{"mg  v\r\n", nil, 0},
		{"getx a\r\n", nil, 0},
		{"", nil, 0},
		{many.String(), manyKeys, 8*10 + 9*(storage.PrefetchBatch-10)},
	} {
		var keys [storage.PrefetchBatch][]byte
		n, scanned := pipelinedGets([]byte(tc.in), &keys)
		checkPipelined(t, tc.in, keys[:n], scanned, tc.keys, tc.scanned)
	}
}

// TestPipelinedBinaryGets checks which keys prefetchAhead takes from
// binary input: those of the complete get requests that start it.
func TestPipelinedBinaryGets(t *testing.T) {
	get := func(op protocol.Opcode, key string) []byte { return binPacket(op, nil, []byte(key), nil, 0) }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ga, gb := get(protocol.OpGet, "a"), get(protocol.OpGetKQ, "bb")
	for _, tc := range []struct {
		name    string
		in      []byte
		keys    []string
		scanned int
	}{
		{"one", ga, []string{"a"}, 25},
		{"all four", join(ga, get(protocol.OpGetQ, "q"), get(protocol.OpGetK, "k"), gb), []string{"a", "q", "k", "bb"}, 101},
		{"up to a set", join(ga, binPacket(protocol.OpSet, make([]byte, 8), []byte("s"), []byte("v"), 0), gb), []string{"a"}, 25},
		{"up to an incomplete request", join(ga, gb[:len(gb)-1]), []string{"a"}, 25},
		{"up to a header cut short", join(ga, gb[:10]), []string{"a"}, 25},
		{"not a request", join(ga[:1], []byte{0x81}, ga[2:]), nil, 0},
		{"no key", get(protocol.OpGet, ""), nil, 0},
		{"key past the body", binPacketLens(protocol.OpGet, 5, 0, 2, 0, []byte("ab")), nil, 0},
	} {
		var keys [storage.PrefetchBatch][]byte
		n, scanned := pipelinedBinaryGets(tc.in, &keys)
		checkPipelined(t, tc.name, keys[:n], scanned, tc.keys, tc.scanned)
	}
}

func checkPipelined(t *testing.T, name string, keys [][]byte, scanned int, want []string, wantScanned int) {
	t.Helper()
	var got []string
	for _, k := range keys {
		got = append(got, string(k))
	}
	if !slices.Equal(got, want) || scanned != wantScanned {
		t.Errorf("%q: keys %q, scanned %d; want %q, %d", name, got, scanned, want, wantScanned)
	}
}

// TestGetHitAllocs pins the zero-allocation get path: parse, look up, and
// copy the value into the write buffer.
func TestGetHitAllocs(t *testing.T) {
	s, _ := start(t, Config{})
	c := newConn(s, nil)
	if got := string(runOn(c, "set key 0 0 5\r\nvalue\r\n")); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	if got := string(runOn(c, "get key\r\n")); got != "VALUE key 0 5\r\nvalue\r\nEND\r\n" {
		t.Fatalf("get: %q", got)
	}
	if n := testing.AllocsPerRun(1000, func() { runOn(c, "get key\r\n") }); n != 0 {
		t.Errorf("get hit allocates %.1f times, want 0", n)
	}
}

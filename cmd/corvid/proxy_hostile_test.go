//go:build linux || darwin

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/attack"
	"github.com/corvidcache/corvid/ring"
)

// The proxy's hostile-client suite runs the corvid binary as a proxy
// (one pool, ketama) in front of two corvid servers (-I 2m) holding a data
// set with 1 MB values, and attacks the proxy with the server suite's
// attacks that a proxy serves: unread multi-gets of 1 MB values (400 and
// 4000 keys, and a nearly 1 MiB line of keys), unread pipelined gets,
// slow readers, huge declared values, half-sent lines, a 1 MiB line of
// misses, clients that disconnect in the middle of a request, and 10k
// idle connections. Throughout, the proxy's RSS must stay under
// proxyHostileMB (the bound proxy/doc.go documents), a well-behaved
// client must get correct answers with a p99 latency under hostileP99,
// and the data set must be whole afterwards. The attacks that make the
// proxy hold what it reads may add the bound on the clients' read
// buffers proxy/doc.go documents (64 MiB, as the server suite's
// read_buf_mem_limit).
//
// By default the attacks are modest; CORVID_HOSTILE=full runs them
// larger and longer.
const (
	// proxyHostileMB bounds the proxy's RSS under the attacks. proxy/doc.go
	// ("Memory bounds") bounds the replies held for clients at 64 MiB
	// plus an allowance of 8 MiB, whatever the number of clients, and a
	// server connection's queue at 8 MiB; with the Go heap's headroom
	// over the replies (large read buffers are off the heap), the attacks
	// here (16 to 500 connections) stay under 256 MB.
	proxyHostileMB = 256
	// proxyReadBufMB bounds the clients' read buffers past their first
	// 4 KiB, all together (proxy/doc.go: Config.ReadBufMemLimit, 64 MiB
	// by default, as the server's read_buf_mem_limit).
	proxyReadBufMB = 64
	// proxyIdleConnBytes is the target cost of an idle client
	// connection.
	proxyIdleConnBytes = 8 << 10
)

// proxyHostilePending names the proxy attacks that still fail, with the
// fix they wait for; they are skipped unless CORVID_HOSTILE_PENDING is set.
var proxyHostilePending = map[string]string{}

// proxyLatencyPending names the attacks whose memory bound holds but
// whose latency bound for the well-behaved client is not checked, with
// why; it is checked only when CORVID_HOSTILE_PENDING is set.
var proxyLatencyPending = map[string]string{
	// Each of 128 clients asks for 16 MB once (a client's first request
	// is always admitted) and never reads: the servers send 2 GB down
	// the one connection per server that the prober's gets share. The
	// proxy drops what it may not hold, but must read it all first, so
	// the prober waits behind it: on a quiet machine its p99 was 7 ms in
	// two runs of four and 0.56-0.80 s in the other two. A second server
	// connection (server_connections: 2) is the remedy, as it would be
	// with twemproxy.
	"unread-get-16-values": "head-of-line: 2 GB of replies for clients that do not read, on the prober's server connection",
}

// proxyPending skips the test named name while its fix is pending.
func proxyPending(t *testing.T, name string) {
	t.Helper()
	if fix, ok := proxyHostilePending[name]; ok && os.Getenv("CORVID_HOSTILE_PENDING") == "" {
		t.Skipf("waits for %s; CORVID_HOSTILE_PENDING=1 runs it", fix)
	}
}

// proxyAttacks are the attacks of the server suite that apply to a proxy
// (metadumps and the binary protocol are not the proxy's to serve).
func proxyAttacks(d attack.Data, sc attack.Scale, addr string) []attack.Attack {
	var as []attack.Attack
	for _, a := range attack.Attacks(d, sc) {
		if strings.Contains(a.Name, "metadump") || strings.HasPrefix(a.Name, "binary-") {
			continue
		}
		as = append(as, a)
	}
	return append(as, attack.Churn(addr, d, sc.Conns))
}

// proxyHostileScale returns the sizes of the attacks and how long each is
// held.
func proxyHostileScale() (attack.Data, attack.Scale, time.Duration) {
	d := attack.Data{Big: 8, BigSize: 1 << 20, Small: 5000}
	sc := attack.Scale{Conns: 16, BufConns: 128, Keys: 400, DeclaredSize: 2_000_000, HugeLine: true}
	hold := 200 * time.Millisecond
	if os.Getenv("CORVID_HOSTILE") == "full" {
		d.Small = 50_000
		sc.Conns, sc.BufConns = 100, 500
		hold = time.Second
	}
	return d, sc, hold
}

// proxyBackends starts two corvid servers holding d and returns their
// addresses.
func proxyBackends(t *testing.T) []string {
	t.Helper()
	var addrs []string
	for range 2 {
		addrs = append(addrs, startServerProc(t, "-m", "256", "-I", "2m").addr)
	}
	return addrs
}

// proxyPoolConf is a nutcracker.yml with one pool on 127.0.0.1:port in
// front of servers, with timeout ms (0: none).
func proxyPoolConf(port, timeout int, servers []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostile:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n", port)
	if timeout > 0 {
		fmt.Fprintf(&b, "  timeout: %d\n", timeout)
	}
	b.WriteString("  servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "   - %s:1\n", s)
	}
	return b.String()
}

// startProxyFor runs the proxy binary with one pool in front of servers
// and returns it with its pool's address.
func startProxyFor(t *testing.T, timeout int, servers []string) (*serverProc, string) {
	t.Helper()
	ports := freePorts(t, 2)
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(proxyPoolConf(ports[0], timeout, servers)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProxyProc(t, conf, ports[1])
	p.addr = "127.0.0.1:" + strconv.Itoa(ports[0])
	waitLog(t, p, "pool listening")
	return p, p.addr
}

// freePorts returns n distinct free ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	seen := make(map[int]bool)
	var ports []int
	for i := 0; len(ports) < n && i < 100; i++ {
		if p := freePort(t); !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// startProxyHostile starts a proxy in front of servers, which hold d
// (stored through the proxy when fill is set), with its RSS sampler and
// a well-behaved client.
func startProxyHostile(t *testing.T, d attack.Data, servers []string, fill bool) *hostile {
	t.Helper()
	if raceEnabled {
		t.Skip("the proxy binary is built without the race detector; under it only the test's own clients slow down, and the latency bound would measure them")
	}
	p, addr := startProxyFor(t, 0, servers)
	h := &hostile{p: p, d: d, killed: make(chan int64, 1)}
	if fill {
		if err := attack.Fill(addr, d); err != nil {
			t.Fatalf("cannot store the data set: %v", err)
		}
		if err := attack.Verify(addr, d); err != nil {
			t.Fatalf("after storing the data set: %v", err)
		}
	}
	h.sampler = attack.StartSampler(p.cmd.Process.Pid, 10*time.Millisecond, hostileKillMB<<20, func(rss int64) {
		h.killed <- rss
		p.cmd.Process.Kill()
	})
	t.Cleanup(h.sampler.Stop)
	var err error
	if h.prober, err = attack.StartProber(addr, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.prober.Stop)
	return h
}

// runProxy holds attack a on the proxy for hold and checks its RSS, the
// prober's answers and latency.
func (h *hostile) runProxy(t *testing.T, a attack.Attack, hold time.Duration) attack.Result {
	t.Helper()
	r := h.runAttack(t, a, hold)
	bound, also := int64(proxyHostileMB)<<20, ""
	if a.HoldsInput {
		bound += proxyReadBufMB << 20
		also = fmt.Sprintf(" + read buffers' bound %d MB", proxyReadBufMB)
	}
	if r.PeakRSS > bound {
		t.Errorf("peak RSS %d MB, want under %d MB%s", r.PeakRSS>>20, proxyHostileMB, also)
	}
	if why, ok := proxyLatencyPending[a.Name]; ok && os.Getenv("CORVID_HOSTILE_PENDING") == "" {
		t.Logf("latency not checked: %s", why)
		return r
	}
	checkLatency(t, r, hold)
	return r
}

// TestProxyHostileMemoryBound runs each attack against a fresh proxy in
// front of the same two servers.
func TestProxyHostileMemoryBound(t *testing.T) {
	d, sc, hold := proxyHostileScale()
	servers := proxyBackends(t)
	filled := false
	peaks := make(map[string]int64)
	for _, a := range proxyAttacks(d, sc, "") {
		t.Run(a.Name, func(t *testing.T) {
			proxyPending(t, a.Name)
			h := startProxyHostile(t, d, servers, !filled)
			filled = true
			if strings.HasPrefix(a.Name, "churn-") {
				a = attack.Churn(h.p.addr, d, sc.Conns)
			}
			peaks[a.Name] = h.runProxy(t, a, hold).PeakRSS
			h.checkAlive(t)
			if err := attack.Verify(h.p.addr, d); err != nil {
				h.checkAlive(t)
				t.Errorf("after the attack: %v", err)
			}
		})
	}
	// An unread multi-get of ten times as many keys costs about the same:
	// not ten times as much. The smaller one's peak varies with how far
	// the attack got before the budget closed it (89-145 MB in runs where
	// the larger one's was 138-140 MB), so the check allows twice it.
	small, large := peaks[fmt.Sprintf("unread-get-%d", sc.Keys)], peaks[fmt.Sprintf("unread-get-%d", 10*sc.Keys)]
	if small > 0 && large > 2*small+32<<20 {
		t.Errorf("unread get of %d keys: peak RSS %d MB; of %d keys: %d MB", sc.Keys, small>>20, 10*sc.Keys, large>>20)
	}
}

// TestProxyHostileIdleConnections opens 10k client connections to a
// fresh proxy, while a well-behaved client's gets go on, and checks what
// each costs: at most proxyIdleConnBytes of the proxy's RSS, less its RSS
// before. Connections that send nothing are judged by the peak RSS while
// they are held; connections that each sent a multi-get first (a few at a
// time, as a client fills its pool) by the RSS once it has settled, since
// the requests themselves cost memory while they run.
func TestProxyHostileIdleConnections(t *testing.T) {
	raiseNoFile(t, hostileIdle+512)
	d, _, hold := proxyHostileScale()
	d.Small = 1000
	servers := proxyBackends(t)
	check := func(t *testing.T, h *hostile, before, after int64) {
		t.Helper()
		per := (after - before) / hostileIdle
		t.Logf("RSS %d MB before, %d MB with %d idle connections: %d bytes each", before>>20, after>>20, hostileIdle, per)
		if per > proxyIdleConnBytes {
			t.Errorf("an idle client connection costs %d bytes, want at most %d", per, proxyIdleConnBytes)
		}
	}
	t.Run("silent", func(t *testing.T) {
		h := startProxyHostile(t, d, servers, true)
		before, err := attack.RSS(h.p.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		r := h.runProxy(t, attack.Idle(hostileIdle), hold)
		if r.Connections < hostileIdle {
			t.Errorf("curr_connections %d, want at least %d", r.Connections, hostileIdle)
		}
		check(t, h, before, r.PeakRSS)
	})
	t.Run("used", func(t *testing.T) {
		h := startProxyHostile(t, d, servers, false)
		before, err := attack.RSS(h.p.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		h.prober.Take()
		conns := openUsed(t, h.p.addr, hostileIdle)
		defer func() {
			for _, nc := range conns {
				nc.Close()
			}
		}()
		after := settledRSS(t, h.p.cmd.Process.Pid)
		h.checkAlive(t)
		var r attack.Result
		r.Requests, r.P99, r.Worst, err = h.prober.Take()
		if err != nil {
			t.Fatalf("the well-behaved client: %v", err)
		}
		checkLatency(t, r, hold)
		check(t, h, before, after)
	})
}

// openUsed opens n connections to addr, each of which gets 16 keys (on
// every server) and reads the reply, at most 8 at a time, and returns
// them open.
func openUsed(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var b strings.Builder
	b.WriteString("get")
	for k := range 16 {
		fmt.Fprintf(&b, " idle:%d", k)
	}
	b.WriteString("\r\n")
	req := b.String()
	conns := make([]net.Conn, n)
	errs := make(chan error, 8)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := range next {
				nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err == nil {
					conns[i] = nc
					nc.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err = io.WriteString(nc, req); err == nil {
						_, err = io.ReadFull(nc, buf[:5])
					}
					if err == nil && string(buf[:5]) != "END\r\n" {
						err = fmt.Errorf("reply %q", buf[:5])
					}
					nc.SetDeadline(time.Time{})
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	if err != nil {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
		t.Fatal(err)
	}
	return conns
}

// settledRSS returns the RSS of process pid once it has changed by less
// than 1 MB over a second (or after 30 s).
func settledRSS(t *testing.T, pid int) int64 {
	t.Helper()
	var last int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		rss, err := attack.RSS(pid)
		if err != nil {
			t.Fatal(err)
		}
		if d := rss - last; d < 1<<20 && d > -1<<20 || time.Now().After(deadline) {
			return rss
		}
		last = rss
		time.Sleep(time.Second)
	}
}

// raiseNoFile raises the open file limit to need, or skips the test.
func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if lim.Cur < need || syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			t.Skipf("the open file limit (%d, hard %d) cannot be raised to %d", lim.Cur, lim.Max, need)
		}
	}
}

// stuckBackend is a server that accepts connections and never reads
// them. The test's end closes it and its connections.
type stuckBackend struct {
	ln    net.Listener
	mu    sync.Mutex // guards conns
	conns []net.Conn
	done  chan struct{}
}

func startStuckBackend(t *testing.T) *stuckBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stuckBackend{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
		s.mu.Lock()
		for _, nc := range s.conns {
			nc.Close()
		}
		s.mu.Unlock()
	})
	return s
}

// keysOn returns n keys that the proxy's pool (proxyPoolConf's hash and
// distribution over servers) places on servers[i].
func keysOn(t *testing.T, servers []string, i, n int) []string {
	t.Helper()
	var rs []ring.Server
	for _, s := range servers {
		rs = append(rs, ring.Server{Addr: s, Weight: 1})
	}
	r, err := ring.New(ring.Config{Servers: rs, Hash: "fnv1a_64", Distribution: ring.Ketama})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := 0; len(keys) < n && k < 1_000_000; k++ {
		key := "key:" + strconv.Itoa(k*7919)
		if r.PickString(key) == i {
			keys = append(keys, key)
		}
	}
	if len(keys) < n {
		t.Fatalf("found %d keys on server %d", len(keys), i)
	}
	return keys
}

// stuckSetters opens n connections that each send sets of 1 MB values
// for keys (all on a server that does not read) without reading, until
// the proxy stops taking them. They close at the test's end.
func stuckSetters(t *testing.T, addr string, keys []string, n int) {
	t.Helper()
	value := strings.Repeat("v", 1<<20)
	var wg sync.WaitGroup
	for i := range n {
		nc, _ := dialProc(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 32 {
				nc.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
				key := keys[(i+j)%len(keys)]
				if _, err := fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\n", key, len(value), value); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestProxyHostileStuckBackend puts the proxy in front of a corvid server
// and a server that accepts connections and never reads them (no
// timeout configured, the worst case): clients sending it 1 MB sets must
// not make the proxy buffer without bound (a server connection's queue
// holds at most 8 MiB, then requests fail with "SERVER_ERROR server queue
// is full"; a client's read buffer holds at most one request), keys of
// the other server keep being answered, and SIGTERM stops the proxy at
// once.
func TestProxyHostileStuckBackend(t *testing.T) {
	if raceEnabled {
		t.Skip("measures the proxy binary's memory and latency")
	}
	good := startServerProc(t, "-m", "64").addr
	stuck := startStuckBackend(t).ln.Addr().String()
	servers := []string{good, stuck}
	p, addr := startProxyFor(t, 0, servers)
	stuckSetters(t, addr, keysOn(t, servers, 1, 64), 16)
	goodKeys := keysOn(t, servers, 0, 20)
	start := time.Now()
	for _, key := range goodKeys {
		if got := roundTrip(t, addr, "set "+key+" 0 0 1\r\nx\r\nget "+key+"\r\n", "END"); got != "STORED\r\nVALUE "+key+" 0 1\r\nx\r\nEND\r\n" {
			t.Fatalf("%s (on the server that reads): %q", key, got)
		}
	}
	t.Logf("%d keys of the good server set and read in %v", len(goodKeys), time.Since(start))
	// Without a timeout, a request for the stuck server waits while its
	// queue has room, and fails at once when it is full.
	nc, r := dialProc(t, addr)
	nc.SetDeadline(time.Now().Add(200 * time.Millisecond))
	fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\n", keysOn(t, servers, 1, 1)[0], len(bigValue), bigValue)
	if line, err := r.ReadString('\n'); line != "SERVER_ERROR server queue is full\r\n" && !errTimeout(err) {
		t.Errorf("set of a key on the stuck server: %q %v", line, err)
	}
	rss, err := attack.RSS(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("proxy RSS %d MB", rss>>20)
	if rss > proxyHostileMB<<20 {
		t.Errorf("RSS %d MB, want under %d MB", rss>>20, proxyHostileMB)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	took := p.exitWithin(t, proxyStopWithin)
	t.Logf("stopped in %v", took)
}

// proxyStopWithin bounds how long the proxy may take to stop on SIGTERM:
// it stops at once, as nutcracker does (proxy/doc.go, "Stopping"); the
// bound leaves room for a slow machine.
const proxyStopWithin = 5 * time.Second

// TestProxyHostileShutdown stops the proxy with SIGTERM while clients do
// not read large replies (80 gets of a 500 KB value each, more than the
// sockets buffer) and others have filled a server's socket that is never
// read: the proxy must exit within proxyStopWithin.
func TestProxyHostileShutdown(t *testing.T) {
	good := startServerProc(t, "-m", "64").addr
	stuck := startStuckBackend(t).ln.Addr().String()
	servers := []string{good, stuck}
	p, addr := startProxyFor(t, 0, servers)
	for range 4 {
		nc, r := dialProc(t, addr)
		key := keysOn(t, servers, 0, 1)[0]
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\n", key, len(bigValue), bigValue)
		if line, err := r.ReadString('\n'); line != "STORED\r\n" {
			t.Fatalf("set %s: %q %v", key, line, err)
		}
		if _, err := io.WriteString(nc, strings.Repeat("get "+key+"\r\n", 80)); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); !strings.HasPrefix(line, "VALUE ") {
			t.Fatalf("get %s: %q %v", key, line, err)
		}
	}
	stuckSetters(t, addr, keysOn(t, servers, 1, 16), 4)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took := p.exitWithin(t, proxyStopWithin)
	t.Logf("stopped in %v", took)
}

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
)

// parseConf parses a nutcracker.yml for Reload.
func parseConf(t *testing.T, conf string) *nutcracker.Config {
	t.Helper()
	c, err := nutcracker.Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// twoPoolYAML is pool "alpha" on 127.0.0.1:0 with servers
// (host:port:weight) and, when beta is not empty, pool "beta" on the Unix
// socket betaListen (nutcracker refuses two pools on 127.0.0.1:0).
func twoPoolYAML(betaListen string, alpha []string, beta []string) string {
	var b strings.Builder
	b.WriteString("alpha:\n  listen: 127.0.0.1:0\n  timeout: 5000\n  servers:\n")
	for _, s := range alpha {
		fmt.Fprintf(&b, "   - %s\n", s)
	}
	if len(beta) > 0 {
		fmt.Fprintf(&b, "beta:\n  listen: %s\n  servers:\n", betaListen)
		for _, s := range beta {
			fmt.Fprintf(&b, "   - %s\n", s)
		}
	}
	return b.String()
}

// loadClient does sets, gets and multi-gets of its own keys on one
// connection, and counts what goes wrong: a failed request (an error
// reply, a broken connection) or a value that was never written for its
// key.
type loadClient struct {
	nc    net.Conn
	rd    *bufio.Reader
	id    int
	ops   atomic.Int64
	fails atomic.Int64
	wrong atomic.Int64
	err   atomic.Pointer[string] // the first failure
}

func (c *loadClient) fail(format string, args ...any) {
	c.fails.Add(1)
	s := fmt.Sprintf(format, args...)
	c.err.CompareAndSwap(nil, &s)
}

// run loops until stop is set (at most 1e6 rounds).
func (c *loadClient) run(stop *atomic.Bool) {
	const nkeys = 40
	key := func(i int) string { return fmt.Sprintf("c%d-k%d", c.id, i%nkeys) }
	for i := 0; !stop.Load() && i < 1e6; i++ {
		c.nc.SetDeadline(time.Now().Add(20 * time.Second))
		k := key(i)
		v := k + ":" + strconv.Itoa(i)
		fmt.Fprintf(c.nc, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
		if line, err := c.rd.ReadString('\n'); err != nil || line != "STORED\r\n" {
			c.fail("set %s: %q %v", k, line, err)
			return
		}
		keys := []string{k}
		if i%3 == 0 {
			for j := 1; j < 12; j++ {
				keys = append(keys, key(i+7*j))
			}
		}
		fmt.Fprintf(c.nc, "get %s\r\n", strings.Join(keys, " "))
		if !c.readValues(keys) {
			return
		}
		c.ops.Add(2)
	}
}

// readValues reads a get's reply: values in key order, each one written
// for its key, then END.
func (c *loadClient) readValues(keys []string) bool {
	next := 0
	for {
		line, err := c.rd.ReadString('\n')
		if err != nil {
			c.fail("get: %v", err)
			return false
		}
		if line == "END\r\n" {
			return true
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "VALUE" {
			c.fail("get: %q", line)
			return false
		}
		n, err := strconv.Atoi(f[3])
		if err != nil {
			c.fail("get: %q", line)
			return false
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(c.rd, data); err != nil {
			c.fail("get: %v", err)
			return false
		}
		for next < len(keys) && keys[next] != f[1] {
			next++
		}
		if next == len(keys) || !strings.HasPrefix(string(data), f[1]+":") {
			c.wrong.Add(1)
			s := fmt.Sprintf("get: %q holds %q", f[1], data)
			c.err.CompareAndSwap(nil, &s)
		}
	}
}

// TestReloadUnderLoad reloads ten times while clients do sets, gets and
// multi-gets through the proxy, with configurations that add, remove and
// reweight a server and add and remove a pool: no request fails, no
// value read is one not written for its key, and the clients keep their
// connections.
func TestReloadUnderLoad(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "beta.sock")
	s := startCorvids(t, 3)
	confs := []string{
		twoPoolYAML(sock, []string{s[0] + ":1", s[1] + ":1"}, nil),
		// A server and a pool added.
		twoPoolYAML(sock, []string{s[0] + ":1", s[1] + ":1", s[2] + ":1"}, []string{s[2] + ":1"}),
		// A server reweighted, the pool removed.
		twoPoolYAML(sock, []string{s[0] + ":3", s[1] + ":1", s[2] + ":1"}, nil),
		// A server removed, a pool added.
		twoPoolYAML(sock, []string{s[1] + ":1", s[2] + ":1"}, []string{s[0] + ":1", s[1] + ":1"}),
	}
	p := startProxy(t, confs[0])
	addr := p.Addrs()["alpha"].String()

	var stop atomic.Bool
	var wg sync.WaitGroup
	clients := make([]*loadClient, 4)
	for i := range clients {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		clients[i] = &loadClient{nc: nc, rd: bufio.NewReader(nc), id: i}
	}
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(&stop)
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	ops := func() int64 {
		var n int64
		for _, c := range clients {
			n += c.ops.Load()
		}
		return n
	}
	// progress reports whether the clients made n more requests since
	// before, or one of them stopped on a failure (reported below).
	progress := func(before, n int64) bool {
		for _, c := range clients {
			if c.fails.Load() > 0 {
				return true
			}
		}
		return ops() >= before+n
	}
	// Each reload happens under load: the clients have made progress
	// since the previous one.
	for i := 1; i <= 10; i++ {
		before := ops()
		testutil.WaitFor(t, func() bool { return progress(before, 200) })
		conf := confs[i%len(confs)]
		if err := p.Reload(parseConf(t, conf)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		_, hasBeta := p.Addrs()["beta"]
		if want := strings.Contains(conf, "beta:"); hasBeta != want {
			t.Fatalf("reload %d: pool beta listening %v, want %v", i, hasBeta, want)
		}
		if got := p.Addrs()["alpha"].String(); got != addr {
			t.Fatalf("reload %d: alpha moved from %s to %s", i, addr, got)
		}
	}
	before := ops()
	testutil.WaitFor(t, func() bool { return progress(before, 100) })
	stop.Store(true)
	wg.Wait()
	for _, c := range clients {
		if f, w := c.fails.Load(), c.wrong.Load(); f > 0 || w > 0 {
			t.Errorf("client %d: %d failed requests, %d wrong values (first: %s)", c.id, f, w, *c.err.Load())
		}
	}
	if n := ops(); n < 2000 {
		t.Errorf("only %d requests", n)
	}
	st := p.Stats()
	if st.CurrConnections != int64(len(clients)) || st.TotalConnections != int64(len(clients)) {
		t.Errorf("connections: %d open, %d in all; want %d, %d", st.CurrConnections, st.TotalConnections,
			len(clients), len(clients))
	}
}

// TestReloadKeepsServers checks what a reload keeps: an unchanged server's
// backend (its connections) and counters, a reweighted server's too, and
// that a removed server is closed.
func TestReloadKeepsServers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "beta.sock")
	s := startCorvids(t, 3)
	p := startProxy(t, twoPoolYAML(sock, []string{s[0] + ":1", s[1] + ":1", s[2] + ":1"}, nil))
	c := testutil.Dial(t, p.Addrs()["alpha"].String())
	defer c.Close()
	pl := p.pools[0]
	old := pl.cur.Load().all
	// A key on every server, picked with the ring: similar short keys
	// can all miss one server's arcs.
	tr := pl.cur.Load()
	picked := make([]bool, len(tr.live))
	for i, n := 0, 0; i < 100000 && n < len(picked); i++ {
		key := fmt.Sprintf("k%d", i)
		if s := tr.pick([]byte(key)); !picked[s] {
			picked[s], n = true, n+1
			if got := roundTrip(c, "set "+key+" 0 0 1\r\nx\r\n", testutil.LineReply); got != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
		}
	}
	reqs := make([]int64, len(old))
	for i, b := range old {
		reqs[i] = b.st.requests.Load()
		if reqs[i] == 0 || b.st.connections.Load() != 1 {
			t.Fatalf("server %s: %d requests, %d connections", b.name, reqs[i], b.st.connections.Load())
		}
	}
	// s[0] removed, s[1] reweighted, s[2] unchanged.
	if err := p.Reload(parseConf(t, twoPoolYAML(sock, []string{s[1] + ":2", s[2] + ":1"}, nil))); err != nil {
		t.Fatal(err)
	}
	all := pl.cur.Load().all
	if len(all) != 2 || all[0] != old[1] || all[1] != old[2] {
		t.Fatalf("servers after the reload are not the old ones")
	}
	st := p.Stats().Pools[0].Servers
	for i, ss := range st {
		if ss.Requests < reqs[i+1] || ss.ServerConnections != 1 {
			t.Errorf("server %s after the reload: %+v, had %d requests", ss.Name, ss, reqs[i+1])
		}
	}
	testutil.WaitFor(t, func() bool { return old[0].st.connections.Load() == 0 })
	for _, bc := range old[0].conns {
		bc.mu.Lock()
		closed := bc.closed
		bc.mu.Unlock()
		if !closed {
			t.Error("the removed server is not closed")
		}
	}
	if got := roundTrip(c, "get k1 k2 k3\r\n", testutil.ValuesReply); !strings.HasSuffix(got, "END\r\n") {
		t.Errorf("get after the reload: %q", got)
	}
}

// TestReloadInvalidKeepsOld checks that a configuration the proxy cannot
// serve is refused as a whole: the old one keeps serving, and a listener
// the refused configuration bound is closed again.
func TestReloadInvalidKeepsOld(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "beta.sock")
	s := startCorvids(t, 2)
	p := startProxy(t, twoPoolYAML(sock, []string{s[0] + ":1"}, nil))
	addr := p.Addrs()["alpha"].String()
	c := testutil.Dial(t, addr)
	defer c.Close()
	if got := roundTrip(c, "set k 0 0 1\r\nx\r\n", testutil.LineReply); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := testutil.FreePorts(t, 1)[0]
	freeAddr := "127.0.0.1:" + strconv.Itoa(free)
	for _, tc := range []struct {
		name string
		conf *nutcracker.Config
		want string
	}{
		{"no pools", &nutcracker.Config{}, "no pools"},
		{"redis", parseConf(t, "alpha:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n   - "+s[1]+":1\n"), "redis"},
		// gamma binds its port before delta fails: gamma's listener must
		// be closed again.
		{"listen address in use", parseConf(t, twoPoolYAML(sock, []string{s[1] + ":1"}, nil)+
			"gamma:\n  listen: "+freeAddr+"\n  servers:\n   - "+s[1]+":1\n"+
			"delta:\n  listen: "+busy.Addr().String()+"\n  servers:\n   - "+s[1]+":1\n"), "cannot listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Reload(tc.conf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload: %v, want an error with %q", err, tc.want)
			}
			if a := p.Addrs(); len(a) != 1 || a["alpha"].String() != addr {
				t.Errorf("pools after a refused reload: %v", a)
			}
			if all := p.pools[0].cur.Load().all; len(all) != 1 || all[0].addr != s[0] {
				t.Errorf("servers after a refused reload: %d", len(all))
			}
			if got := roundTrip(c, "get k\r\n", testutil.ValuesReply); got != "VALUE k 0 1\r\nx\r\nEND\r\n" {
				t.Errorf("get after a refused reload: %q", got)
			}
		})
	}
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the refused configuration's listener is left open: %v", err)
	}
	ln.Close()
}

// TestReloadRemovesPool checks what happens to a removed pool's clients: a
// request in flight is answered, then the connection is closed, and the
// pool's listener is closed at once.
func TestReloadRemovesPool(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "beta.sock")
	s := startCorvids(t, 1)
	got := make(chan string, 1)
	release := make(chan struct{})
	// beta's server answers its first request only once released.
	slow := testutil.FakeServer(t, func(nc net.Conn) {
		rd := bufio.NewReader(nc)
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		got <- line
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		io.WriteString(nc, "END\r\n")
		io.Copy(io.Discard, rd) // until the proxy closes
	})
	p := startProxy(t, twoPoolYAML(sock, []string{s[0] + ":1"}, []string{slow + ":1"}))
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(nc, "get k\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-got:
		if line != "get k\r\n" {
			t.Fatalf("the server got %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the server")
	}
	if err := p.Reload(parseConf(t, twoPoolYAML(sock, []string{s[0] + ":1"}, nil))); err != nil {
		t.Fatal(err)
	}
	if nc, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		nc.Close()
		t.Error("the removed pool still accepts clients")
	}
	close(release)
	// The reply, then the end of the connection.
	if r, err := io.ReadAll(nc); err != nil || string(r) != "END\r\n" {
		t.Fatalf("the request in flight: %q, %v", r, err)
	}
	testutil.WaitFor(t, func() bool {
		st := p.Stats()
		return len(st.Pools) == 1 && st.CurrConnections == 0
	})
}

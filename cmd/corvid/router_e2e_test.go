//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// startRouterProc runs "corvid router args" and waits until it has
// logged that it started; the test's end kills it.
func startRouterProc(t *testing.T, args ...string) *serverProc {
	t.Helper()
	bin := corvidBinary(t)
	p := &serverProc{done: make(chan error, 1), stderr: new(syncBuilder)}
	p.cmd = exec.Command(bin, append([]string{"router"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
	})
	waitLog(t, p, "started on pid")
	return p
}

// exampleServers starts one corvid server per distinct 127.0.0.1:port
// address of the example file name and returns the file's text with the
// addresses replaced by the servers', and the servers by the example's
// address.
func exampleServers(t *testing.T, name string) (string, map[string]*server.Server) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	servers := make(map[string]*server.Server)
	text := regexp.MustCompile(`127\.0\.0\.1:[0-9]+`).ReplaceAllStringFunc(string(b), func(addr string) string {
		s := servers[addr]
		if s == nil {
			s = testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
			servers[addr] = s
		}
		return s.Addrs()[0].String()
	})
	return text, servers
}

// routerOn writes conf to a file and runs the router on it with one port;
// it returns the process, the file and the router's address.
func routerOn(t *testing.T, conf string, args ...string) (*serverProc, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcrouter.json")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePorts(t, 1)[0]
	p := startRouterProc(t, append([]string{"-f", path, "-p", strconv.Itoa(port), "--listen-addresses", "127.0.0.1"}, args...)...)
	return p, path, "127.0.0.1:" + strconv.Itoa(port)
}

func addrOf(s *server.Server) string { return s.Addrs()[0].String() }

// setVia stores key=key through addr.
func setVia(t *testing.T, addr, key string) {
	t.Helper()
	if got := roundTrip(t, addr, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(key), key), "STORED"); got != "STORED\r\n" {
		t.Fatalf("set %s via %s: %q", key, addr, got)
	}
}

// hit reports whether addr holds key.
func hit(t *testing.T, addr, key string) bool {
	t.Helper()
	return roundTrip(t, addr, "get "+key+"\r\n", "END") != "END\r\n"
}

// routeCounter returns the router's stats-command counter name, or -1.
func routeCounter(t *testing.T, addr, name string) int64 {
	t.Helper()
	for _, line := range strings.Split(roundTrip(t, addr, "stats\r\n", "END"), "\r\n") {
		if v, ok := strings.CutPrefix(line, "STAT "+name+" "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// TestBinaryRouterEndToEnd runs the built router on examples/mcrouter.json
// (its servers replaced by corvid servers) with two ports: every common
// command works through both, session: keys live in the sessions pool,
// mcrouter's admin gets answer as mcrouter's, the stats command and the
// admin port's /stats show the route counters, and SIGTERM stops it.
func TestBinaryRouterEndToEnd(t *testing.T) {
	conf, servers := exampleServers(t, "mcrouter.json")
	path := filepath.Join(t.TempDir(), "mcrouter.json")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := testutil.FreePorts(t, 3)
	p := startRouterProc(t, "-f", path, "-p", strconv.Itoa(ports[0]), "--port", strconv.Itoa(ports[1]),
		"--listen-addresses", "127.0.0.1", "--admin", "127.0.0.1:"+strconv.Itoa(ports[2]), "--num-proxies", "4")
	for i, port := range ports[:2] {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		var keys []string
		var want strings.Builder
		for k := range 20 {
			key := fmt.Sprintf("k%d:%d", i, k)
			if k%4 == 0 {
				key = "session:" + key
			}
			keys = append(keys, key)
			setVia(t, addr, key)
			fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", key, len(key), key)
		}
		want.WriteString("END\r\n")
		if got := roundTrip(t, addr, "get "+strings.Join(keys, " ")+"\r\n", "END"); got != want.String() {
			t.Errorf("multi-get on port %d:\n got %q\nwant %q", port, got, want.String())
		}
		for _, step := range []struct{ req, last, want string }{
			{"set n 0 0 1\r\n5\r\n", "STORED", "STORED\r\n"},
			{"incr n 3\r\n", "8", "8\r\n"},
			{"decr n 2\r\n", "6", "6\r\n"},
			{"touch n 100\r\n", "TOUCHED", "TOUCHED\r\n"},
			{"get n\r\n", "END", "VALUE n 0 1\r\n6\r\nEND\r\n"},
			{"delete n\r\n", "DELETED", "DELETED\r\n"},
			{"get n\r\n", "END", "END\r\n"},
			{"delete n\r\n", "NOT_FOUND", "NOT_FOUND\r\n"},
		} {
			if got := roundTrip(t, addr, step.req, step.last); got != step.want {
				t.Errorf("port %d: %q: got %q, want %q", port, step.req, got, step.want)
			}
		}
	}
	sessions := addrOf(servers["127.0.0.1:11313"])
	if !hit(t, sessions, "session:k0:0") || hit(t, sessions, "k0:1") {
		t.Errorf("session: keys must be in the sessions pool, and only those")
	}

	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	for _, tc := range []struct{ key, want string }{
		{"config_file", path},
		{"options(num_proxies)", "4"},
		{"options(config_file)", path},
		{"options(nosuch)", "ERROR: options: option nosuch not found"},
		{"nosuch", "ERROR: unknown command: nosuch"},
	} {
		key := "__mcrouter__." + tc.key
		want := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(tc.want), tc.want)
		if got := roundTrip(t, addr, "get "+key+"\r\n", "END"); got != want {
			t.Errorf("get %s: %q, want %q", key, got, want)
		}
	}
	for key, re := range map[string]string{
		"version":    `^VALUE __mcrouter__\.version 0 \d+\r\ncorvid \S+\r\nEND\r\n$`,
		"config_age": `^VALUE __mcrouter__\.config_age 0 \d\r\n\d+\r\nEND\r\n$`,
		"options":    `(?s)^VALUE __mcrouter__\.options 0 \d+\r\nconfig file:.*\nnum_proxies 4\nports ` + strconv.Itoa(ports[0]) + `,` + strconv.Itoa(ports[1]) + `\r\nEND\r\n$`,
	} {
		if got := roundTrip(t, addr, "get __mcrouter__."+key+"\r\n", "END"); !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("get __mcrouter__.%s: %q does not match %s", key, got, re)
		}
	}

	if n := routeCounter(t, addr, "route:route.policies.session::requests"); n < 1 {
		t.Errorf("route:route.policies.session::requests = %d, want > 0", n)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(ports[2]) + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var stats struct {
		Routes map[string]map[string]any `json:"routes"`
	}
	if err := json.Unmarshal(raw, &stats); err != nil {
		t.Fatalf("admin /stats: %v\n%s", err, raw)
	}
	if n, _ := stats.Routes["route"]["requests"].(float64); n < 1 {
		t.Errorf("admin /stats: no requests counted on the root: %s", raw)
	}
	p.stop(t, syscall.SIGTERM)
}

// twoPools is a configuration with pools A and B (servers a and b)
// served by PoolRoute|<to>.
func twoPools(a, b, to string) string {
	return fmt.Sprintf(`{"pools": {"A": {"servers": [%q]}, "B": {"servers": [%q]}},
  // the route
  "route": "PoolRoute|%s",}`, a, b, to)
}

// replaceFile writes text to a new file renamed over path, as an editor
// does.
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestBinaryRouterReload changes the route of a running router under
// load: the new tree takes new requests, no request fails, and a bad
// file is refused with the old tree serving on.
func TestBinaryRouterReload(t *testing.T) {
	a, b := testutil.StartCorvid(t, server.Config{}), testutil.StartCorvid(t, server.Config{})
	p, path, addr := routerOn(t, twoPools(a, b, "A"))
	setVia(t, addr, "before")
	if !hit(t, a, "before") {
		t.Fatal("the first tree must route to pool A")
	}

	// Clients set and get on their own connections while the tree
	// changes; every reply must be the right one.
	var stop atomic.Bool
	var failures, split atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
				return
			}
			defer nc.Close()
			conn := testutil.NewConn(t, nc)
			for i := 0; i < 100000 && !stop.Load(); i++ {
				key := fmt.Sprintf("load%d:%d", c, i)
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := conn.TrySend([]byte(fmt.Sprintf("set %s 0 0 1\r\nx\r\nget %s\r\n", key, key))); err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					return
				}
				r1, err1 := conn.TryReadReply(testutil.LineReply)
				r2, err2 := conn.TryReadReply(testutil.ValuesReply)
				if err1 == nil && err2 == nil && string(r1) == "STORED\r\n" && string(r2) == "END\r\n" {
					// Each request takes the tree current when it
					// is routed: the set went to pool A, the get
					// that followed it to B. Once per client.
					if split.Add(1) <= 4 {
						continue
					}
				}
				if err1 != nil || err2 != nil || string(r1) != "STORED\r\n" || string(r2) != fmt.Sprintf("VALUE %s 0 1\r\nx\r\nEND\r\n", key) {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%q %q %v %v", r1, r2, err1, err2))
					return
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	replaceFile(t, path, twoPools(a, b, "B"))
	waitLog(t, p, "configuration reloaded")
	setVia(t, addr, "after")
	if !hit(t, b, "after") || hit(t, a, "after") {
		t.Fatal("after the reload, keys must go to pool B")
	}
	replaceFile(t, path, `{"pools": {"A": {"servers": ["`+a+`"]}}, "route": {"type": "FooRoute"}}`)
	waitLog(t, p, "configuration refused; the previous one keeps serving")
	if !strings.Contains(p.stderr.String(), `unknown type \"FooRoute\"`) {
		t.Errorf("the refusal must say why:\n%s", p.stderr)
	}
	setVia(t, addr, "refused")
	if !hit(t, b, "refused") {
		t.Fatal("after a refused file, the old tree must serve")
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d clients failed during the reload; first: %v", n, firstFailure.Load())
	}
	p.stop(t, syscall.SIGTERM)
}

// TestBinaryRouterDisableReload runs two routers on one file, one with
// --disable-reload-configs: once the other has loaded a change, the
// first still routes by the file it started with.
func TestBinaryRouterDisableReload(t *testing.T) {
	a, b := testutil.StartCorvid(t, server.Config{}), testutil.StartCorvid(t, server.Config{})
	fixed, path, fixedAddr := routerOn(t, twoPools(a, b, "A"), "--disable-reload-configs")
	ports := testutil.FreePorts(t, 1)
	watching := startRouterProc(t, "-f", path, "-p", strconv.Itoa(ports[0]), "--listen-addresses", "127.0.0.1")
	replaceFile(t, path, twoPools(a, b, "B"))
	waitLog(t, watching, "configuration reloaded")
	fixed.cmd.Process.Signal(syscall.SIGHUP)
	setVia(t, fixedAddr, "fixed")
	if !hit(t, a, "fixed") || hit(t, b, "fixed") {
		t.Errorf("with --disable-reload-configs the first tree must keep serving")
	}
	if strings.Contains(fixed.stderr.String(), "configuration reloaded") {
		t.Errorf("with --disable-reload-configs nothing is reloaded:\n%s", fixed.stderr)
	}
	fixed.stop(t, syscall.SIGTERM)
}

// TestBinaryRouterConfigStr serves an inline configuration: it works,
// and config_file answers mcrouter's error.
func TestBinaryRouterConfigStr(t *testing.T) {
	a, b := testutil.StartCorvid(t, server.Config{}), testutil.StartCorvid(t, server.Config{})
	port := strconv.Itoa(testutil.FreePorts(t, 1)[0])
	p := startRouterProc(t, "--config-str", twoPools(a, b, "B"), "-p", port, "--listen-addresses", "127.0.0.1")
	addr := "127.0.0.1:" + port
	setVia(t, addr, "inline")
	if !hit(t, b, "inline") {
		t.Errorf("the inline route must send keys to pool B")
	}
	want := "VALUE __mcrouter__.config_file 0 28\r\nERROR: no config file found!\r\nEND\r\n"
	if got := roundTrip(t, addr, "get __mcrouter__.config_file\r\n", "END"); got != want {
		t.Errorf("config_file: %q, want %q", got, want)
	}
	p.stop(t, syscall.SIGTERM)
}

// statValue returns the value of "STAT name" in addr's stats, or -1.
func statValue(t *testing.T, addr, name string) int64 {
	t.Helper()
	return routeCounter(t, addr, name)
}

// holders returns the example addresses of the servers that hold key.
func holders(t *testing.T, servers map[string]*server.Server, key string) []string {
	t.Helper()
	var out []string
	for name, s := range servers {
		if hit(t, addrOf(s), key) {
			out = append(out, name)
		}
	}
	return out
}

// TestBinaryRouterExamplePrefixPools: the longest prefix wins and other
// keys go to the wildcard's pool.
func TestBinaryRouterExamplePrefixPools(t *testing.T) {
	conf, servers := exampleServers(t, "mcrouter/prefix-pools.json")
	p, _, addr := routerOn(t, conf)
	pools := map[string][]string{
		"user:":     {"127.0.0.1:11311", "127.0.0.1:11312"},
		"session:":  {"127.0.0.1:11313"},
		"user:hot:": {"127.0.0.1:11314"},
		"":          {"127.0.0.1:11315", "127.0.0.1:11316"},
	}
	used := make(map[string]bool)
	for _, prefix := range []string{"user:", "session:", "user:hot:", ""} {
		for i := range 16 {
			key := fmt.Sprintf("%s%d", prefix, i)
			if prefix == "" {
				key = fmt.Sprintf("item:%d", i)
			}
			setVia(t, addr, key)
			h := holders(t, servers, key)
			if len(h) != 1 || !strings.Contains(strings.Join(pools[prefix], " "), h[0]) {
				t.Errorf("key %q is on %v, want one of %v", key, h, pools[prefix])
			}
			if len(h) == 1 {
				used[h[0]] = true
			}
		}
	}
	if len(used) != len(servers) {
		t.Errorf("keys used %d of the %d servers: %v", len(used), len(servers), used)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestBinaryRouterExampleFailover: with the primary pool's servers down,
// requests are served by the backup pool.
func TestBinaryRouterExampleFailover(t *testing.T) {
	conf, servers := exampleServers(t, "mcrouter/failover.json")
	p, _, addr := routerOn(t, conf)
	backup := addrOf(servers["127.0.0.1:11313"])
	setVia(t, addr, "up")
	if hit(t, backup, "up") {
		t.Fatal("with the primary pool up, the backup must not be used")
	}
	servers["127.0.0.1:11311"].Close()
	servers["127.0.0.1:11312"].Close()
	for i := range 8 {
		key := fmt.Sprintf("down%d", i)
		setVia(t, addr, key)
		if !hit(t, backup, key) {
			t.Errorf("%s: not in the backup pool", key)
		}
		if got := roundTrip(t, addr, "get "+key+"\r\n", "END"); got != fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(key), key) {
			t.Errorf("get %s with the primary down: %q", key, got)
		}
	}
	if n := routeCounter(t, addr, "route:route:failovers"); n < 16 {
		t.Errorf("route:route:failovers = %d, want at least 16", n)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestBinaryRouterExampleWarmUp: a key only the old pool holds is
// answered from it and added to the new pool with the route's exptime;
// sets go to the new pool only.
func TestBinaryRouterExampleWarmUp(t *testing.T) {
	conf, servers := exampleServers(t, "mcrouter/warm-up.json")
	p, _, addr := routerOn(t, conf)
	old := []string{"127.0.0.1:11311", "127.0.0.1:11312"}
	for _, o := range old {
		setVia(t, addrOf(servers[o]), "warm")
	}
	if got := roundTrip(t, addr, "get warm\r\n", "END"); got != "VALUE warm 0 4\r\nwarm\r\nEND\r\n" {
		t.Fatalf("get warm: %q", got)
	}
	var cold string
	testutil.WaitFor(t, func() bool {
		for _, n := range []string{"127.0.0.1:11321", "127.0.0.1:11322", "127.0.0.1:11323"} {
			if hit(t, addrOf(servers[n]), "warm") {
				cold = n
				return true
			}
		}
		return false
	})
	// A second may pass between the add and this look.
	ttl := roundTrip(t, addrOf(servers[cold]), "mg warm t\r\nmn\r\n", "MN")
	if ttl != "HD t3600\r\nMN\r\n" && ttl != "HD t3599\r\nMN\r\n" {
		t.Errorf("the warm-up add must carry exptime 3600: %q", ttl)
	}
	if n := routeCounter(t, addr, "route:route:warmup_fills"); n != 1 {
		t.Errorf("route:route:warmup_fills = %d, want 1", n)
	}
	setVia(t, addr, "fresh")
	for _, o := range old {
		if hit(t, addrOf(servers[o]), "fresh") {
			t.Errorf("a set must not reach the old pool (%s)", o)
		}
	}
	p.stop(t, syscall.SIGTERM)
}

// TestBinaryRouterExampleReplicated: writes reach both pools, a get that
// misses in the first is answered by the second.
func TestBinaryRouterExampleReplicated(t *testing.T) {
	conf, servers := exampleServers(t, "mcrouter/replicated.json")
	p, _, addr := routerOn(t, conf)
	east := []string{"127.0.0.1:11311", "127.0.0.1:11312"}
	for i := range 8 {
		key := fmt.Sprintf("r%d", i)
		setVia(t, addr, key)
		h := holders(t, servers, key)
		if len(h) != 2 || !strings.HasPrefix(h[0], "127.0.0.1:113") {
			t.Fatalf("%s is on %v, want one server of each pool", key, h)
		}
		for _, e := range east {
			roundTrip(t, addrOf(servers[e]), "delete "+key+"\r\nmn\r\n", "MN")
		}
		if got := roundTrip(t, addr, "get "+key+"\r\n", "END"); got != fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(key), key) {
			t.Errorf("get %s missing in east: %q", key, got)
		}
		if got := roundTrip(t, addr, "delete "+key+"\r\n", "NOT_FOUND"); got != "NOT_FOUND\r\n" {
			t.Errorf("delete %s (gone from east): %q, want the worse reply NOT_FOUND", key, got)
		}
		if h := holders(t, servers, key); len(h) != 0 {
			t.Errorf("%s still on %v after delete", key, h)
		}
	}
	if n := routeCounter(t, addr, "route:route.operation_policies.get:failovers"); n != 8 {
		t.Errorf("route:route.operation_policies.get:failovers = %d, want 8", n)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestBinaryRouterExampleShadow: about 10% of keys, always the same ones,
// are copied to the test pool.
func TestBinaryRouterExampleShadow(t *testing.T) {
	conf, servers := exampleServers(t, "mcrouter/shadow.json")
	p, _, addr := routerOn(t, conf)
	test := addrOf(servers["127.0.0.1:11331"])
	const n = 1000
	var req strings.Builder
	for i := range n {
		fmt.Fprintf(&req, "set s%d 0 0 1 noreply\r\nx\r\n", i)
	}
	req.WriteString("version\r\n")
	for round := 1; round <= 2; round++ {
		roundTrip(t, addr, req.String(), "VERSION "+"1.6.18")
		var sent int64
		testutil.WaitFor(t, func() bool {
			sent = routeCounter(t, addr, "route:route:shadow_sent")
			return statValue(t, test, "cmd_set") == sent && routeCounter(t, addr, "route:route:async_pending") == 0
		})
		if round == 1 && (sent < n/20 || sent > n*3/20) {
			t.Errorf("%d of %d keys shadowed, want about 10%%", sent, n)
		}
		if items := statValue(t, test, "curr_items"); items*int64(round) != sent {
			t.Errorf("round %d: %d keys in the test pool, %d shadowed: the same keys must be shadowed every time", round, items, sent)
		}
	}
	p.stop(t, syscall.SIGTERM)
}

package loadgen_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/loadgen"
	"github.com/corvidcache/corvid/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// servers returns the servers a suite runs against: corvid in-process and
// memcached when installed.
func servers(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"corvid":    func(t *testing.T) string { return testutil.StartCorvid(t, server.Config{}) },
		"memcached": func(t *testing.T) string { return testutil.StartMemcached(t, "-m", "64") },
	}
}

// stats returns the server's general stats.
func stats(t *testing.T, addr string) map[string]int64 {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte("stats\r\n"))
	out := map[string]int64{}
	for _, line := range strings.Split(string(c.ReadReply(testutil.StatsReply)), "\r\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "STAT" {
			if n, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				out[f[1]] = n
			}
		}
	}
	return out
}

// TestCountsAddUp checks the generator's counts against the server's own.
func TestCountsAddUp(t *testing.T) {
	for name, start := range servers(t) {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			cfg := loadgen.Config{
				Servers: []string{addr}, Conns: 3, Pipeline: 4, MultiGet: 3,
				GetWeight: 1, SetWeight: 1, Keys: 500, ValueMin: 10, ValueMax: 300,
				Requests: 2000, Prefill: true, Zipf: 0.9,
			}
			before := stats(t, addr)
			res, err := loadgen.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// A server may add a connection's counters to its totals just
			// after the reply went out: poll until they have arrived.
			var after map[string]int64
			diff := func(name string) int64 { return after[name] - before[name] }
			deadline := time.Now().Add(10 * time.Second)
			for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
				after = stats(t, addr)
				arrived := diff("cmd_get") >= res.GetKeys && diff("cmd_set") >= int64(cfg.Keys)+res.Sets
				if arrived || time.Now().After(deadline) {
					break // the checks below report what is missing
				}
				time.Sleep(delay)
			}
			if res.Requests != 2000 || res.Gets+res.Sets != res.Requests {
				t.Errorf("requests %d = gets %d + sets %d, want 2000", res.Requests, res.Gets, res.Sets)
			}
			if res.Gets == 0 || res.Sets == 0 {
				t.Errorf("1:1 mix gave %d gets and %d sets", res.Gets, res.Sets)
			}
			if res.GetKeys != 3*res.Gets || res.Hits+res.Misses != res.GetKeys {
				t.Errorf("get keys %d (gets %d x 3), hits %d + misses %d", res.GetKeys, res.Gets, res.Hits, res.Misses)
			}
			if res.Misses != 0 || res.Errors != 0 {
				t.Errorf("prefilled run: %d misses, %d errors", res.Misses, res.Errors)
			}
			if got, want := diff("cmd_set"), int64(cfg.Keys)+res.Sets; got != want {
				t.Errorf("server counted %d sets, want %d prefill + %d", got, cfg.Keys, res.Sets)
			}
			if got := diff("get_hits"); got != res.Hits {
				t.Errorf("server counted %d hits, generator %d", got, res.Hits)
			}
			if got := diff("cmd_get"); got != res.GetKeys {
				t.Errorf("server counted %d keys fetched, generator %d", got, res.GetKeys)
			}
			if res.Histogram.Count() != uint64(res.Requests) {
				t.Errorf("histogram holds %d latencies for %d requests", res.Histogram.Count(), res.Requests)
			}
			if l := res.Latency; !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Min > 0) {
				t.Errorf("latency percentiles out of order: %+v", l)
			}
		})
	}
}

// TestMisses runs gets on an empty key space: every key misses.
func TestMisses(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Servers: []string{addr}, Conns: 2, MultiGet: 5, GetWeight: 1, Requests: 300,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sets != 0 || res.Gets != 300 || res.Hits != 0 || res.Misses != 1500 || res.HitRatio != 0 {
		t.Errorf("got %d gets, %d sets, %d hits, %d misses; want 300, 0, 0, 1500", res.Gets, res.Sets, res.Hits, res.Misses)
	}
}

func TestMetaProtocol(t *testing.T) {
	addr := testutil.StartMemcached(t, "-m", "64")
	for _, multi := range []int{1, 4} {
		res, err := loadgen.Run(context.Background(), loadgen.Config{
			Servers: []string{addr}, Protocol: loadgen.Meta, Conns: 2, Pipeline: 8,
			MultiGet: multi, GetWeight: 3, SetWeight: 1, Keys: 200, Requests: 1000, Prefill: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 1000 || res.Misses != 0 || res.Hits != res.GetKeys || res.Errors != 0 {
			t.Errorf("multiget %d: %d requests, %d hits of %d keys, %d errors", multi, res.Requests, res.Hits, res.GetKeys, res.Errors)
		}
	}
}

// TestMetaRefused: a server without the meta protocol is reported, not
// waited on.
func TestMetaRefused(t *testing.T) {
	addr := fakeServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			c.Write([]byte("ERROR\r\n"))
		}
	})
	_, err := loadgen.Run(context.Background(), loadgen.Config{Servers: []string{addr}, Protocol: loadgen.Meta, Requests: 10})
	if !errors.Is(err, loadgen.ErrNoMeta) {
		t.Fatalf("err = %v, want ErrNoMeta", err)
	}
}

// fakeServer serves each connection with handle until the test ends.
func fakeServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestPipelineKeepsDepth: a server that answers only when depth requests
// are outstanding sees exactly depth in flight, never more. Should the
// generator keep fewer in flight, the server answers after a quiet spell
// instead, and the depth it saw is too small.
func TestPipelineKeepsDepth(t *testing.T) {
	const depth, total = 16, 400
	var mu sync.Mutex
	var maxSeen int
	addr := fakeServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		lines := make(chan bool)
		go func() {
			defer close(lines)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				lines <- true
			}
		}()
		outstanding := 0
		reply := func() bool {
			_, err := c.Write([]byte("END\r\n"))
			outstanding--
			return err == nil
		}
		for {
			select {
			case _, ok := <-lines:
				if !ok {
					return
				}
				outstanding++
				mu.Lock()
				maxSeen = max(maxSeen, outstanding)
				mu.Unlock()
				if outstanding == depth {
					if !reply() {
						return
					}
				}
			case <-time.After(100 * time.Millisecond):
				// The run is ending (or the generator is not
				// pipelining): answer what is left.
				for outstanding > 0 {
					if !reply() {
						return
					}
				}
			}
		}
	})
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Servers: []string{addr}, Conns: 1, Pipeline: depth, GetWeight: 1, Requests: total,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxSeen != depth {
		t.Errorf("server saw at most %d requests outstanding, want %d", maxSeen, depth)
	}
	if res.MaxInFlight != depth || res.Requests != total {
		t.Errorf("generator: max in flight %d, requests %d; want %d, %d", res.MaxInFlight, res.Requests, depth, total)
	}
	if res.Histogram.Count() != total {
		t.Errorf("latencies %d, want %d", res.Histogram.Count(), total)
	}
}

func TestIdleConnections(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	before := stats(t, addr)["total_connections"]
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Servers: []string{addr}, Conns: 2, Idle: 50, Requests: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := stats(t, addr)["total_connections"] - before; got != 52+1 { // +1: this stats connection
		t.Errorf("server accepted %d connections, want 50 idle + 2 busy + 1", got)
	}
	if res.Idle != 50 || res.Requests != 100 {
		t.Errorf("idle %d, requests %d", res.Idle, res.Requests)
	}
}

func TestSeveralServersAndProgress(t *testing.T) {
	a := testutil.StartCorvid(t, server.Config{})
	b := testutil.StartCorvid(t, server.Config{})
	var progress bytes.Buffer
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Servers: []string{a, b}, Conns: 4, Keys: 100, Prefill: true, Requests: 400, GetWeight: 1,
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hits != 400 {
		t.Errorf("hits %d of 400: prefill must reach both servers", res.Hits)
	}
	for _, addr := range []string{a, b} {
		if n := stats(t, addr)["curr_items"]; n != 100 {
			t.Errorf("%s holds %d items, want 100", addr, n)
		}
	}
}

func TestCancel(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := loadgen.Run(ctx, loadgen.Config{Servers: []string{addr}, Duration: time.Hour}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestServerDown(t *testing.T) {
	addr := testutil.RefusedAddr(t)
	if _, err := loadgen.Run(context.Background(), loadgen.Config{Servers: []string{addr}, Requests: 1}); err == nil {
		t.Error("run against a closed port succeeded")
	}
}

func TestValidate(t *testing.T) {
	ok := loadgen.Config{Servers: []string{"127.0.0.1:11211"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mod := range map[string]func(*loadgen.Config){
		"no server":       func(c *loadgen.Config) { c.Servers = nil },
		"server no port":  func(c *loadgen.Config) { c.Servers = []string{"localhost"} },
		"conns":           func(c *loadgen.Config) { c.Conns = -1 },
		"idle":            func(c *loadgen.Config) { c.Idle = -1 },
		"pipeline":        func(c *loadgen.Config) { c.Pipeline = -2 },
		"pipeline huge":   func(c *loadgen.Config) { c.Pipeline = 1 << 20 },
		"multiget":        func(c *loadgen.Config) { c.MultiGet = 5000 },
		"ratio":           func(c *loadgen.Config) { c.GetWeight = -1 },
		"keys":            func(c *loadgen.Config) { c.Keys = -5 },
		"zipf 1":          func(c *loadgen.Config) { c.Zipf = 1 },
		"zipf negative":   func(c *loadgen.Config) { c.Zipf = -0.5 },
		"values":          func(c *loadgen.Config) { c.ValueMin, c.ValueMax = 10, 5 },
		"protocol":        func(c *loadgen.Config) { c.Protocol = "binary" },
		"duration":        func(c *loadgen.Config) { c.Duration = -time.Second },
		"prefix space":    func(c *loadgen.Config) { c.KeyPrefix = "a b" },
		"prefix too long": func(c *loadgen.Config) { c.KeyPrefix = strings.Repeat("k", 250) },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); !errors.Is(err, loadgen.ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in       string
		get, set int
		ok       bool
	}{
		{"9:1", 9, 1, true}, {"1:0", 1, 0, true}, {"0:1", 0, 1, true},
		{"0:0", 0, 0, false}, {"9", 0, 0, false}, {"a:1", 0, 0, false}, {"-1:2", 0, 0, false},
	} {
		g, s, err := loadgen.ParseRatio(tc.in)
		if (err == nil) != tc.ok || g != tc.get || s != tc.set {
			t.Errorf("ParseRatio(%q) = %d, %d, %v", tc.in, g, s, err)
		}
	}
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"100", 100, 100, true}, {"10-2000", 10, 2000, true},
		{"20-10", 0, 0, false}, {"x", 0, 0, false}, {"-5", 0, 0, false}, {"1-", 0, 0, false},
	} {
		lo, hi, err := loadgen.ParseSize(tc.in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("ParseSize(%q) = %d, %d, %v", tc.in, lo, hi, err)
		}
	}
}

// TestWarmupNotCounted: requests of the warm-up reach the server but not
// the result, and a duration-bound run measures something.
func TestWarmupNotCounted(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	before := stats(t, addr)["cmd_get"]
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Servers: []string{addr}, Conns: 2, GetWeight: 1, Warmup: 100 * time.Millisecond, Requests: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || res.Histogram.Count() != 100 {
		t.Errorf("measured %d requests, %d latencies; want 100", res.Requests, res.Histogram.Count())
	}
	// The server may count a connection's gets just after replying.
	testutil.WaitFor(t, func() bool { return stats(t, addr)["cmd_get"]-before >= 100 })
	res, err = loadgen.Run(context.Background(), loadgen.Config{
		Servers: []string{addr}, Conns: 2, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Seconds <= 0 || res.Requests != res.Gets+res.Sets {
		t.Errorf("duration run: %d requests (%d gets, %d sets) in %g s", res.Requests, res.Gets, res.Sets, res.Seconds)
	}
}

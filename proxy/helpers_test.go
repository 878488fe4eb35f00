package proxy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

func TestMain(m *testing.M) {
	// CORVID_TEST_PROXY_LOOP=1 runs every test with Config.EventLoop.
	testEventLoop = os.Getenv("CORVID_TEST_PROXY_LOOP") == "1"
	goleak.VerifyTestMain(m)
}

// startCorvids starts n in-process corvid servers and returns their
// addresses.
func startCorvids(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = testutil.StartCorvid(t, server.Config{})
	}
	return addrs
}

// poolYAML returns a nutcracker.yml with one pool "alpha" listening on
// listen, with extra directives (one per line, without indentation) and
// the servers at addrs.
func poolYAML(listen string, addrs []string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "alpha:\n  listen: %s\n", listen)
	for _, e := range extra {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	b.WriteString("  servers:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "   - %s:1\n", a)
	}
	return b.String()
}

// startProxy starts a proxy with the configuration text conf and returns
// it; it is closed when the test ends.
func startProxy(t *testing.T, conf string) *Proxy {
	t.Helper()
	return startProxyB(t, conf)
}

// startProxyB is startProxy for tests and benchmarks.
func startProxyB(t testing.TB, conf string) *Proxy {
	t.Helper()
	return serveProxy(t, Config{}, conf)
}

// runProxy serves p until the test ends, then checks that Serve
// returned, without error, within 10 s.
func runProxy(t testing.TB, p *Proxy) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return within 10s")
		}
	})
}

// serveProxy starts a proxy with cfg and the pools of the nutcracker.yml
// text conf, serving until the test ends.
func serveProxy(t testing.TB, cfg Config, conf string) *Proxy {
	t.Helper()
	pc, err := nutcracker.Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pools = pc
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runProxy(t, p)
	return p
}

// proxyFor starts a proxy with one pool "alpha" in front of addrs and
// returns its address.
func proxyFor(t *testing.T, addrs []string, extra ...string) (*Proxy, string) {
	t.Helper()
	p := startProxy(t, poolYAML("127.0.0.1:0", addrs, extra...))
	return p, p.Addrs()["alpha"].String()
}

// roundTrip sends req on c and reads one reply of kind.
func roundTrip(c *testutil.Conn, req string, kind testutil.ReplyKind) string {
	c.Send([]byte(req))
	return string(c.ReadReply(kind))
}

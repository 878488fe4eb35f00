package admin_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/proxy"
	"github.com/corvidcache/corvid/server"
)

// proxyLoad runs clients through the proxy at addr until the test ends:
// a set and a get at a time over a hundred keys, paced. Error replies (a
// key on a server not yet ejected) are read like any other.
func proxyLoad(t *testing.T, addr string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer nc.Close()
			rd := bufio.NewReader(nc)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 5e6; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				k := fmt.Sprintf("key:%d", (i*2+g)%100)
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := fmt.Fprintf(nc, "set %s 0 0 5\r\nhello\r\nget %s\r\n", k, k); err != nil {
					return
				}
				if _, err := rd.ReadString('\n'); err != nil { // the set's reply
					return
				}
				for { // the get's: VALUE and data lines, until END or an error
					line, err := rd.ReadString('\n')
					if err != nil {
						return
					}
					if line == "END\r\n" || strings.Contains(line, "ERROR") {
						break
					}
				}
			}
		}()
	}
}

// TestProxyDashboardInBrowser starts a proxy pool of two servers, one of
// them down and ejected, under load, opens the proxy's dashboard in
// headless Chromium and checks, in the page's DOM after its scripts ran,
// that every chart has data points and that the servers table shows one
// server up and one ejected, with the ejection counted.
func TestProxyDashboardInBrowser(t *testing.T) {
	bin := chromium(t)
	up := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}}).Addrs()[0].String()
	down := testutil.RefusedAddr(t)
	// md5, not the default fnv1a_64: twemproxy's fnv1a_64 puts keys that
	// differ only at the end (key:0 .. key:99) next to each other on the
	// continuum, often all on one server, and the down one would never be
	// asked.
	pc, err := nutcracker.Parse([]byte(fmt.Sprintf(`alpha:
  listen: 127.0.0.1:0
  hash: md5
  timeout: 1000
  auto_eject_hosts: true
  server_failure_limit: 1
  server_retry_timeout: 600000
  servers:
   - %s:1
   - %s:1
`, up, down)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{Pools: pc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	defer func() { cancel(); p.Close(); <-served }()
	as, err := admin.Listen("127.0.0.1:0", admin.Config{
		Dashboard:      admin.TwemproxyDashboard("corvid proxy test", p.Stats),
		SampleInterval: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	proxyLoad(t, p.Addrs()["alpha"].String())
	// Wait until the down server is ejected and the live one has
	// traffic.
	testutil.WaitFor(t, func() bool {
		var ejected bool
		var requests int64
		for _, pool := range p.Stats().Pools {
			for _, s := range pool.Servers {
				ejected = ejected || s.Ejected
				requests += s.Requests
			}
		}
		return ejected && requests > 50
	})
	url := "http://" + as.Addr().String() + "/"
	want := []*regexp.Regexp{
		regexp.MustCompile(`id="chart-ops" data-points="([1-9][0-9]+)"`),
		regexp.MustCompile(`id="chart-errors" data-points="([1-9][0-9]*)"`),
		regexp.MustCompile(`id="chart-conns" data-points="([1-9][0-9]+)"`),
		regexp.MustCompile(`id="chart-health" data-points="([1-9][0-9]+)"`),
		regexp.MustCompile(`id="chart-net" data-points="([1-9][0-9]*)"`),
		regexp.MustCompile(`<i style="background:#2563eb"></i>requests [1-9][0-9.]*[kM]?</span>`),
		regexp.MustCompile(`<i style="background:#2563eb"></i>up 1</span>`),
		regexp.MustCompile(`></i>ejected 1</span>`),
		regexp.MustCompile(`id="table-servers" data-rows="2"`),
		regexp.MustCompile(`<td class="text">` + regexp.QuoteMeta(up) + `</td><td class="good">up</td><td class="text">never</td>`),
		regexp.MustCompile(`<td class="text">` + regexp.QuoteMeta(down) + `</td><td class="bad">ejected</td><td class="text">[0-9:]{8}</td>`),
		regexp.MustCompile(`id="table-pools" data-rows="1"`),
	}
	deadline := time.Now().Add(60 * time.Second)
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url).Output()
		cancel()
		dom := string(out)
		var missing []string
		for _, re := range want {
			if !re.MatchString(dom) {
				missing = append(missing, re.String())
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) || attempt >= 5 {
			for _, m := range missing {
				t.Errorf("the page has no %s", m)
			}
			t.Fatalf("chromium: %v; the page:\n%.6000s", err, dom)
		}
	}
}

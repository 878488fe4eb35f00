package admin_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

var screenshot = flag.String("screenshot", "", "write a screenshot of the dashboard under load to this PNG file (e.g. ../docs/dashboard.png)")

// chromium returns the path of a headless-capable Chromium, or skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium installed (apt-get install chromium)")
	return ""
}

// load runs clients against addr until the test ends: sets and gets over
// a thousand keys, the hottest few most often, and misses.
func load(t *testing.T, addr string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer nc.Close()
			buf := make([]byte, 64<<10)
			// Paced, about 4000 requests a second each, so as not to
			// starve the tests of other packages running beside it.
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 5e6; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				var req []byte
				for j := range 20 {
					k := (i*20 + j + g*7) % 1000
					switch {
					case j%5 == 0:
						req = fmt.Appendf(req, "set key:%d 0 0 %d\r\n%0*d\r\n", k, 10+k%300, 10+k%300, 0)
					case j%3 == 0:
						req = fmt.Appendf(req, "get hot:%d\r\n", j%4)
					case j%7 == 0:
						req = fmt.Appendf(req, "get missing:%d\r\n", k)
					default:
						req = fmt.Appendf(req, "get key:%d\r\n", k)
					}
				}
				req = append(req, "mn\r\n"...)
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := nc.Write(req); err != nil {
					return
				}
				// Read until the no-op's reply ends the batch.
				var got []byte
				for !endsWith(got, "MN\r\n") {
					n, err := nc.Read(buf)
					if err != nil {
						return
					}
					got = append(got[max(0, len(got)-8):], buf[:n]...)
				}
			}
		}()
	}
}

func endsWith(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[len(b)-len(s):]) == s
}

// TestDashboardInBrowser starts a server under load with its admin port,
// opens the dashboard in headless Chromium and checks, in the page's DOM
// after its scripts ran, that every chart has data points, that gets and
// hit ratio are non-zero, and that the slab class and hot key tables have
// rows.
func TestDashboardInBrowser(t *testing.T) {
	bin := chromium(t)
	srv := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	addr := srv.Addrs()[0].String()
	for i := range 4 {
		c := testutil.Dial(t, addr)
		c.Send(fmt.Appendf(nil, "set hot:%d 0 0 5\r\nhello\r\n", i))
		c.ReadReply(testutil.LineReply)
		c.Close()
	}
	as, err := admin.Listen("127.0.0.1:0", admin.Config{
		Collectors:     nil,
		Dashboard:      admin.MemcachedDashboard("corvid server "+addr, srv.Stats),
		SampleInterval: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	load(t, addr)
	url := "http://" + as.Addr().String() + "/"
	// Wait until the history has a few points with traffic in them.
	testutil.WaitFor(t, func() bool {
		var gets string
		srv.Stats("", func(n, v string) {
			if n == "cmd_get" {
				gets = v
			}
		})
		n, _ := strconv.Atoi(gets)
		return n > 2000
	})
	dom := ""
	deadline := time.Now().Add(60 * time.Second)
	want := []*regexp.Regexp{
		regexp.MustCompile(`id="chart-ops" data-points="([1-9][0-9]+)"`),
		regexp.MustCompile(`id="chart-hits" data-points="([1-9][0-9]*)"`),
		regexp.MustCompile(`id="chart-memory" data-points="([1-9][0-9]+)"`),
		regexp.MustCompile(`id="chart-evictions" data-points="([1-9][0-9]*)"`),
		regexp.MustCompile(`id="chart-conns" data-points="([1-9][0-9]+)"`),
		regexp.MustCompile(`id="table-slabs" data-rows="[1-9][0-9]*"`),
		regexp.MustCompile(`id="table-hotkeys" data-rows="[1-9][0-9]*"`),
		regexp.MustCompile(`<i style="background:#2563eb"></i>get [1-9][0-9.]*[kM]?</span>`),
		regexp.MustCompile(`<i style="background:#2563eb"></i>hits [1-9][0-9.]*</span>`),
		regexp.MustCompile(`<td class="text">hot:[0-3]</td>`),
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url).Output()
		cancel()
		dom = string(out)
		missing := 0
		for _, re := range want {
			if !re.MatchString(dom) {
				missing++
				if time.Now().After(deadline) || attempt >= 5 {
					t.Errorf("the page has no %s", re)
				}
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) || attempt >= 5 {
			t.Fatalf("chromium: %v; the page:\n%.4000s", err, dom)
		}
	}
	if *screenshot != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
			"--user-data-dir="+t.TempDir(), "--window-size=1280,1240", "--virtual-time-budget=3000",
			"--screenshot="+*screenshot, url).CombinedOutput()
		if _, serr := os.Stat(*screenshot); err != nil || serr != nil {
			t.Fatalf("screenshot: %v %v\n%s", err, serr, out)
		}
	}
}

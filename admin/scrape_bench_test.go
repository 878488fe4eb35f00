package admin_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// BenchmarkGetScraped measures get hits over loopback (parallel clients,
// one request in flight each) with the admin port idle and with /metrics
// and /api/stats fetched ten times a second, with the dashboard sampling
// once a second in both: scraping must cost the data path nothing
// measurable. Compare ns/op of the two, e.g. with
//
//	go test -run '^$' -bench GetScraped -count 6 -cpu 2 ./admin
func BenchmarkGetScraped(b *testing.B) {
	for _, hz := range []int{0, 10} {
		b.Run(fmt.Sprintf("scrape=%dHz", hz), func(b *testing.B) {
			srv := testutil.ServeCorvid(b, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
			addr := srv.Addrs()[0].String()
			c := testutil.Dial(b, addr)
			for i := range 100 {
				c.Send(fmt.Appendf(nil, "set key:%d 0 0 32\r\n%032d\r\n", i, i))
				c.ReadReply(testutil.LineReply)
			}
			c.Close()
			as, err := admin.Listen("127.0.0.1:0", admin.Config{
				Collectors: []prometheus.Collector{admin.NewMemcachedCollector(srv.Stats)},
				Dashboard:  admin.MemcachedDashboard("bench", srv.Stats),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer as.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if hz > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t := time.NewTicker(time.Second / time.Duration(hz))
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						for _, p := range []string{"/metrics", "/api/stats"} {
							if resp, err := http.Get("http://" + as.Addr().String() + p); err == nil {
								io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
							}
						}
					}
				}()
			}
			b.SetParallelism(2)
			b.ResetTimer()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer nc.Close()
				rd := bufio.NewReader(nc)
				for i := 0; pb.Next(); i++ {
					fmt.Fprintf(nc, "get key:%d\r\n", i%100)
					for {
						line, err := rd.ReadSlice('\n')
						if err != nil {
							b.Error(err)
							return
						}
						if string(line) == "END\r\n" {
							break
						}
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpu)
			close(stop)
			wg.Wait()
		})
	}
}

// BenchmarkScrape is the cost of one scrape of /metrics (as served, the
// page rendered at most once a second; and "metrics-render", rendered on
// every scrape), and of one read of /api/stats with a full history, over
// HTTP on loopback, of a server with items in a dozen slab classes. A
// render costs ~3.5 ms of CPU and ~12,450 allocations; served from the
// page kept for a second, a scrape costs ~0.3 ms and ~100 allocations,
// most of them this benchmark's HTTP client's.
func BenchmarkScrape(b *testing.B) {
	srv := testutil.ServeCorvid(b, server.Config{TCPAddrs: []string{"127.0.0.1:0"}})
	c := testutil.Dial(b, srv.Addrs()[0].String())
	for i := range 1000 {
		n := 10 + i*i%4000
		c.Send(fmt.Appendf(nil, "set key:%d 0 0 %d\r\n%0*d\r\n", i, n, n, 0))
		c.ReadReply(testutil.LineReply)
	}
	c.Close()
	// One port as in production, for /metrics; one sampling every
	// millisecond to fill its history, for /api/stats (its sampling then
	// weighs on the figure too).
	fetch := func(as *admin.Server, p string) []byte {
		resp, err := http.Get("http://" + as.Addr().String() + p)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return body
	}
	for _, bc := range []struct {
		name, path string
		maxAge     time.Duration
	}{
		{"metrics", "/metrics", 0},
		{"metrics-render", "/metrics", -1},
		{"api/stats", "/api/stats", 0},
	} {
		p := bc.path
		b.Run(bc.name, func(b *testing.B) {
			interval := time.Second
			if p == "/api/stats" {
				interval = time.Millisecond
			}
			as, err := admin.Listen("127.0.0.1:0", admin.Config{
				Collectors:     []prometheus.Collector{admin.NewMemcachedCollector(srv.Stats)},
				Dashboard:      admin.MemcachedDashboard("bench", srv.Stats),
				SampleInterval: interval,
				MetricsMaxAge:  bc.maxAge,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer as.Close()
			if p == "/api/stats" {
				// Wait for the history to fill: 300 points of 13 lines.
				testutil.WaitFor(b, func() bool { return bytes.Count(fetch(as, p), []byte(",")) > 300*13 })
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				fetch(as, p)
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the CPU time used since start per operation.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

package admin

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// countingCollector emits one gauge: how many times it was collected.
type countingCollector struct {
	n    atomic.Int64
	desc *prometheus.Desc
}

func (c *countingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.n.Add(1)))
}

// TestMetricsPageIsKept checks that scrapes within MetricsMaxAge are
// served one rendered page (one collection, whatever the scrape rate),
// in the format each scraper asks for, and that a negative age renders
// every scrape.
func TestMetricsPageIsKept(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		collect int64
	}{
		{"kept", time.Hour, 1},
		{"fresh", -1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &countingCollector{desc: prometheus.NewDesc("corvid_test_collections", "Collections.", nil, nil)}
			s, err := Listen("127.0.0.1:0", Config{Collectors: []prometheus.Collector{c}, MetricsMaxAge: tc.maxAge})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			url := "http://" + s.Addr().String() + "/metrics"
			for i := range 3 {
				code, body := get(t, url)
				if code != http.StatusOK || !strings.Contains(string(body), "\ngo_goroutines ") ||
					!strings.Contains(string(body), "# TYPE corvid_test_collections gauge\ncorvid_test_collections ") {
					t.Fatalf("scrape %d: %d\n%.2000s", i, code, body)
				}
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
				t.Errorf("protobuf scrape: Content-Type %q", ct)
			}
			if n := c.n.Load(); n != tc.collect {
				t.Errorf("4 scrapes collected %d times, want %d", n, tc.collect)
			}
		})
	}
}

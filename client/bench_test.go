package client

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// benchServers starts three real memcached when installed, else three
// corvid servers.
func benchServers(b *testing.B) []string {
	var addrs []string
	for range 3 {
		if testutil.MemcachedPath() != "" {
			addrs = append(addrs, testutil.StartMemcached(b, "-m", "64", "-t", "1"))
		} else {
			addrs = append(addrs, testutil.StartCorvid(b, server.Config{}))
		}
	}
	return addrs
}

// BenchmarkGetMulti fetches 100 keys of 100 bytes spread over three
// servers, with this client and with gomemcache on the same servers.
func BenchmarkGetMulti(b *testing.B) {
	addrs := benchServers(b)
	ctx := context.Background()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench:key:%d", i)
	}
	value := []byte(strings.Repeat("v", 100))

	b.Run("corvid", func(b *testing.B) {
		c := newClient(b, addrs, nil)
		for _, k := range keys {
			if err := c.Set(ctx, &Item{Key: k, Value: value}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			m, err := c.GetMulti(ctx, keys)
			if err != nil || len(m) != len(keys) {
				b.Fatalf("%d items, %v", len(m), err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("gomemcache", func(b *testing.B) {
		mc := memcache.New(addrs...)
		mc.MaxIdleConns = DefaultMaxIdleConns
		for _, k := range keys {
			if err := mc.Set(&memcache.Item{Key: k, Value: value}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			m, err := mc.GetMulti(keys)
			if err != nil || len(m) != len(keys) {
				b.Fatalf("%d items, %v", len(m), err)
			}
		}
		reportCPU(b, cpu)
		mc.Close()
	})
}

// reportCPU reports the client's CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

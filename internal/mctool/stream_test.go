package mctool

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fillMany stores n small items "key<i>" with quiet meta sets.
func fillMany(t *testing.T, c *Conn, n int) {
	t.Helper()
	const batch = 5000
	for i := 0; i < n; {
		var req strings.Builder
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			req.WriteString("ms key" + strconv.Itoa(i) + " 1 q\r\nv\r\n")
		}
		req.WriteString("mn\r\n")
		if got := do(t, c, req.String(), 1); got[0] != "MN" {
			t.Fatalf("quiet sets: %q", got)
		}
	}
}

// A Walk holds at most a batch of keys whatever the cache holds: the live
// heap while records are coming stays far below what the keys of the
// whole cache would take.
func TestWalkMemoryBounded(t *testing.T) {
	servers(t, func(t *testing.T, start func() string) {
		c := dial(t, start())
		const n = 100000
		fillMany(t, c, n)
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		before := m.HeapAlloc
		var peak uint64
		seen := 0
		ws, err := c.Walk(0, func(r Record) error {
			seen++
			if seen%(n/4) == 0 {
				runtime.GC()
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// memcached's crawler can miss a few items its LRU maintainer
		// is moving.
		if ws.Records != seen || seen < n-n/100 {
			t.Fatalf("walk saw %d records (%+v), want %d", seen, ws, n)
		}
		// The keys alone take 100 bytes each with their KeyInfo: a Walk
		// that collected them would hold 10 MB or more.
		if peak > before && peak-before > 3<<20 {
			t.Errorf("the live heap grew by %d KB during a walk of %d keys", (peak-before)>>10, n)
		}
	})
}

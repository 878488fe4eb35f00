package server

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// longGetLine is a get line of nearly MaxGetLineLen bytes: half a million
// one-byte keys that all miss.
func longGetLine() string {
	return "get" + strings.Repeat(" a", (1<<20-64)/2) + "\r\n"
}

// TestLongGetLineAllocates checks that a get line costs no memory beyond
// the read buffer that holds it: its keys were parsed into an array of 24
// bytes per key (12 MB for this line) before the first lookup.
func TestLongGetLineAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("a line of half a million keys takes seconds under the race detector, and it counts allocations of its own")
	}
	_, addr := start(t, Config{})
	c := dial(t, "tcp", addr)
	line := []byte(longGetLine())
	get := func() {
		if _, err := c.nc.Write(line); err != nil {
			t.Fatal(err)
		}
		if l := c.line(); l != "END" {
			t.Fatalf("got %q", l)
		}
	}
	get() // the read buffer has grown once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const lines = 4
	for range lines {
		get()
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("%d get lines of %d keys allocated %d MB", lines, (len(line)-5)/2, n>>20)
	}
}

// TestLongGetLinesYield checks that get lines of half a million keys do
// not hold up the other connections of their event loop: the loop serves
// them between batches of keys. (Served whole, each line held the loop
// for 50-100 ms, and most answers waited for one.) It does not run under
// the race detector, which slows the lines several times, past the
// probes' timeouts on a busy machine.
func TestLongGetLinesYield(t *testing.T) {
	if raceEnabled {
		t.Skip("latency is not measured under the race detector")
	}
	_, addr := start(t, Config{EventLoops: 1})
	line := longGetLine()
	prober := dial(t, "tcp", addr)
	prober.expect("version\r\n", "VERSION "+Version)

	const attackers, lines = 2, 3
	var wg sync.WaitGroup
	errs := make(chan error, attackers)
	done := make(chan struct{})
	for range attackers {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(2 * time.Minute))
		wg.Add(1)
		go func() {
			defer wg.Done()
			go io.WriteString(nc, strings.Repeat(line, lines))
			r := bufio.NewReader(nc)
			for range lines {
				if l, err := r.ReadString('\n'); err != nil || l != "END\r\n" {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	var lat []time.Duration
	for {
		select {
		case <-done:
			close(errs)
			for err := range errs {
				t.Errorf("attacker: %v", err)
			}
			slices.Sort(lat)
			// The median, not the worst: a busy machine may hold up
			// any one answer.
			median := lat[len(lat)/2]
			if median > 20*time.Millisecond {
				t.Errorf("version took %v (median of %d) while %d get lines of %d keys were served", median, len(lat), attackers*lines, (len(line)-5)/2)
			}
			t.Logf("%d probes, median %v, worst %v", len(lat), median, lat[len(lat)-1])
			return
		default:
		}
		start := time.Now()
		prober.expect("version\r\n", "VERSION "+Version)
		lat = append(lat, time.Since(start))
	}
}

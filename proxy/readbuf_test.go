package proxy

import "testing"

// TestLongGetLineAllocation: a client that sends 1 MiB get lines one
// after the other costs the proxy much less than a line's size in
// allocations per line: its read buffer grows in few steps into buffers
// the proxy recycles, instead of doubling from 4 KiB into new ones for
// every line.
func TestLongGetLineAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops pooled values at random")
	}
	_, addr := proxyFor(t, startCorvids(t, 2))
	for _, distinct := range []int{2, 40_000} {
		line := getLine((1<<20-64)/26, 25, distinct)
		got := allocPerGetLine(t, addr, line)
		t.Logf("%d distinct keys: a get line of %d bytes allocated %d bytes", distinct, len(line), got)
		if got > uint64(len(line))/2 {
			t.Errorf("%d distinct keys: a get line of %d bytes allocated %d bytes, want at most half the line", distinct, len(line), got)
		}
	}
}

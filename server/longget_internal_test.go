package server

import (
	"runtime"
	"strings"
	"testing"
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

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// getLine returns a get line of n keys of keyLen bytes, cycling
// through distinct of them.
func getLine(n, keyLen, distinct int) []byte {
	b := make([]byte, 0, 3+(1+keyLen)*n+2)
	b = append(b, "get"...)
	for i := range n {
		k := fmt.Appendf(nil, "%d", i%distinct)
		b = append(append(b, ' '), k...)
		for range keyLen - len(k) {
			b = append(b, '.')
		}
	}
	return append(b, '\r', '\n')
}

// allocPerGetLine returns the fewest bytes the process allocated while
// line was sent through the proxy at addr and its reply (all misses: END)
// read, over a few rounds.
func allocPerGetLine(t *testing.T, addr string, line []byte) uint64 {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64)
	reply := make([]byte, len("END\r\n"))
	round := func() {
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := nc.Write(line); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, reply); err != nil || string(reply) != "END\r\n" {
			t.Fatalf("reply %q, %v", reply, err)
		}
	}
	round() // warm the pools and buffers of this size
	best := ^uint64(0)
	var ms runtime.MemStats
	for range 5 {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		round()
		runtime.ReadMemStats(&ms)
		best = min(best, ms.TotalAlloc-before)
	}
	return best
}

// TestGetLineCostsOnlyItsBytes: what a get line costs the proxy beyond
// its read buffer does not grow with the keys it names: the keys are
// walked in place, chunk by chunk. A line of 50k keys of 5 bytes
// allocates hardly more than a line of the same length that names 1200
// keys of 249 bytes; the same when each line names two keys over and
// over (a chunk holds at most maxGetChunkNames of them).
func TestGetLineCostsOnlyItsBytes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops pooled values at random")
	}
	_, addr := proxyFor(t, startCorvids(t, 3))
	for _, distinct := range []int{50_000, 2} {
		few, many := getLine(1200, 249, distinct), getLine(50_000, 5, distinct)
		a := allocPerGetLine(t, addr, few)
		b := allocPerGetLine(t, addr, many)
		t.Logf("%d distinct keys: allocated %d bytes for a line of 1200 keys (%d bytes), %d for one of 50k keys (%d bytes)",
			distinct, a, len(few), b, len(many))
		if b > a && b-a > 128<<10 {
			t.Errorf("%d distinct keys: a get line of 50k keys allocates %d bytes more than one of 1200 keys as long", distinct, b-a)
		}
	}
}

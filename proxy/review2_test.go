//go:build linux

package proxy

import (
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestParkedClientWokenForwards checks that a reader that parks its client
// touches nothing of it afterwards: the reader the idler starts when the
// client sends again owns it alone (the race detector sees the old
// reader's accesses otherwise).
func TestParkedClientWokenForwards(t *testing.T) {
	p, addr := proxyFor(t, startCorvids(t, 1))
	c := testutil.Dial(t, addr)
	defer c.Close()
	for i := range 4 {
		testutil.WaitFor(t, func() bool { return parked(p) == 1 })
		key := fmt.Sprintf("wake%d", i)
		if got := roundTrip(c, fmt.Sprintf("set %s 0 0 1\r\nx\r\n", key), testutil.LineReply); got != "STORED\r\n" {
			t.Fatalf("set %s: %q", key, got)
		}
	}
}

package server_test

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// setCounts returns the "stats" and "stats slabs" counters a failed set
// may move: the set and CAS counts, items, and every class's cmd_set.
func setCounts(c *largeConn) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	for _, cmd := range []string{"stats", "stats slabs"} {
		for name, v := range c.stats(cmd) {
			switch {
			case name == "cmd_set", name == "curr_items", name == "total_items",
				strings.HasPrefix(name, "cas_"), strings.HasSuffix(name, ":cmd_set") && v != "0":
				out[name] = v
			}
		}
	}
	return out
}

// failedSets sends storage commands that fail, through text, meta and
// binary, with small values and values larger than slab_chunk_max (read
// into chunks by corvid), and a set whose client leaves mid-value, and
// returns the replies.
func failedSets(t *testing.T, addr string) (string, map[string]string) {
	c, bc := dialLarge(t, addr), dialLarge(t, addr)
	var out bytes.Buffer
	small, big := largeValue(10, 1), largeValue(700000, 2)
	c.store("set", "k", small)
	for _, v := range [][]byte{small, big} {
		n := len(v)
		send := func(line string, value []byte, end string) {
			c.send([]byte(line), value, []byte(end))
			fmt.Fprintf(&out, "%d %s: %q\n", n, strings.TrimSpace(line), c.line())
		}
		send(fmt.Sprintf("set k%d 0 0 %d\r\n", n, n), v, "xy")
		send(fmt.Sprintf("ms k%d %d\r\n", n, n), v, "xy")
		send(fmt.Sprintf("ms k%d %d q\r\n", n, n), v, "xy")
		send(fmt.Sprintf("add k 0 0 %d\r\n", n), v, "\r\n")
		send(fmt.Sprintf("cas k 0 0 %d 999999\r\n", n), v, "\r\n")
		send(fmt.Sprintf("cas missing 0 0 %d 1\r\n", n), v, "\r\n")
		send(fmt.Sprintf("ms k %d ME\r\n", n), v, "\r\n")
		send(fmt.Sprintf("ms k %d C999999\r\n", n), v, "\r\n")

		st, _ := bc.binary(0x02, "k", make([]byte, 8), v) // add
		fmt.Fprintf(&out, "%d binary add: %d\n", n, st)
		if n == len(small) {
			// The connection's first binary request stores k for it.
			continue
		}
		st, _ = bc.binary(0x03, "missing", make([]byte, 8), v) // replace
		fmt.Fprintf(&out, "%d binary replace: %d\n", n, st)
	}

	// A client that leaves mid-value stores nothing and counts no set.
	conns := func() string { return c.stats("stats")["curr_connections"] }
	before := conns()
	gone := dialLarge(t, addr)
	gone.send([]byte(fmt.Sprintf("set gone 0 0 %d\r\n", len(big))), big[:len(big)/2])
	gone.nc.Close()
	gone = dialLarge(t, addr)
	gone.send([]byte(fmt.Sprintf("ms gone %d\r\n", len(big))), big[:len(big)-1])
	gone.nc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for n := conns(); n != before; n = conns() {
		if time.Now().After(deadline) {
			t.Fatalf("curr_connections %s after the clients left, %s before", n, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return out.String(), setCounts(c)
}

func describeCounts(m map[string]string) string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// TestFailedSetsCountAsMemcached sends sets that fail (bad data chunk,
// add of an existing key, CAS mismatch and miss, a client gone
// mid-value), small and larger than slab_chunk_max, and compares the
// replies and the set and CAS counters with memcached's: memcached counts
// a set once it has read its value, whatever becomes of it, and none for
// a value never read whole.
func TestFailedSetsCountAsMemcached(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{
		Storage: storage.Config{MemoryLimit: largeMemoryMB << 20, ItemSizeMax: largeItemMax},
	})
	got, counts := failedSets(t, addr)
	// What memcached 1.6.18 (-I 2m) counts for these sets: the set of
	// k, 2 × 8 text and meta sets and 3 binary adds and replaces.
	if counts["cmd_set"] != "20" {
		t.Errorf("cmd_set: %s, want 20 (%s)", counts["cmd_set"], describeCounts(counts))
	}
	if testutil.MemcachedPath() == "" {
		return
	}
	maddr := testutil.StartMemcached(t, "-m", fmt.Sprint(largeMemoryMB), "-I", "2m")
	want, mcounts := failedSets(t, maddr)
	if got != want {
		t.Errorf("replies differ:\ncorvid:\n%s\nmemcached:\n%s", got, want)
	}
	if g, w := describeCounts(counts), describeCounts(mcounts); g != w {
		t.Errorf("counters differ:\ncorvid    %s\nmemcached %s", g, w)
	}
}

package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// TestNoHashExpandMatchesMemcached stores more items than a 2^13 index
// holds before it grows (1.5 per bucket) into servers started with
// hashpower=13, with and without no_hashexpand: the index grows to 2^14
// without it and stays at 2^13 with it, in corvid as in memcached.
func TestNoHashExpandMatchesMemcached(t *testing.T) {
	const n = 13000
	var sets strings.Builder
	for i := range n {
		fmt.Fprintf(&sets, "set k%d 0 0 1 noreply\r\nv\r\n", i)
	}
	for _, tc := range []struct {
		opts  string
		cfg   storage.Config
		power string
	}{
		{"hashpower=13", storage.Config{HashPowerInit: 13}, "14"},
		{"hashpower=13,no_hashexpand", storage.Config{HashPowerInit: 13, NoHashExpand: true}, "13"},
	} {
		servers := map[string]string{"corvid": testutil.StartCorvid(t, server.Config{Storage: tc.cfg})}
		if testutil.MemcachedPath() != "" {
			servers["memcached"] = testutil.StartMemcached(t, "-o", tc.opts)
		}
		for name, addr := range servers {
			c := testutil.Dial(t, addr)
			c.Send([]byte(sets.String()))
			var power string
			testutil.WaitFor(t, func() bool {
				c.Send([]byte("stats\r\n"))
				st := string(c.ReadReply(testutil.StatsReply))
				if !strings.Contains(st, fmt.Sprintf("STAT curr_items %d\r\n", n)) || !strings.Contains(st, "STAT hash_is_expanding 0\r\n") {
					return false
				}
				_, rest, _ := strings.Cut(st, "STAT hash_power_level ")
				power, _, _ = strings.Cut(rest, "\r\n")
				return power == tc.power
			})
			if power != tc.power {
				t.Errorf("%s -o %s: hash_power_level %s, want %s", name, tc.opts, power, tc.power)
			}
		}
	}
}

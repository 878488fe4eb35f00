package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// TestStatsSizesMatchMemcached runs the same stores and "stats sizes",
// "stats sizes_enable" and "stats sizes_disable" against memcached and
// corvid and compares the replies: the histogram counts the items linked
// since it was enabled by memcached's item size in 32-byte steps, leaves
// out the items linked before (also when they go), and is refused without
// CAS unless -o track_sizes turned it on at start. (memcached ends the
// replies to sizes_enable and sizes_disable without an END.)
func TestStatsSizesMatchMemcached(t *testing.T) {
	before := []string{
		"set old1 0 0 10\r\n0123456789\r\n",
		"set old2 5 0 100\r\n" + strings.Repeat("o", 100) + "\r\n",
		"set oldn 0 0 1\r\n7\r\n",
	}
	after := []string{
		"set a 0 0 1\r\nx\r\n",
		"set bb 1 0 50\r\n" + strings.Repeat("b", 50) + "\r\n",
		"set c 0 0 1000\r\n" + strings.Repeat("c", 1000) + "\r\n",
		"set d 0 100 5000\r\n" + strings.Repeat("d", 5000) + "\r\n",
		"set old1 0 0 3\r\nnew\r\n",
		"delete old2\r\n",
		"incr oldn 1\r\n",
		"set n 0 0 1\r\n9\r\n",
		"incr n 1\r\n",
		"set m 0 0 2\r\n99\r\n",
		"incr m 5\r\n",
		"append bb 0 0 20\r\n" + strings.Repeat("+", 20) + "\r\n",
		"delete c\r\n",
	}
	for _, tc := range []struct {
		name  string
		args  []string
		noCAS bool
		track bool
	}{
		{"default", nil, false, false},
		{"-C", []string{"-C"}, true, false},
		{"track_sizes", []string{"-o", "track_sizes"}, false, true},
		{"-C track_sizes", []string{"-C", "-o", "track_sizes"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := testutil.StartMemcached(t, append([]string{"-o", "no_lru_crawler,no_lru_maintainer"}, tc.args...)...)
			cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{
				DisableCAS: tc.noCAS, TrackSizes: tc.track, NoCrawler: true, NoLRUMaintainer: true}})
			run := func(addr string) string {
				c := testutil.Dial(t, addr)
				defer c.Close()
				var out []string
				do := func(cmds []string) {
					for _, s := range cmds {
						c.Send([]byte(s))
						kind := testutil.LineReply
						if s == "stats sizes\r\n" {
							kind = testutil.StatsReply
						}
						r := c.ReadReply(kind)
						if string(r) == "STAT sizes_status error\r\n" {
							// sizes_enable and _disable end without END.
							r = append(r, c.ReadReply(testutil.LineReply)...)
						}
						out = append(out, fmt.Sprintf("%.12q: %q", s, r))
					}
				}
				do([]string{"stats sizes\r\n"})
				do(before)
				do([]string{"stats sizes_enable\r\n", "stats sizes\r\n"})
				do(after)
				do([]string{"stats sizes\r\n"})
				out = append(out, "track_sizes "+statValues(t, addr, "settings")["track_sizes"])
				do([]string{"stats sizes_disable\r\n", "stats sizes\r\n"})
				return strings.Join(out, "\n")
			}
			if want, got := run(mc), run(cv); got != want {
				t.Errorf("corvid:\n%s\nmemcached:\n%s", got, want)
			}
		})
	}
}

package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestBadChunkNearItemLimitMatchesMemcached: a storage request whose
// value, under the item size limit, makes an item too large for memcached
// is refused for its size before memcached reads the data (and a set's
// old value removed), whether or not the data ends in CRLF; the proxy,
// which answers a bad data chunk itself, answers as memcached does.
func TestBadChunkNearItemLimitMatchesMemcached(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	direct := testutil.StartMemcached(t)
	backends := []string{testutil.StartMemcached(t), testutil.StartMemcached(t), testutil.StartMemcached(t)}
	_, paddr := proxyFor(t, backends)
	var script []string
	for _, key := range []string{"k", strings.Repeat("K", 200)} {
		for _, flags := range []string{"0", "5"} {
			limit := DefaultMaxValueLen - 48 - len(key) - 1 - 8 - 2
			if flags != "0" {
				limit -= 4
			}
			for _, l := range []int{limit - 1, limit, limit + 1, limit + 2} {
				v := strings.Repeat("v", l)
				script = append(script,
					fmt.Sprintf("set %s 0 0 1\r\nx\r\n", key),
					fmt.Sprintf("set %s %s 0 %d\r\n%sxy\r\n", key, flags, l, v), // a bad chunk
					"get "+key+"\r\n",
					fmt.Sprintf("ms %s 1\r\nx\r\n", key),
					fmt.Sprintf("ms %s %d F%s\r\n%sxy\r\n", key, l, flags, v),
					"get "+key+"\r\n",
					fmt.Sprintf("append %s 0 0 %d\r\n%sxy\r\n", key, l, v))
			}
		}
	}
	run := func(addr string) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		var out []string
		for _, req := range script {
			c.Send([]byte(req + "mn\r\n"))
			var r []byte
			for !strings.HasSuffix(string(r), "MN\r\n") {
				r = append(r, c.ReadReply(testutil.AnyReply)...)
			}
			out = append(out, string(r))
		}
		return out
	}
	want, got := run(direct), run(paddr)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: proxy %q, memcached %q", testutil.Quote([]byte(script[i]), 60), got[i], want[i])
		}
	}
}

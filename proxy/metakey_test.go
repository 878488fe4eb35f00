package proxy

import (
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestMetaKeyFormsMatchMemcached: memcached writes a k flag's key in the
// form the item was stored with (base64 after an ms with b, as it is
// otherwise, and as it is for an item an mg with b and N made), whatever
// form the request used (a key token memcached decodes leniently too);
// the proxy passes those replies through as
// memcached sends them.
func TestMetaKeyFormsMatchMemcached(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	direct := testutil.StartMemcached(t)
	backends := []string{testutil.StartMemcached(t), testutil.StartMemcached(t), testutil.StartMemcached(t)}
	_, paddr := proxyFor(t, backends)
	script := []string{
		"ms Zm9v 1 b\r\nx\r\n",  // "foo", stored with b
		"mg foo k v O1\r\n",     // answered in base64, with b
		"ms bar 1\r\ny\r\n",     // stored as it is
		"mg YmFy b k v O2\r\n",  // answered as it is
		"mg YSBi b k N0 O3\r\n", // "a b", made as it is
		"mg YSBi b k O4\r\n",
		"mg Zm9v b k s\r\n",
		"mg a=b= b k v\r\n", // "h" as memcached decodes it, a miss
		"ms aA== 1 b\r\nz\r\n",
		"mg a=b= b k v\r\n",
		"ms h 1\r\nw\r\n",
		"mg a=b= b k v\r\n",
	}
	run := func(addr string) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		var out []string
		for _, req := range script {
			out = append(out, roundTrip(c, req, testutil.AnyReply))
		}
		return out
	}
	want, got := run(direct), run(paddr)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%q: proxy %q, memcached %q", script[i], got[i], want[i])
		}
	}
}

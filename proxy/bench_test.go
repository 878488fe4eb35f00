package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// BenchmarkWideGet times a 10,000-key get (100-byte values) sent to one
// memcached directly and through the proxy in front of three; the ratio
// of the two is the "within 2× of direct" target.
func BenchmarkWideGet(b *testing.B) {
	const nkeys = 10000
	direct := testutil.StartMemcached(b, "-m", "64")
	backends := []string{testutil.StartMemcached(b, "-m", "64"), testutil.StartMemcached(b, "-m", "64"), testutil.StartMemcached(b, "-m", "64")}
	p := startProxyB(b, poolYAML("127.0.0.1:0", backends))
	paddr := p.Addrs()["alpha"].String()
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("wide:%d", i)
	}
	value := strings.Repeat("v", 100)
	for _, addr := range []string{direct, paddr} {
		c := testutil.Dial(b, addr)
		var req strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&req, "set %s 0 0 %d noreply\r\n%s\r\n", k, len(value), value)
		}
		req.WriteString("version\r\n")
		c.Send([]byte(req.String()))
		c.ReadReply(testutil.LineReply)
		c.Close()
	}
	get := []byte("get " + strings.Join(keys, " ") + "\r\n")
	for _, bc := range []struct{ name, addr string }{{"direct", direct}, {"proxy", paddr}} {
		b.Run(bc.name, func(b *testing.B) {
			c := testutil.Dial(b, bc.addr)
			defer c.Close()
			for b.Loop() {
				c.Send(get)
				if r := c.ReadReply(testutil.ValuesReply); len(r) < nkeys*100 {
					b.Fatalf("short reply: %d bytes", len(r))
				}
			}
		})
	}
}

package server_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// TestTLSChainedValues sets chained values over TLS (read into their
// chunks) in one write with gets of them (written from the pinned items),
// text, meta and a value cut by a bad data chunk, with and without event
// loops, and reads each value back whole.
func TestTLSChainedValues(t *testing.T) {
	f := newTLSFiles(t)
	for _, loops := range []int{0, 2} {
		t.Run(fmt.Sprint("loops", loops), func(t *testing.T) {
			addr := testutil.StartCorvid(t, server.Config{TLS: f.config(), EventLoops: loops,
				Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20}})
			c := dialTLS(t, addr, f.clientConfig())
			v := make([]byte, 3<<20+17)
			for i := range v {
				v[i] = byte(i*7 + i>>11)
			}
			var req []byte
			req = fmt.Appendf(req, "set k 3 0 %d\r\n%s\r\n", len(v), v)
			req = fmt.Appendf(req, "set bad 0 0 %d\r\n%sxx", len(v), v)
			req = append(req, "get k\r\nmg k v\r\nget bad\r\n"...)
			c.Send(req)
			if got := string(c.ReadReply(testutil.LineReply)); got != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
			if got := string(c.ReadReply(testutil.LineReply)); got != "CLIENT_ERROR bad data chunk\r\n" {
				t.Fatalf("set with a bad data chunk: %q", got)
			}
			want := append(fmt.Appendf(nil, "VALUE k 3 %d\r\n", len(v)), v...)
			want = append(want, "\r\nEND\r\n"...)
			if got := c.ReadReply(testutil.ValuesReply); !bytes.Equal(got, want) {
				t.Fatalf("get: %d bytes, want %d", len(got), len(want))
			}
			want = append(fmt.Appendf(nil, "VA %d\r\n", len(v)), v...)
			want = append(want, "\r\n"...)
			if got := c.ReadReply(testutil.MetaValueReply); !bytes.Equal(got, want) {
				t.Fatalf("mg: %d bytes differ", len(got))
			}
			if got := string(c.ReadReply(testutil.ValuesReply)); got != "END\r\n" {
				t.Fatalf("get bad: %q", got)
			}
		})
	}
}

package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// TestFlushMidChainedValue flushes the cache while a chained value
// (text, meta) is half sent, against corvid and memcached: the value
// stored after the flush is visible, as memcached links it after the
// flush, and the key's old value is gone.
func TestFlushMidChainedValue(t *testing.T) {
	servers := map[string]string{
		"corvid": testutil.StartCorvid(t, server.Config{Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20}}),
	}
	if testutil.MemcachedPath() != "" {
		servers["memcached"] = testutil.StartMemcached(t, "-m", "64", "-I", "4m")
	}
	const size = 3 << 20
	value := strings.Repeat("v", size)
	results := map[string]string{}
	for name, addr := range servers {
		var got strings.Builder
		for _, head := range []string{fmt.Sprintf("set k 0 0 %d\r\n", size), fmt.Sprintf("ms k %d\r\n", size)} {
			c, f := testutil.Dial(t, addr), testutil.Dial(t, addr)
			f.Send([]byte("set k 0 0 3\r\nold\r\n"))
			fmt.Fprintf(&got, "%s ", f.ReadReply(testutil.LineReply))
			c.Send([]byte(head + value[:size/2]))
			f.Send([]byte("flush_all\r\n"))
			fmt.Fprintf(&got, "%s ", f.ReadReply(testutil.LineReply))
			c.Send([]byte(value[size/2:] + "\r\n"))
			fmt.Fprintf(&got, "%s ", c.ReadReply(testutil.LineReply))
			f.Send([]byte("mg k s\r\n"))
			fmt.Fprintf(&got, "%s | ", f.ReadReply(testutil.LineReply))
		}
		results[name] = got.String()
	}
	want := "STORED\r\n OK\r\n STORED\r\n HD s3145728\r\n | STORED\r\n OK\r\n HD\r\n HD s3145728\r\n | "
	for name, got := range results {
		if got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

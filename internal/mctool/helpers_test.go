package mctool

import (
	"context"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// crcOf computes a record checksum the way the format describes it.
func crcOf(head, value string) string {
	tab := crc32.MakeTable(crc32.Castagnoli)
	return fmt.Sprintf("%08x", crc32.Checksum([]byte(head+value), tab))
}

// listedOnce reports whether a metadump that listed listed keys, distinct
// of them different, listed want items each once. memcached's LRU
// maintainer moves a new item from its HOT list to COLD a moment after it
// is stored, and its crawler, which walks the lists one after another,
// can list an item moved meanwhile twice: against memcached (t's name ends
// in /memcached) repeats are allowed. corvid walks its slab pages and
// lists an item once.
func listedOnce(t *testing.T, listed, distinct, want int) bool {
	if strings.HasSuffix(t.Name(), "/memcached") {
		return distinct == want && listed >= want
	}
	return listed == want && distinct == want
}

// servers runs fn against corvid in-process and against real memcached
// (skipped when it is not installed); start starts a fresh server.
func servers(t *testing.T, fn func(t *testing.T, start func() string)) {
	t.Run("corvid", func(t *testing.T) {
		fn(t, func() string { return testutil.StartCorvid(t, server.Config{}) })
	})
	t.Run("memcached", func(t *testing.T) {
		fn(t, func() string { return testutil.StartMemcached(t) })
	})
}

func dial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends req and reads n reply lines.
func do(t *testing.T, c *Conn, req string, n int) []string {
	t.Helper()
	if err := c.send(req); err != nil {
		t.Fatal(err)
	}
	var out []string
	for range n {
		line, err := c.line()
		if err != nil {
			t.Fatalf("%q: %v after %q", req, err, out)
		}
		out = append(out, string(line))
	}
	return out
}

// item is what "mg <key> f t v" says about a key.
type item struct {
	found bool
	flags string
	ttl   int64
	value string
}

func getItem(t *testing.T, c *Conn, key string) item {
	t.Helper()
	line := do(t, c, "mg "+key+" f t v\r\n", 1)[0]
	if line == "EN" {
		return item{}
	}
	var n int
	var it item
	var tok string
	if _, err := fmt.Sscanf(line, "VA %d f%s t%d", &n, &tok, &it.ttl); err != nil {
		t.Fatalf("mg %s: %q: %v", key, line, err)
	}
	it.found, it.flags = true, tok
	v, err := c.data(n)
	if err != nil {
		t.Fatal(err)
	}
	it.value = string(v)
	return it
}

package server_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// chainStats returns the "stats slabs" used_chunks and total_chunks and
// the "stats items" number of every class, as "<class>:<name> <value>".
func chainStats(c *largeConn) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	for _, cmd := range []string{"stats slabs", "stats items"} {
		for name, v := range c.stats(cmd) {
			name = strings.TrimPrefix(name, "items:")
			if strings.HasSuffix(name, ":used_chunks") || strings.HasSuffix(name, ":total_chunks") || strings.HasSuffix(name, ":number") {
				out[name] = v
			}
		}
	}
	return out
}

// chainWorkload stores, appends and prepends values around the chunk
// boundaries of a chain of chunkMax chunks and reports each reply line.
func chainWorkload(c *largeConn, chunkMax int, mults []int) string {
	c.t.Helper()
	var out bytes.Buffer
	body := chunkMax - 48 // memcached's body chunk holds this much
	n := 0
	set := func(cmd string, size int, key string) {
		r := c.store(cmd, key, largeValue(size, byte(n)))
		fmt.Fprintf(&out, "%s %s %d: %q\n", cmd, key, size, r)
		n++
	}
	for _, k := range mults {
		for _, d := range []int{-45, -44, -43, -42, -41, -3, -2, -1, 0, 1} {
			set("set", k*body+d, fmt.Sprintf("s%d_%d", k, d))
		}
	}
	// The last chunk takes the smallest class that holds what is left.
	for _, tail := range []int{96, 120, 152, 1184, 5000} {
		for d := -1; d <= 1; d++ {
			set("set", body+tail-48-2+d, fmt.Sprintf("t%d_%d", tail, d))
		}
	}
	for i, p := range [][2]int{{100, chunkMax}, {chunkMax - 50, 60}, {3 * chunkMax, chunkMax + 7}, {10, 5 * chunkMax}, {body - 2, 1}, {body, body}, {2 * body, 0}} {
		for _, mode := range []string{"append", "prepend"} {
			key := fmt.Sprintf("%s%d", mode[:1], i)
			set("set", p[0], key)
			set(mode, p[1], key)
			set(mode, p[0]/3+1, key)
		}
	}
	return out.String()
}

// TestChainedItemsMatchMemcached runs the same stores of values around
// chunk boundaries against corvid and memcached (-I 4m, two
// slab_chunk_max settings): every value must read back identically, and
// "stats slabs" must show the same used and total chunks in each class
// ("stats items" the same items), which holds only if values over
// slab_chunk_max are chained as memcached chains them.
func TestChainedItemsMatchMemcached(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	for _, tc := range []struct {
		chunkMax int
		mults    []int
	}{
		{16 << 10, []int{1, 2, 3, 7, 31, 100}},
		{64 << 10, []int{1, 2, 5, 20, 40}},
	} {
		t.Run(fmt.Sprint(tc.chunkMax), func(t *testing.T) {
			addr := testutil.StartCorvid(t, server.Config{
				Storage: storage.Config{MemoryLimit: 128 << 20, ItemSizeMax: 4 << 20, SlabChunkMax: tc.chunkMax},
			})
			maddr := testutil.StartMemcached(t, "-m", "128", "-I", "4m", "-o", fmt.Sprintf("slab_chunk_max=%d", tc.chunkMax))
			c, m := dialLarge(t, addr), dialLarge(t, maddr)
			got, want := chainWorkload(c, tc.chunkMax, tc.mults), chainWorkload(m, tc.chunkMax, tc.mults)
			if got != want {
				t.Fatalf("replies differ:\ncorvid:\n%s\nmemcached:\n%s", got, want)
			}
			for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
				key := strings.Fields(l)[1]
				if cv, mv := c.get(key), m.get(key); !bytes.Equal(cv, mv) {
					t.Fatalf("%s: corvid holds %d bytes, memcached %d (first difference at %d)", key, len(cv), len(mv), firstDiff(cv, mv))
				}
			}
			cs, ms := chainStats(c), chainStats(m)
			for k, v := range ms {
				if cs[k] != v {
					t.Errorf("%s: corvid %s, memcached %s", k, cs[k], v)
				}
			}
			for k, v := range cs {
				if _, ok := ms[k]; !ok {
					t.Errorf("%s: corvid %s, memcached none", k, v)
				}
			}
		})
	}
}

// TestLargeItemMaxHoldsManyValues stores 100 values of 3 MB with -I 128m
// -m 1024, as memcached does: chained, each takes about 3 MB, where a
// page of -I each would hold only eight of them. Under the race detector
// it stores 30, still far more than eight.
func TestLargeItemMaxHoldsManyValues(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{
		Storage: storage.Config{MemoryLimit: 1024 << 20, ItemSizeMax: 128 << 20},
	})
	c := dialLarge(t, addr)
	const size = 3 << 20
	n := 100
	if testutil.RaceEnabled {
		n = 30
	}
	for i := range n {
		if r := c.store("set", fmt.Sprint("big", i), largeValue(size, byte(i))); r != "STORED\r\n" {
			t.Fatalf("set big%d: %q", i, r)
		}
	}
	for i := range n {
		if got := c.get(fmt.Sprint("big", i)); !bytes.Equal(got, largeValue(size, byte(i))) {
			t.Fatalf("big%d: read back %d bytes, want %d intact", i, len(got), size)
		}
	}
	if v, ok := c.stats("stats")["evictions"]; ok && v != "0" {
		t.Fatalf("STAT evictions %s: values were evicted", v)
	}
}

// TestChainedMetaBase64AndGetK reads a chained value with mg on a base64
// key (ms with b) and with binary GETK: the value and the key come back
// whole, as from memcached when it is installed.
func TestChainedMetaBase64AndGetK(t *testing.T) {
	addrs := []string{testutil.StartCorvid(t, server.Config{
		Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 4 << 20, SlabChunkMax: 16 << 10},
	})}
	if testutil.MemcachedPath() != "" {
		addrs = append(addrs, testutil.StartMemcached(t, "-m", "64", "-I", "4m", "-o", "slab_chunk_max=16384"))
	}
	v := largeValue(100<<10+7, 3)
	const key, b64 = "chained key", "Y2hhaW5lZCBrZXk=" // base64 of key
	var replies []string
	for _, addr := range addrs {
		c, bc := dialLarge(t, addr), dialLarge(t, addr)
		c.send([]byte(fmt.Sprintf("ms %s %d b\r\n", b64, len(v))), v, []byte("\r\n"))
		if r := c.line(); r != "HD\r\n" {
			t.Fatalf("ms b: %q", r)
		}
		c.send([]byte("mg " + b64 + " b k v s\r\n"))
		head := c.line()
		if got := c.full(len(v) + 2); !bytes.Equal(got[:len(v)], v) || string(got[len(v):]) != "\r\n" {
			t.Fatalf("mg b v: value damaged (first difference at %d)", firstDiff(got, v))
		}
		st, got := bc.binary(0x0c, key, nil, nil) // GETK
		if st != 0 || !bytes.Equal(got, v) {
			t.Fatalf("GETK: status %d, %d bytes (first difference at %d)", st, len(got), firstDiff(got, v))
		}
		replies = append(replies, head)
	}
	if len(replies) == 2 && replies[0] != replies[1] {
		t.Fatalf("mg reply line: corvid %q, memcached %q", replies[0], replies[1])
	}
	if want := fmt.Sprintf("VA %d k%s b s%d\r\n", len(v), b64, len(v)); replies[0] != want {
		t.Fatalf("mg reply line %q, want %q", replies[0], want)
	}
}

// TestChainedSetOutOfMemory fills a -M cache with chained values until a
// set fails for want of body chunks, its header chunk found: memcached
// fails it while reading the value, answers "SERVER_ERROR Out of memory
// during read" (to ms as well), does not count it in store_no_memory and
// leaves the key's old value in place.
func TestChainedSetOutOfMemory(t *testing.T) {
	addrs := map[string]string{"corvid": testutil.StartCorvid(t, server.Config{
		Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 16 << 20, NoEvict: true},
	})}
	if testutil.MemcachedPath() != "" {
		addrs["memcached"] = testutil.StartMemcached(t, "-m", "64", "-I", "16m", "-M")
	}
	for name, addr := range addrs {
		t.Run(name, func(t *testing.T) {
			c := dialLarge(t, addr)
			old := largeValue(2<<20, 1)
			if r := c.store("set", "old", old); r != "STORED\r\n" {
				t.Fatalf("set old: %q", r)
			}
			const oom = "SERVER_ERROR Out of memory during read\r\n"
			r := ""
			for i := 0; i < 40 && r != oom; i++ {
				if r = c.store("set", fmt.Sprint("k", i), largeValue(3<<20, byte(i))); r != "STORED\r\n" && r != oom {
					t.Fatalf("set k%d: %q", i, r)
				}
			}
			if r != oom {
				t.Fatalf("40 sets of 3 MB into -m 64 -M all stored")
			}
			if r := c.store("set", "old", largeValue(3<<20, 2)); r != oom {
				t.Fatalf("set old again: %q, want %q", r, oom)
			}
			if r := c.metaSet("old", largeValue(3<<20, 2)); r != oom {
				t.Fatalf("ms old: %q, want %q", r, oom)
			}
			if got := c.get("old"); !bytes.Equal(got, old) {
				t.Fatalf("old reads back %d bytes after the failed sets, want its old %d", len(got), len(old))
			}
			if v, ok := c.stats("stats")["store_no_memory"]; ok && v != "0" {
				t.Errorf("STAT store_no_memory %s, want 0", v)
			}
		})
	}
}

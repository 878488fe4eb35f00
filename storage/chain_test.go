package storage

import (
	"fmt"
	"testing"
)

// chainCache returns a cache that chains items over slab_chunk_max.
func chainCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	cfg.ChainItems = true
	if cfg.Now == nil && cfg.Clock == nil {
		cfg.Now = newFakeClock().Now
	}
	cfg.NoCrawler = true
	return newCache(t, cfg)
}

// pattern returns n bytes that differ with n and seed at every offset.
func pattern(n int, seed byte) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(i) ^ byte(i>>8)*31 ^ byte(i>>16)*7 ^ seed
	}
	return v
}

// usedChunks returns the used chunks of every class, by class id.
func usedChunks(c *Cache) map[int]int {
	m := map[int]int{}
	for _, cs := range stats(c).Classes {
		if cs.UsedChunks != 0 {
			m[cs.ID] = cs.UsedChunks
		}
	}
	return m
}

// wantChain returns the chunks memcached 1.6 takes for a text set of an
// nbytes value under an nkey-byte key with zero flags, by class id,
// computed from its rules (do_item_alloc, do_item_alloc_chunk) alone.
func wantChain(c *Cache, nkey, nbytes int) map[int]int {
	m := map[int]int{}
	classOf := func(size int) int {
		for _, ci := range c.Classes() {
			if ci.ChunkSize >= size {
				return ci.ID
			}
		}
		return c.Classes()[len(c.Classes())-1].ID
	}
	total := 48 + nkey + 1 + nbytes + 2 + 8
	if total <= c.cfg.SlabChunkMax {
		return nil
	}
	m[classOf(48+nkey+1+40+8)]++
	for left := nbytes + 2; left > 0; {
		size := min(left+40, c.cfg.SlabChunkMax)
		m[classOf(size)]++
		left -= size - 40
	}
	return m
}

func TestChainSizesAcrossBoundaries(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: 16 << 10})
	key := "chain-key"
	var sizes []int
	max := c.cfg.ItemSizeMax - 48 - len(key) - 1 - 2 - 8
	for _, base := range []int{1, 16 << 10, 2 * (16 << 10), 5 * (16 << 10), 16<<10 - 40, 2 * (16<<10 - 40), max} {
		for d := -3; d <= 3; d++ {
			if n := base + d; n >= 0 && n <= max {
				sizes = append(sizes, n)
			}
		}
	}
	for _, ci := range c.Classes() {
		for d := -1; d <= 1; d++ {
			sizes = append(sizes, 16<<10-40+ci.ChunkSize-40+d, 3*(16<<10-40)+ci.ChunkSize-40+d)
		}
	}
	for _, n := range sizes {
		v := pattern(n, byte(n))
		mustSet(t, c, key, string(v))
		got, ok := value(c, key)
		if !ok || got != string(v) {
			t.Fatalf("%d bytes: read back %d bytes (found %v)", n, len(got), ok)
		}
		if want := wantChain(c, len(key), n); want != nil {
			if got := usedChunks(c); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%d bytes: used chunks %v, want %v", n, got, want)
			}
		}
	}
	c.Delete([]byte(key))
	if got := usedChunks(c); len(got) != 0 {
		t.Fatalf("after delete: used chunks %v, want none", got)
	}
}

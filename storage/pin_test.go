package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// pinKey pins the value of key (with its "\r\n" when crlf is set).
func pinKey(t *testing.T, c *Cache, key string, crlf bool) Pinned {
	t.Helper()
	var p Pinned
	var ok bool
	if !c.Get([]byte(key), func(it Item) { p, ok = it.Pin(crlf) }) || !ok {
		t.Fatalf("cannot pin %s", key)
	}
	return p
}

// readPinned reads what p has left and releases it.
func readPinned(p *Pinned) []byte {
	var out []byte
	for p.Len() > 0 {
		d := p.Next()
		out = append(out, d...)
		p.Skip(len(d))
	}
	p.Release()
	return out
}

// TestPinSurvivesDeleteAndOverwrite pins a chained value, deletes it, and
// overwrites its key with other values until the memory it held would be
// reused: the pinned value reads back intact, its chunks stay in use until
// the release, and then none is left in use.
func TestPinSurvivesDeleteAndOverwrite(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 8 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10})
	v := pattern(1<<20+12345, 1)
	mustSet(t, c, "big", string(v))
	used := usedChunks(c)
	p := pinKey(t, c, "big", true)
	q := pinKey(t, c, "big", false) // a second reader of the same value
	if c.Delete([]byte("big")) != Stored {
		t.Fatal("delete of a pinned item failed")
	}
	if _, ok := value(c, "big"); ok {
		t.Fatal("a deleted pinned item is still visible")
	}
	for k, n := range usedChunks(c) {
		if n != used[k] {
			t.Fatalf("class %d: %d chunks in use after the delete, want %d (still pinned)", k, n, used[k])
		}
	}
	for i := range 30 {
		mustSet(t, c, "big", string(pattern(1<<20+i, byte(i+2))))
		mustSet(t, c, fmt.Sprint("other", i), string(pattern(1<<20, byte(i+50))))
	}
	if got := readPinned(&p); !bytes.Equal(got, append(bytes.Clone(v), '\r', '\n')) {
		t.Fatalf("pinned value damaged by overwrites: %d bytes", len(got))
	}
	if got := readPinned(&q); !bytes.Equal(got, v) {
		t.Fatalf("second pinned value damaged: %d bytes", len(got))
	}
	if n := c.PinnedItems(); n != 0 {
		t.Fatalf("%d items pinned after the releases", n)
	}
	want := map[string][]byte{"big": nil}
	for i := range 30 {
		want[fmt.Sprint("other", i)] = nil
	}
	checkChains(t, c, want)
}

// TestPinnedNotEvicted pins a chained item and fills the cache past its
// limit: the pinned item is passed over at the LRU tail (counted as
// lrutail_reflocked) while others are evicted, so it stays whole and
// linked; released, it can be evicted, and no chunk leaks.
func TestPinnedNotEvicted(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 8 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10})
	v := pattern(700<<10, 9)
	mustSet(t, c, "pinned", string(v))
	p := pinKey(t, c, "pinned", false)
	for i := range 60 {
		mustSet(t, c, fmt.Sprint("k", i), string(pattern(300<<10, byte(i))))
	}
	st := stats(c)
	if st.Evictions == 0 {
		t.Fatal("no evictions: the cache was not filled")
	}
	largest := st.Classes[len(st.Classes)-1]
	if largest.LRUTailReflocked == 0 {
		t.Fatal("the pinned item at the LRU tail was not counted as lrutail_reflocked")
	}
	if got, ok := value(c, "pinned"); !ok || got != string(v) {
		t.Fatalf("pinned item evicted or damaged (found %v)", ok)
	}
	if got := readPinned(&p); !bytes.Equal(got, v) {
		t.Fatal("pinned value damaged")
	}
	want := map[string][]byte{"pinned": nil}
	for i := range 60 {
		want[fmt.Sprint("k", i)] = nil
	}
	checkChains(t, c, want)
}

// TestPinCrawlerReclaim lets the crawler reclaim an expired pinned item:
// it is unlinked at once and freed at the release.
func TestPinCrawlerReclaim(t *testing.T) {
	clk := newFakeClock()
	c := chainCache(t, Config{MemoryLimit: 16 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10, Now: clk.Now})
	v := pattern(500<<10, 3)
	mustStore(t, c, ModeSet, "exp", string(v), 0, 5, 0)
	p := pinKey(t, c, "exp", false)
	clk.Advance(10e9)
	if _, ok := value(c, "exp"); ok {
		t.Fatal("expired item visible")
	}
	if len(usedChunks(c)) == 0 {
		t.Fatal("the chunks of a pinned expired item were freed before its release")
	}
	if got := readPinned(&p); !bytes.Equal(got, v) {
		t.Fatal("pinned value damaged")
	}
	if got := usedChunks(c); len(got) != 0 {
		t.Fatalf("used chunks %v after the release, want none", got)
	}
}

// TestPinnedNotMoved tries to empty, as a page move does, each page
// holding a chunk of a pinned chained item: every try fails while it is
// pinned (its chunks are neither moved nor freed under the reader), and
// the value reads back intact.
func TestPinnedNotMoved(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 32 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10})
	for i := range 20 {
		mustSet(t, c, fmt.Sprint("k", i), string(pattern(300<<10, byte(i))))
	}
	v := pattern(400<<10, 77)
	mustSet(t, c, "pinned", string(v))
	for i := range 20 {
		c.Delete([]byte(fmt.Sprint("k", i))) // free chunks for rescues
	}
	p := pinKey(t, c, "pinned", false)
	pages := map[uint32]bool{p.owner.pageID(): true}
	for r := p.cur; r != 0; r = itemRef(c.chunk(r).next) {
		pages[r.pageID()] = true
	}
	now := c.relNow()
	for id := range pages {
		cl := &c.classes[c.pageOwner[id].Load()]
		cl.mu.Lock()
		idx := -1
		for i, pid := range cl.pages {
			if pid == id {
				idx = i
			}
		}
		_, ok := c.clearPageLocked(cl, nil, idx, now, false)
		cl.mu.Unlock()
		if ok {
			t.Fatalf("page %d of class %d, holding a chunk of a pinned item, was emptied", id, cl.id)
		}
	}
	if got := readPinned(&p); !bytes.Equal(got, v) {
		t.Fatal("pinned value damaged")
	}
	checkChains(t, c, map[string][]byte{"pinned": v})
}

package storage

import (
	"testing"
	"time"
)

// metaView is what a test reads of a MetaEntry.
type metaView struct {
	value            string
	ttl              int64
	fetched, created bool
	stale, sent      bool
	binary           bool
	cas              uint64
}

func viewOf(e MetaEntry) metaView {
	return metaView{value: string(e.AppendValue(nil)), ttl: e.TTL(), fetched: e.Fetched(), created: e.Created(),
		stale: e.Stale(), sent: e.TokenSent(), binary: e.KeyBinary(), cas: e.CAS()}
}

// metaGet is MetaGet returning the view of the item, or ok false.
func metaGet(c *Cache, key string, vivify bool) (v metaView, ok bool) {
	ok = c.MetaGet([]byte(key), vivify, false, func(e MetaEntry) MetaOutcome {
		v = viewOf(e)
		return MetaHit
	})
	return v, ok
}

func TestMetaGetVivifyAndBump(t *testing.T) {
	c, clk := newFakeCache(t)
	if _, ok := metaGet(c, "k", false); ok {
		t.Fatal("hit on an empty cache")
	}
	v, ok := metaGet(c, "k", true)
	if !ok || !v.created || v.value != "" || v.ttl != -1 || v.fetched {
		t.Fatalf("vivify: %+v, %v", v, ok)
	}
	if v, _ = metaGet(c, "k", true); v.created || !v.fetched {
		t.Errorf("second get: %+v; want an existing, fetched item", v)
	}
	// T through SetExptime; MetaFailed leaves the item unbumped.
	c.MetaGet([]byte("n"), true, false, func(e MetaEntry) MetaOutcome {
		e.SetExptime(10)
		return MetaFailed
	})
	if v, _ = metaGet(c, "n", false); v.fetched || v.ttl != 10 {
		t.Errorf("after a failed answer: %+v; want unfetched with ttl 10", v)
	}
	clk.Advance(11 * time.Second)
	if _, ok := metaGet(c, "n", false); ok {
		t.Error("item outlived its T")
	}
	var st Stats
	c.ReadStats(&st)
	if st.GetMisses != 2 {
		t.Errorf("get_misses = %d, want 2", st.GetMisses)
	}
}

func TestMetaInvalidate(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "k", "v1")
	v, _ := metaGet(c, "k", false)
	old := v.cas
	if res := c.DeleteMeta([]byte("k"), MetaDeleteOptions{Invalidate: true, HasTTL: true, TTL: 30}); res != Stored {
		t.Fatalf("invalidate = %v", res)
	}
	v, _ = metaGet(c, "k", false)
	if !v.stale || v.sent || v.ttl != 30 || v.cas == old {
		t.Fatalf("invalidated: %+v", v)
	}
	c.MetaGet([]byte("k"), false, false, func(e MetaEntry) MetaOutcome { e.MarkTokenSent(); return MetaHit })
	// An older CAS stores, stale, keeping the TTL and the token.
	res, _, err := c.StoreMeta(ModeCAS, []byte("k"), 0, 0, []byte("v2"), old, MetaStoreOptions{Invalidate: true})
	if err != nil || res != Stored {
		t.Fatalf("stale store = %v, %v", res, err)
	}
	if v, _ = metaGet(c, "k", false); v.value != "v2" || !v.stale || !v.sent || v.ttl != 30 {
		t.Errorf("after a stale store: %+v", v)
	}
	// Without Invalidate, or with CAS 0, it is a mismatch.
	if res, _, _ := c.StoreMeta(ModeCAS, []byte("k"), 0, 0, []byte("v3"), old, MetaStoreOptions{}); res != Exists {
		t.Errorf("old CAS without I = %v, want Exists", res)
	}
	if res, _, _ := c.StoreMeta(ModeCAS, []byte("k"), 0, 0, []byte("v3"), 0, MetaStoreOptions{Invalidate: true}); res != Exists {
		t.Errorf("CAS 0 with I = %v, want Exists", res)
	}
	// A plain set clears the meta bits; a base64 key is remembered.
	c.StoreMeta(ModeSet, []byte("k"), 0, 0, []byte("v4"), 0, MetaStoreOptions{KeyBinary: true})
	if v, _ = metaGet(c, "k", false); v.stale || v.sent || !v.binary {
		t.Errorf("after a set: %+v", v)
	}
	if res := c.DeleteMeta([]byte("k"), MetaDeleteOptions{HasCAS: true, CAS: 0}); res != Exists {
		t.Errorf("md C0 = %v, want Exists", res)
	}
	if res := c.DeleteMeta([]byte("k"), MetaDeleteOptions{}); res != Stored {
		t.Errorf("md = %v, want Stored", res)
	}
	if res := c.DeleteMeta([]byte("k"), MetaDeleteOptions{}); res != NotFound {
		t.Errorf("md again = %v, want NotFound", res)
	}
}

func TestArithMeta(t *testing.T) {
	c, _ := newFakeCache(t)
	var got metaView
	var num uint64
	fn := func(e MetaEntry) {
		got, num = viewOf(e), e.Number()
		e.SetExptime(100)
	}
	if res, err := c.ArithMeta([]byte("n"), 1, false, 0, false, 0, fn); res != NotFound || err != nil {
		t.Fatalf("miss = %v, %v", res, err)
	}
	if res, err := c.ArithMeta([]byte("n"), 1, false, 0, true, 41, fn); res != Stored || err != nil || num != 41 || !got.created {
		t.Fatalf("vivify = %v, %v, %d, %+v", res, err, num, got)
	}
	if res, _ := c.ArithMeta([]byte("n"), 1, false, 0, true, 0, fn); res != Stored || num != 42 || got.created || got.ttl != 100 {
		t.Fatalf("incr = %v, %d, %+v", res, num, got)
	}
	// A longer result answers from the old item: SetExptime is lost.
	c.ArithMeta([]byte("n"), 0, false, 0, false, 0, func(e MetaEntry) { e.SetExptime(0) })
	var ttl int64
	if res, _ := c.ArithMeta([]byte("n"), 100, false, 0, false, 0, func(e MetaEntry) {
		e.SetExptime(5)
		ttl = e.TTL()
	}); res != Stored || ttl != 5 {
		t.Fatalf("longer result = %v, ttl %d; want Stored, 5 as the old item shows it", res, ttl)
	}
	if v, _ := metaGet(c, "n", false); v.value != "142" || v.ttl != -1 || v.fetched {
		t.Errorf("after a longer result: %+v; want 142, no TTL, unfetched", v)
	}
	if res, _ := c.ArithMeta([]byte("n"), 1, true, 12345, false, 0, nil); res != Exists {
		t.Errorf("CAS mismatch = %v", res)
	}
}

func TestMetaGetAllocs(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "k", "value")
	n := 0
	fn := func(e MetaEntry) MetaOutcome { n += len(e.Value()); return MetaHit }
	if a := testing.AllocsPerRun(1000, func() { c.MetaGet([]byte("k"), false, false, fn) }); a != 0 {
		t.Errorf("MetaGet allocates %.1f times, want 0", a)
	}
}

func TestArithMetaWithoutCAS(t *testing.T) {
	c := newCache(t, Config{DisableCAS: true, NoCrawler: true})
	mustSet(t, c, "n", "1")
	if res, _ := c.ArithMeta([]byte("n"), 1, false, 5, false, 0, nil); res != Exists {
		t.Errorf("ma C5 without CAS = %v, want Exists", res)
	}
	if res, _ := c.ArithMeta([]byte("n"), 1, false, 0, false, 0, nil); res != Stored {
		t.Errorf("ma without C = %v, want Stored", res)
	}
}

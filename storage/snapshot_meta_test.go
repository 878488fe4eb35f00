package storage

import (
	"bytes"
	"testing"
)

// TestSnapshotKeepsMetaMarks saves an item invalidated by md with I, one
// whose win token was sent, and one stored with a base64 key (ms with b):
// after the load, the first must still be stale (not served as a fresh
// value, which a client was told it no longer is), the second must not
// hand out its win token again, and the third's key must still be shown
// in base64, as memcached's restart keeps its items' flags.
func TestSnapshotKeepsMetaMarks(t *testing.T) {
	src, _ := newFakeCache(t)
	mustSet(t, src, "stale", "old")
	if res := src.DeleteMeta([]byte("stale"), MetaDeleteOptions{Invalidate: true}); res != Stored {
		t.Fatalf("md stale I = %v", res)
	}
	mustSet(t, src, "won", "v")
	src.MetaGet([]byte("won"), false, false, func(e MetaEntry) MetaOutcome {
		e.MarkTokenSent()
		return MetaHit
	})
	if _, _, err := src.StoreMeta(ModeSet, []byte("bin\x00key"), 0, 0, []byte("v"), 0, MetaStoreOptions{KeyBinary: true}); err != nil {
		t.Fatal(err)
	}
	mustSet(t, src, "plain", "v")
	var buf bytes.Buffer
	if _, err := src.Save(&buf); err != nil {
		t.Fatal(err)
	}
	dst, _ := newFakeCache(t)
	if st, err := dst.load(bytes.NewReader(buf.Bytes())); err != nil || st.Items != 4 {
		t.Fatalf("load: %+v, %v", st, err)
	}
	type marks struct{ stale, tokenSent, keyBinary bool }
	for key, want := range map[string]marks{
		"stale":      {stale: true},
		"won":        {tokenSent: true},
		"bin\x00key": {keyBinary: true},
		"plain":      {},
	} {
		var got marks
		if !dst.MetaDebug([]byte(key), func(e MetaEntry) { got = marks{e.Stale(), e.TokenSent(), e.KeyBinary()} }) {
			t.Fatalf("%q not restored", key)
		}
		if got != want {
			t.Errorf("%q after the load: %+v, want %+v", key, got, want)
		}
	}
}

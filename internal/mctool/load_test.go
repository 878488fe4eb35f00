package mctool

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// A Loader sends a batch of records or about a megabyte of them,
// whichever comes first: large values do not make it hold (and send at
// once, within one timeout) a hundred of them.
func TestLoaderBatchBoundedInBytes(t *testing.T) {
	c := dial(t, testutil.StartCorvid(t, server.Config{}))
	l := NewLoader(c, LoadConfig{})
	v := bytes.Repeat([]byte("x"), 500<<10)
	const n = 40
	peak := 0
	for i := range n {
		if err := l.Add(Record{Key: fmt.Sprint("big", i), Flags: 3, Value: v}); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, len(l.req))
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Loaded != n || st.Failed != 0 {
		t.Fatalf("stats %+v, want %d loaded", st, n)
	}
	if it := getItem(t, c, "big39"); !it.found || it.flags != "3" || it.value != string(v) {
		t.Fatalf("big39 after the load: found %v flags %s, %d bytes", it.found, it.flags, len(it.value))
	}
	if peak > 2<<20 {
		t.Errorf("the Loader held %d KB of requests for %d KB values", peak>>10, len(v)>>10)
	}
}

package storage

import (
	"bytes"
	"testing"
)

// The arena hands out distinct, zeroed pages, and a page given back comes
// out zeroed again.
func TestPageArenaPagesAreZeroedAndDistinct(t *testing.T) {
	for _, huge := range []bool{true, false} {
		a := newPageArena(huge)
		zero := make([]byte, SlabPageSize)
		var pages [][]byte
		// More than one region's worth, so a second region is mapped.
		for i := range arenaRegionPages + 3 {
			p, err := a.alloc(SlabPageSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != SlabPageSize || cap(p) != SlabPageSize {
				t.Fatalf("page %d: len %d cap %d", i, len(p), cap(p))
			}
			if !bytes.Equal(p, zero) {
				t.Fatalf("page %d is not zeroed", i)
			}
			p[0], p[len(p)-1] = byte(i), byte(i)
			pages = append(pages, p)
		}
		for i, p := range pages {
			if p[0] != byte(i) || p[len(p)-1] != byte(i) {
				t.Fatalf("page %d was overwritten by another page", i)
			}
		}
		a.free(pages[1])
		p, err := a.alloc(SlabPageSize)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, zero) {
			t.Fatal("a page given back is not zeroed when handed out again")
		}
		big, err := a.alloc(2 * SlabPageSize)
		if err != nil || len(big) != 2*SlabPageSize || !bytes.Equal(big[:SlabPageSize], zero) {
			t.Fatalf("large page: len %d, err %v", len(big), err)
		}
		a.free(big)
		a.close()
	}
}

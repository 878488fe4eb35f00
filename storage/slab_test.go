package storage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readClasses parses the "slab class" lines "memcached -vv" prints at start.
func readClasses(t *testing.T, name string) []ClassInfo {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ClassInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ci ClassInfo
		if _, err := fmt.Sscanf(sc.Text(), "slab class %d: chunk size %d perslab %d", &ci.ID, &ci.ChunkSize, &ci.ChunksPerPage); err != nil {
			t.Fatalf("%s: %q: %v", name, sc.Text(), err)
		}
		out = append(out, ci)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no classes", name)
	}
	return out
}

// TestClassesMatchMemcached compares Classes with tables recorded from
// memcached 1.6.18 ("memcached -vv -n N -f F [-o slab_chunk_max=B]").
func TestClassesMatchMemcached(t *testing.T) {
	tests := []struct {
		file string
		cfg  Config
	}{
		{"classes_n48_f1.25.txt", Config{}},
		{"classes_n48_f1.25.txt", Config{ChunkSizeMin: 48, GrowthFactor: 1.25, ItemSizeMax: 512 << 10}},
		{"classes_n48_f1.25.txt", Config{ItemSizeMax: 64 << 20, MemoryLimit: 256 << 20}},
		{"classes_n5_f1.01.txt", Config{ChunkSizeMin: 5, GrowthFactor: 1.01}},
		{"classes_n100_f2.txt", Config{ChunkSizeMin: 100, GrowthFactor: 2}},
		{"classes_n32_f1.5.txt", Config{ChunkSizeMin: 32, GrowthFactor: 1.5}},
		{"classes_n48_f1.07.txt", Config{GrowthFactor: 1.07}},
		{"classes_n48_f1.25_chunk256k.txt", Config{SlabChunkMax: 256 << 10}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.file, tt.cfg.ItemSizeMax), func(t *testing.T) {
			want := readClasses(t, tt.file)
			tt.cfg.NoCrawler = true
			c := newCache(t, tt.cfg)
			got := c.Classes()
			if len(got) != len(want) {
				t.Fatalf("%d classes, memcached has %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("class %d = %+v, memcached %+v", i+1, got[i], want[i])
				}
			}
		})
	}
}

func TestConfigChecks(t *testing.T) {
	bad := []Config{
		{GrowthFactor: 1},
		{GrowthFactor: 0.5},
		{ChunkSizeMin: -1},
		{ItemSizeMax: 1000},
		{ItemSizeMax: 2 << 30},
		{ItemSizeMax: 600 << 10},                          // not a multiple of slab_chunk_max
		{ItemSizeMax: 100 << 10, SlabChunkMax: 512 << 10}, // chunk max larger than -I
		{SlabChunkMax: 3000},
		{MemoryLimit: 1 << 20}, // -I over half the memory
		{HashPowerInit: 8},
		{HashPowerInit: 40},
	}
	for _, cfg := range bad {
		cfg.NoCrawler = true
		c, err := New(cfg)
		if err == nil {
			c.Close()
			t.Errorf("New(%+v) succeeded", cfg)
			continue
		}
		if !errors.Is(err, ErrBadConfig) {
			t.Errorf("New(%+v) = %v, want ErrBadConfig", cfg, err)
		}
	}
	if _, err := New(Config{MemoryLimit: MaxMemoryLimit + 1}); !errors.Is(err, ErrMemoryLimit) {
		t.Errorf("huge limit: %v", err)
	}
	// -I smaller than 512 KiB lowers slab_chunk_max by default.
	c := newCache(t, Config{ItemSizeMax: 64 << 10, NoCrawler: true})
	cls := c.Classes()
	if last := cls[len(cls)-1]; last.ChunkSize != 64<<10 {
		t.Fatalf("last class %+v", last)
	}
}

func TestLargerItemSizeMax(t *testing.T) {
	c := newCache(t, Config{ItemSizeMax: 4 << 20, MemoryLimit: 16 << 20, NoCrawler: true})
	cls := c.Classes()
	if last := cls[len(cls)-1]; last.ChunkSize != 512<<10 || last.ChunksPerPage != 2 {
		t.Fatalf("largest class %+v", last)
	}
	v := make([]byte, 3<<20)
	for i := range v {
		v[i] = byte(i)
	}
	for i := 0; i < 10; i++ {
		key := []byte(fmt.Sprint("big", i))
		if _, err := c.Store(ModeSet, key, 0, 0, v, 0); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	s := stats(c)
	if s.TotalMalloced > 16<<20 || s.CurrItems == 0 || s.CurrItems > 4 {
		t.Fatalf("malloced %d items %d", s.TotalMalloced, s.CurrItems)
	}
	got, ok := value(c, "big9")
	if !ok || got != string(v) {
		t.Fatal("last large item lost or corrupted")
	}
}

// TestSlabSizesRefused checks that -o slab_sizes is refused where
// memcached refuses it, with its messages.
func TestSlabSizesRefused(t *testing.T) {
	for _, tc := range []struct {
		sizes []int
		want  string
	}{
		{[]int{47}, "slab size 47 is out of valid range"},
		{[]int{48, 524289}, "slab size 524289 is out of valid range"},
		{[]int{100, 100}, "slab size 100 cannot be lower than or equal to a previous class size"},
		{[]int{100, 90}, "slab size 90 cannot be lower than or equal to a previous class size"},
		{[]int{100, 108}, "slab size 108 must be at least 8 bytes larger than previous class"},
	} {
		_, err := New(Config{SlabSizes: tc.sizes, NoCrawler: true})
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("slab sizes %v: %v, want %q", tc.sizes, err, tc.want)
		}
	}
	many := make([]int, 62)
	for i := range many {
		many[i] = 48 + 16*i
	}
	c, err := New(Config{SlabSizes: many, NoCrawler: true})
	if err != nil {
		t.Fatalf("62 slab sizes: %v", err)
	}
	c.Close()
	if _, err := New(Config{SlabSizes: append(many, 48+16*62), NoCrawler: true}); err == nil || !strings.Contains(err.Error(), "too many slab classes specified") {
		t.Errorf("63 slab sizes: %v", err)
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/corvidcache/corvid/storage"
)

// TestServerConfigSlabOptions checks the slab rebalancing and eviction -o
// options, and memcached's refusals of bad values.
func TestServerConfigSlabOptions(t *testing.T) {
	parse := func(t *testing.T, opts string) (storage.Config, error) {
		t.Helper()
		o := &serverOptions{}
		cmd := serverCommand(o)
		if err := cmd.Flags().Parse([]string{"-o", opts}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		return cfg.Storage, err
	}
	for _, tc := range []struct {
		opts  string
		check func(storage.Config) bool
	}{
		{"slab_reassign,slab_automove=2", func(c storage.Config) bool { return !c.NoSlabReassign && c.SlabAutomove == 2 }},
		{"slab_automove=0", func(c storage.Config) bool { return c.SlabAutomove == -1 }},
		{"slab_automove", func(c storage.Config) bool { return c.SlabAutomove == 1 }},
		{"no_slab_reassign", func(c storage.Config) bool { return c.NoSlabReassign }},
		{"slab_automove_ratio=0.5x,slab_automove_window=10,slab_automove_freeratio=0.2", func(c storage.Config) bool {
			return c.SlabAutomoveRatio == 0.5 && c.SlabAutomoveWindow == 10 && c.SlabAutomoveFreeRatio == 0.2
		}},
		{"eviction=lra", func(c storage.Config) bool { return c.Eviction == storage.EvictLRA }},
		{"eviction=5", func(c storage.Config) bool { return c.Eviction == storage.EvictLRA|storage.EvictLRU }},
		{"eviction=none", func(c storage.Config) bool { return c.NoEvict }},
		{"no_hugepages", func(c storage.Config) bool { return c.NoHugePages }},
		{"no_hugepages,hugepages", func(c storage.Config) bool { return !c.NoHugePages }},
	} {
		cfg, err := parse(t, tc.opts)
		if err != nil || !tc.check(cfg) {
			t.Errorf("-o %s: %v, %+v", tc.opts, err, cfg)
		}
	}
	for _, tc := range []struct{ opts, want string }{
		{"slab_automove=3", "slab_automove must be between 0 and 2"},
		{"slab_automove=-1", "slab_automove must be between 0 and 2"},
		{"slab_automove_ratio", "Missing slab_automove_ratio argument"},
		{"slab_automove_ratio=x", "slab_automove_ratio must be > 0 and < 1"},
		{"slab_automove_ratio=1.5", "slab_automove_ratio must be > 0 and < 1"},
		{"slab_automove_window=2", "slab_automove_window must be > 2"},
		{"slab_automove_freeratio=x", "could not parse argument to slab_automove_freeratio"},
		{"eviction=lfu", "eviction must be"},
	} {
		if _, err := parse(t, tc.opts); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("-o %s: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

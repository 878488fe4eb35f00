package storage

import (
	"fmt"
	"time"
)

// normalize fills in defaults and checks cfg as memcached checks its flags.
func normalize(cfg Config) (Config, error) {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = 64 << 20
	}
	if cfg.ChunkSizeMin == 0 {
		cfg.ChunkSizeMin = 48
	}
	if cfg.GrowthFactor == 0 {
		cfg.GrowthFactor = 1.25
	}
	if cfg.ItemSizeMax == 0 {
		cfg.ItemSizeMax = 1 << 20
	}
	if cfg.SlabChunkMax == 0 {
		cfg.SlabChunkMax = min(SlabPageSize/2, cfg.ItemSizeMax)
	}
	if cfg.HashPowerInit == 0 {
		cfg.HashPowerInit = 16
	}
	if cfg.CrawlInterval == 0 {
		cfg.CrawlInterval = time.Second
	}
	if cfg.CrawlerSleep == 0 {
		cfg.CrawlerSleep = defaultCrawlerSleep
	}
	if cfg.HotLRUPct == 0 {
		cfg.HotLRUPct = defaultHotLRUPct
	}
	if cfg.WarmLRUPct == 0 {
		cfg.WarmLRUPct = defaultWarmLRUPct
	}
	if cfg.HotMaxFactor == 0 {
		cfg.HotMaxFactor = defaultHotMaxFactor
	}
	if cfg.WarmMaxFactor == 0 {
		cfg.WarmMaxFactor = defaultWarmMaxFactor
	}
	if cfg.TemporaryTTL == 0 && !cfg.TempLRU {
		cfg.TemporaryTTL = defaultTemporaryTTL
	}
	if cfg.SlabAutomoveRatio == 0 {
		cfg.SlabAutomoveRatio = 0.8
	}
	if cfg.SlabAutomoveWindow == 0 {
		cfg.SlabAutomoveWindow = 30
	}
	if cfg.SlabAutomoveFreeRatio == 0 {
		cfg.SlabAutomoveFreeRatio = 0.01
	}
	bad := func(format string, args ...any) (Config, error) {
		return cfg, fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	switch {
	case cfg.MemoryLimit < 0 || cfg.MemoryLimit > MaxMemoryLimit:
		return cfg, fmt.Errorf("cannot use memory limit %d: %w", cfg.MemoryLimit, ErrMemoryLimit)
	case cfg.InitialMalloced < 0:
		return bad("initial malloced bytes %d is negative", cfg.InitialMalloced)
	case cfg.GrowthFactor <= 1:
		return bad("factor must be greater than 1")
	case cfg.ChunkSizeMin <= 0:
		return bad("chunk size must be greater than 0")
	case cfg.ItemSizeMax < 1024:
		return bad("item max size cannot be less than 1024 bytes")
	case cfg.ItemSizeMax > 1<<30:
		return bad("cannot set item size limit higher than 1 GB")
	case int64(cfg.ItemSizeMax) > cfg.MemoryLimit/2:
		return bad("cannot set item size limit higher than 1/2 of memory max")
	case cfg.SlabChunkMax <= 0 || cfg.SlabChunkMax > SlabPageSize || SlabPageSize%cfg.SlabChunkMax != 0:
		return bad("slab_chunk_max (bytes: %d) must divide the slab page size", cfg.SlabChunkMax)
	case cfg.SlabChunkMax > cfg.ItemSizeMax:
		return bad("slab_chunk_max (bytes: %d) cannot be larger than -I (item_size_max %d)", cfg.SlabChunkMax, cfg.ItemSizeMax)
	case cfg.ItemSizeMax%cfg.SlabChunkMax != 0:
		return bad("-I (item_size_max: %d) must be evenly divisible by slab_chunk_max (bytes: %d)", cfg.ItemSizeMax, cfg.SlabChunkMax)
	case cfg.HashPowerInit < 12 || cfg.HashPowerInit > maxHashPower:
		return bad("hashpower must be between 12 and %d", maxHashPower)
	case cfg.CrawlInterval < 0:
		return bad("crawl interval must not be negative")
	case cfg.CrawlerSleep > time.Second:
		return bad("LRU crawler sleep must be between 0 and 1 second")
	case cfg.HotLRUPct < 1 || cfg.HotLRUPct >= 80:
		return bad("hot_lru_pct must be > 1 and < 80")
	case cfg.WarmLRUPct < 1 || cfg.WarmLRUPct >= 80:
		return bad("warm_lru_pct must be > 1 and < 80")
	case cfg.HotLRUPct+cfg.WarmLRUPct > 80:
		return bad("hot_lru_pct + warm_lru_pct cannot be more than 80%% combined")
	case !(cfg.HotMaxFactor > 0):
		return bad("hot_max_factor must be > 0")
	case !(cfg.WarmMaxFactor > 0):
		return bad("warm_max_factor must be > 0")
	case cfg.TempLRU && cfg.NoLRUMaintainer:
		return bad("temporary_ttl requires lru_maintainer to be enabled")
	case cfg.SlabAutomove < -1 || cfg.SlabAutomove > 2:
		return bad("slab_automove must be between 0 and 2")
	case cfg.SlabAutomoveRatio < 0 || cfg.SlabAutomoveRatio > 1:
		return bad("slab_automove_ratio must be between 0 and 1")
	case cfg.SlabAutomoveWindow < 0 || cfg.SlabAutomoveWindow > 3600:
		return bad("slab_automove_window must be between 1 and 3600")
	case cfg.SlabAutomoveFreeRatio < 0 || cfg.SlabAutomoveFreeRatio > 1:
		return bad("slab_automove_freeratio must be between 0 and 1")
	case cfg.Eviction >= evictInvalid:
		return bad("eviction strategy %d is not one of twemcache's", cfg.Eviction)
	}
	if err := CheckSlabSizes(cfg.SlabSizes, cfg.ChunkSizeMin, cfg.SlabChunkMax); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return cfg, nil
}

// CheckSlabSizes checks Config.SlabSizes (-o slab_sizes) as memcached
// does, with its messages: each size at least chunkMin (-n) and at most
// chunkMax (slab_chunk_max), each more than 8 bytes over the one before,
// fewer than 63 in all. New makes the same check.
func CheckSlabSizes(sizes []int, chunkMin, chunkMax int) error {
	last := 0
	for i, size := range sizes {
		switch {
		case size < chunkMin || size > chunkMax:
			return fmt.Errorf("slab size %d is out of valid range", size)
		case last >= size:
			return fmt.Errorf("slab size %d cannot be lower than or equal to a previous class size", size)
		case size <= last+chunkAlign:
			return fmt.Errorf("slab size %d must be at least %d bytes larger than previous class", size, chunkAlign)
		case i+1 >= maxClassID:
			return fmt.Errorf("too many slab classes specified")
		}
		last = size
	}
	return nil
}

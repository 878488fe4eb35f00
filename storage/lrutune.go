package storage

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// memcached's defaults for the segmented LRU.
const (
	defaultHotLRUPct     = 20
	defaultWarmLRUPct    = 40
	defaultHotMaxFactor  = 0.2
	defaultWarmMaxFactor = 2.0
	defaultTemporaryTTL  = 61
)

// LRUSettings are the run-time settings of the LRU, as memcached's "lru"
// command changes them and "stats settings" reports them.
type LRUSettings struct {
	HotPct, WarmPct             uint32  // hot_lru_pct, warm_lru_pct
	HotMaxFactor, WarmMaxFactor float64 // hot_max_factor, warm_max_factor
	// Segmented is memcached's lru_segmented: false is the flat LRU
	// ("lru mode flat"), where new items go to COLD and a fetch relinks
	// an item at the COLD head at most once a minute.
	Segmented bool
	// TempLRU and TemporaryTTL are temp_lru and temporary_ttl.
	TempLRU      bool
	TemporaryTTL int32
	// Maintainer is lru_maintainer_thread: whether the maintainer
	// balances the segments. It is fixed at New.
	Maintainer bool
}

// lruTune holds the current LRUSettings. Readers (every store, the
// maintainer) load the pointer; writers copy, change and swap it under mu.
type lruTune struct {
	mu  sync.Mutex // serialises writers
	cur atomic.Pointer[LRUSettings]
}

// newLRUTune returns the settings of a normalised Config.
func newLRUTune(cfg *Config) *LRUSettings {
	return &LRUSettings{
		HotPct:        uint32(cfg.HotLRUPct),
		WarmPct:       uint32(cfg.WarmLRUPct),
		HotMaxFactor:  cfg.HotMaxFactor,
		WarmMaxFactor: cfg.WarmMaxFactor,
		Segmented:     !cfg.NoLRUMaintainer,
		TempLRU:       cfg.TempLRU,
		TemporaryTTL:  int32(cfg.TemporaryTTL),
		Maintainer:    !cfg.NoLRUMaintainer,
	}
}

// lruSettings returns the current settings; the result must not be
// modified.
func (c *Cache) lruSettings() *LRUSettings { return c.tune.cur.Load() }

// LRUSettings returns the current LRU settings. It is safe for concurrent
// use.
func (c *Cache) LRUSettings() LRUSettings { return *c.lruSettings() }

// update applies fn to a copy of the settings and installs it.
func (t *lruTune) update(fn func(*LRUSettings) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := *t.cur.Load()
	if err := fn(&s); err != nil {
		return err
	}
	t.cur.Store(&s)
	return nil
}

// TuneLRU sets the share of a class's memory HOT and WARM may hold and the
// multiples of the COLD tail's age past which their tail items move to
// COLD, as memcached's "lru tune". hotPct+warmPct must not exceed 80 and the
// factors must be positive (ErrBadLRUTune otherwise). It is safe for
// concurrent use.
func (c *Cache) TuneLRU(hotPct, warmPct uint32, hotFactor, warmFactor float64) error {
	if uint64(hotPct)+uint64(warmPct) > 80 {
		return fmt.Errorf("%w: hot and warm pcts must not exceed 80", ErrBadLRUTune)
	}
	if !(hotFactor > 0) || !(warmFactor > 0) {
		return fmt.Errorf("%w: hot/warm age factors must be greater than 0", ErrBadLRUTune)
	}
	return c.tune.update(func(s *LRUSettings) error {
		s.HotPct, s.WarmPct = hotPct, warmPct
		s.HotMaxFactor, s.WarmMaxFactor = hotFactor, warmFactor
		return nil
	})
}

// SetLRUSegmented switches between the segmented LRU (true) and the flat
// one, as memcached's "lru mode segmented|flat". Items already linked stay
// where they are; the maintainer drains HOT and WARM into COLD while the
// LRU is flat. It fails with ErrNoMaintainer when the cache runs without
// the maintainer. It is safe for concurrent use.
func (c *Cache) SetLRUSegmented(on bool) error {
	return c.tune.update(func(s *LRUSettings) error {
		if !s.Maintainer {
			return ErrNoMaintainer
		}
		s.Segmented = on
		return nil
	})
}

// SetTemporaryTTL sets the TTL at or under which new items go to the TEMP
// LRU and turns the TEMP LRU on, or with a negative ttl turns it off
// (keeping the last TTL), as memcached's "lru temp_ttl". It fails with
// ErrNoMaintainer when the cache runs without the maintainer. It is safe
// for concurrent use.
func (c *Cache) SetTemporaryTTL(ttl int32) error {
	return c.tune.update(func(s *LRUSettings) error {
		if !s.Maintainer {
			return ErrNoMaintainer
		}
		if ttl < 0 {
			s.TempLRU = false
			return nil
		}
		s.TempLRU, s.TemporaryTTL = true, ttl
		return nil
	})
}

// newItemLRU returns the LRU a new item with rel expiry exp enters, as
// memcached's do_item_alloc: TEMP when its TTL is short enough, else HOT,
// or COLD when the LRU is flat. (exp - now wraps around for items that
// never expire or are already expired, which therefore never go to TEMP,
// as in memcached.)
func (s *LRUSettings) newItemLRU(exp, now uint32) int {
	switch {
	case s.TempLRU && s.TemporaryTTL >= 0 && exp-now <= uint32(s.TemporaryTTL):
		return lruTemp
	case s.Segmented:
		return lruHot
	}
	return lruCold
}

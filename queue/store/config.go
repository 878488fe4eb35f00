package store

import (
	"fmt"
	"strings"
	"time"
)

// SyncMode says when the journal is fsync'd.
type SyncMode int

const (
	// SyncNever leaves flushing to the operating system (Kestrel's default).
	SyncNever SyncMode = iota
	// SyncAlways fsyncs before Put, Confirm, Flush and a non-transactional
	// Take return; concurrent callers share one fsync (group commit).
	SyncAlways
	// SyncInterval fsyncs in the background at most Every after a write.
	SyncInterval
)

// SyncPolicy is a journal's sync mode; Every is used by SyncInterval.
type SyncPolicy struct {
	Mode  SyncMode
	Every time.Duration
}

// String returns the policy in the form ParseSync reads.
func (p SyncPolicy) String() string {
	switch p.Mode {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval=" + p.Every.String()
	}
	return "never"
}

// ParseSync reads "always", "never", a duration such as "10ms", or
// "interval=10ms".
func ParseSync(s string) (SyncPolicy, error) {
	switch s {
	case "always":
		return SyncPolicy{Mode: SyncAlways}, nil
	case "never":
		return SyncPolicy{Mode: SyncNever}, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "interval="))
	if err != nil || d <= 0 {
		return SyncPolicy{}, fmt.Errorf("store: bad sync policy %q: want always, never or an interval such as 10ms", s)
	}
	return SyncPolicy{Mode: SyncInterval, Every: d}, nil
}

// Defaults used for zero fields of Config.
const (
	DefaultMaxMemorySize  = 128 << 20
	DefaultMaxJournalSize = 16 << 20
)

// resetMin is the journal size from which a queue that drains to empty
// starts a fresh file: small enough that a busy queue's file stays small,
// large enough that the rename and fsyncs are paid rarely.
const resetMin = 1 << 20

// Config is a queue's limits and journal policy. The zero value means: no
// limits on items, bytes, item size or age; refuse when full; 128 MiB of
// items in memory; compact past 16 MiB of journal; never fsync.
type Config struct {
	MaxItems           int           // 0: no limit
	MaxSize            int64         // bytes of item data; 0: no limit
	MaxItemSize        int64         // 0: no limit
	MaxAge             time.Duration // items older are dropped as expired; 0: no limit
	DiscardOldWhenFull bool          // when full, drop the oldest item instead of refusing
	MaxMemorySize      int64         // item bytes kept in memory; beyond, items stay only in the journal
	MaxJournalSize     int64         // compact the journal past it
	Sync               SyncPolicy
	// Expired, if set, is called outside the queue's lock with each item
	// dropped because it expired or passed MaxAge.
	Expired func(Item)
}

func (c *Config) maxMemory() int64 {
	if c.MaxMemorySize > 0 {
		return c.MaxMemorySize
	}
	return DefaultMaxMemorySize
}

func (c *Config) maxJournal() int64 {
	if c.MaxJournalSize > 0 {
		return c.MaxJournalSize
	}
	return DefaultMaxJournalSize
}

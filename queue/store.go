package queue

import "time"

// Item is one queued item, as a Store keeps it.
type Item struct {
	Data   []byte
	Flags  uint32
	Added  time.Time
	Expiry time.Time // zero: never expires
}

// StoreConfig is the configuration a Store applies to one queue. Zero
// fields mean "no limit" (Sync: the store's default).
type StoreConfig struct {
	MaxItems           int
	MaxSize            int64
	MaxItemSize        int64
	MaxAge             time.Duration
	DiscardOldWhenFull bool
	MaxMemorySize      int64
	MaxJournalSize     int64
	// Sync is the journal's sync policy as written in the configuration
	// ("always", "never", "10ms", "interval=10ms").
	Sync string
	// Expired is called with each item the store drops because it
	// expired (the server moves it to expire_to_queue).
	Expired func(Item)
}

// StoreStats are a Store's counters.
type StoreStats struct {
	Items, TotalItems, ExpiredItems, MemItems, Discarded, OpenTransactions int64
	Bytes, LogSize, MemBytes                                               int64
	Age                                                                    time.Duration
}

// Store is one durable FIFO queue: the server keeps its waiters,
// connections and fanout, the store keeps the items and their journal.
// Put returns an error for which errors.Is(err, ErrFull) or
// errors.Is(err, ErrTooLarge) holds when it refuses an item. A Store is
// safe for concurrent use.
type Store interface {
	SetConfig(StoreConfig)
	Put(Item) error
	// Take removes the head item; with open it is held under xid until
	// Confirm or Abort (Abort puts it back at the head).
	Take(now time.Time, open bool) (it Item, xid uint64, ok bool, err error)
	Peek(now time.Time) (Item, bool, error)
	Confirm(xid uint64) error
	Abort(xid uint64) error
	Flush() error
	// Delete removes the queue and its journal; the Store is then closed.
	Delete() error
	Close() error
	Stats() StoreStats
	Len() int
}

// Backend opens the Stores of a data directory.
type Backend interface {
	// Open opens (creating if needed) the queue called name.
	Open(name string, cfg StoreConfig) (Store, error)
	// Names lists the queues the backend holds, to open them at start.
	Names() ([]string, error)
}

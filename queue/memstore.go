package queue

import (
	"sort"
	"sync"
	"time"
)

// MemBackend is a Backend whose queues live only in memory (Kestrel's
// keepJournal = false): fast, and lost when the process stops. It is
// safe for concurrent use; its zero value is ready.
type MemBackend struct {
	mu     sync.Mutex // guards queues
	queues map[string]*memStore
}

// Open returns the queue called name, creating it empty; a queue closed
// and opened again keeps its items (not its open transactions).
func (b *MemBackend) Open(name string, cfg StoreConfig) (Store, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.queues == nil {
		b.queues = make(map[string]*memStore)
	}
	if s, ok := b.queues[name]; ok {
		// Reopened after Close, as a journal would be: the items stay.
		s.mu.Lock()
		s.cfg, s.closed = cfg, false
		s.mu.Unlock()
		return s, nil
	}
	s := &memStore{cfg: cfg, open: make(map[uint64]Item), backend: b, name: name}
	b.queues[name] = s
	return s, nil
}

// Names lists the queues opened and not deleted.
func (b *MemBackend) Names() ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.queues))
	for n := range b.queues {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (b *MemBackend) forget(name string, s *memStore) {
	b.mu.Lock()
	if b.queues[name] == s {
		delete(b.queues, name)
	}
	b.mu.Unlock()
}

// memStore is the Store of a MemBackend.
type memStore struct {
	backend *MemBackend
	name    string

	mu      sync.Mutex // guards the fields below
	cfg     StoreConfig
	items   []Item // head first
	bytes   int64
	open    map[uint64]Item
	nextXID uint64
	closed  bool
	total   int64
	expired int64
	discard int64
	age     time.Duration
}

func (s *memStore) SetConfig(cfg StoreConfig) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

func (s *memStore) Put(it Item) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	cfg := s.cfg
	size := int64(len(it.Data))
	if cfg.MaxItemSize > 0 && size > cfg.MaxItemSize {
		s.mu.Unlock()
		return ErrTooLarge
	}
	if cfg.MaxAge > 0 {
		if lim := it.Added.Add(cfg.MaxAge); it.Expiry.IsZero() || it.Expiry.After(lim) {
			it.Expiry = lim
		}
	}
	var expired []Item
	expired = s.expireLocked(it.Added, expired)
	full := func() bool {
		return (cfg.MaxItems > 0 && len(s.items)+1 > cfg.MaxItems) ||
			(cfg.MaxSize > 0 && s.bytes+size > cfg.MaxSize)
	}
	if full() {
		if !cfg.DiscardOldWhenFull {
			s.mu.Unlock()
			s.report(cfg, expired)
			return ErrFull
		}
		for len(s.items) > 0 && full() {
			s.bytes -= int64(len(s.items[0].Data))
			s.items = s.items[1:]
			s.discard++
		}
	}
	it.Data = append([]byte(nil), it.Data...)
	s.items = append(s.items, it)
	s.bytes += size
	s.total++
	s.mu.Unlock()
	s.report(cfg, expired)
	return nil
}

// expireLocked drops the expired items at the head.
func (s *memStore) expireLocked(now time.Time, expired []Item) []Item {
	for len(s.items) > 0 {
		h := s.items[0]
		if h.Expiry.IsZero() || h.Expiry.After(now) {
			break
		}
		s.items = s.items[1:]
		s.bytes -= int64(len(h.Data))
		s.expired++
		expired = append(expired, h)
	}
	return expired
}

func (s *memStore) report(cfg StoreConfig, expired []Item) {
	if cfg.Expired == nil {
		return
	}
	for _, it := range expired {
		cfg.Expired(it)
	}
}

func (s *memStore) Take(now time.Time, open bool) (Item, uint64, bool, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Item{}, 0, false, ErrClosed
	}
	expired := s.expireLocked(now, nil)
	cfg := s.cfg
	if len(s.items) == 0 {
		s.mu.Unlock()
		s.report(cfg, expired)
		return Item{}, 0, false, nil
	}
	it := s.items[0]
	s.items[0] = Item{}
	s.items = s.items[1:]
	s.bytes -= int64(len(it.Data))
	s.age = now.Sub(it.Added)
	var xid uint64
	if open {
		s.nextXID++
		xid = s.nextXID
		s.open[xid] = it
	}
	s.mu.Unlock()
	s.report(cfg, expired)
	return it, xid, true, nil
}

func (s *memStore) Peek(now time.Time) (Item, bool, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Item{}, false, ErrClosed
	}
	expired := s.expireLocked(now, nil)
	cfg := s.cfg
	var it Item
	ok := len(s.items) > 0
	if ok {
		it = s.items[0]
	}
	s.mu.Unlock()
	s.report(cfg, expired)
	return it, ok, nil
}

func (s *memStore) Confirm(xid uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.open[xid]; !ok {
		return ErrNoTransaction
	}
	delete(s.open, xid)
	return nil
}

func (s *memStore) Abort(xid uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.open[xid]
	if !ok {
		return ErrNoTransaction
	}
	delete(s.open, xid)
	s.items = append([]Item{it}, s.items...)
	s.bytes += int64(len(it.Data))
	return nil
}

func (s *memStore) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items, s.bytes = nil, 0
	return nil
}

func (s *memStore) Delete() error {
	s.mu.Lock()
	s.closed = true
	s.items, s.bytes, s.open = nil, 0, map[uint64]Item{}
	s.mu.Unlock()
	s.backend.forget(s.name, s)
	return nil
}

func (s *memStore) Close() error {
	s.mu.Lock()
	s.closed = true
	for xid, it := range s.open {
		delete(s.open, xid)
		s.items = append([]Item{it}, s.items...)
		s.bytes += int64(len(it.Data))
	}
	s.mu.Unlock()
	return nil
}

func (s *memStore) Stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	age := s.age
	if len(s.items) == 0 {
		age = 0
	}
	return StoreStats{
		Items: int64(len(s.items)), Bytes: s.bytes, TotalItems: s.total,
		ExpiredItems: s.expired, MemItems: int64(len(s.items)), MemBytes: s.bytes,
		Age: age, Discarded: s.discard, OpenTransactions: int64(len(s.open)),
	}
}

func (s *memStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

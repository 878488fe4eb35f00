package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/corvidcache/corvid/internal/atomicfile"
	"github.com/corvidcache/corvid/queue/store"
)

const (
	// journalSuffix ends the name of each queue's journal file in the
	// data directory (package store's naming).
	journalSuffix = ".journal"
	// maxFileName is the longest queue name used as a file name as it is:
	// the journal's compaction file adds ".journal.compact" and a file
	// name has at most 255 bytes.
	maxFileName = 255 - len(".journal.compact")
	// nameSuffix ends the file that holds the name of a queue whose file
	// name is shortened.
	nameSuffix = ".name"
)

// fileName is the name the store is given for queue name: the name
// itself, or for a name too long to be a file name its first bytes, '~'
// (which no queue name holds) and a hash of the whole name; the full name
// is then kept beside the journal.
func fileName(name string) string {
	if len(name) <= maxFileName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxFileName-33] + "~" + hex.EncodeToString(sum[:16])
}

// JournalBackend is the Backend that keeps each queue durably in a
// journal file under a data directory, with package store. It is safe
// for concurrent use.
type JournalBackend struct {
	dir string
	log *slog.Logger
}

// NewJournalBackend returns the backend of the data directory dir.
func NewJournalBackend(dir string, log *slog.Logger) *JournalBackend {
	return &JournalBackend{dir: dir, log: log}
}

// Open opens (creating) the journal of queue name and replays it.
func (b *JournalBackend) Open(name string, cfg StoreConfig) (Store, error) {
	sc, err := toStoreConfig(cfg)
	if err != nil {
		return nil, err
	}
	file := fileName(name)
	var namePath string
	if file != name {
		namePath = filepath.Join(b.dir, file+nameSuffix)
		if err := writeNameFile(namePath, name); err != nil {
			return nil, fmt.Errorf("cannot open queue %q: %w", name, err)
		}
	}
	q, err := store.Open(b.dir, file, sc, b.log)
	if err != nil {
		return nil, mapStoreErr(err)
	}
	return journalStore{q: q, namePath: namePath}, nil
}

// writeNameFile writes the file of a shortened queue name, durably: the
// journal beside it is useless without it. Its temporary file is named
// "." + the file's name + digits, which stays within 255 bytes for the
// longest name and, holding a '.', is no queue's.
func writeNameFile(path, name string) error {
	return atomicfile.Write(path, atomicfile.Options{Mode: 0o644, Durable: true}, func(w io.Writer) error {
		_, err := io.WriteString(w, name)
		return err
	})
}

// Names lists the queues that have a journal in the data directory.
func (b *JournalBackend) Names() ([]string, error) {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, journalSuffix) {
			name := strings.TrimSuffix(n, journalSuffix)
			if strings.Contains(name, "~") {
				full, err := os.ReadFile(filepath.Join(b.dir, name+nameSuffix))
				if err != nil || fileName(string(full)) != name {
					b.logger().Warn("journal of a shortened queue name without its name file: skipped", "file", n)
					continue
				}
				name = string(full)
			}
			if CheckName(name) == nil {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

func toStoreConfig(cfg StoreConfig) (store.Config, error) {
	sc := store.Config{
		MaxItems:           cfg.MaxItems,
		MaxSize:            cfg.MaxSize,
		MaxItemSize:        cfg.MaxItemSize,
		MaxAge:             cfg.MaxAge,
		DiscardOldWhenFull: cfg.DiscardOldWhenFull,
		MaxMemorySize:      cfg.MaxMemorySize,
		MaxJournalSize:     cfg.MaxJournalSize,
	}
	if cfg.Sync != "" {
		p, err := store.ParseSync(cfg.Sync)
		if err != nil {
			return store.Config{}, err
		}
		sc.Sync = p
	}
	if fn := cfg.Expired; fn != nil {
		sc.Expired = func(it store.Item) { fn(fromStoreItem(it)) }
	}
	return sc, nil
}

func fromStoreItem(it store.Item) Item {
	return Item{Data: it.Data, Flags: it.Flags, Added: it.Added, Expiry: it.Expiry}
}

// mapStoreErr makes the store's refusals the ones package queue answers.
func mapStoreErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrFull):
		return fmt.Errorf("%w: %w", ErrFull, err)
	case errors.Is(err, store.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, store.ErrClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, store.ErrNoTransaction):
		return fmt.Errorf("%w: %w", ErrNoTransaction, err)
	case errors.Is(err, store.ErrBadName):
		return fmt.Errorf("%w: %w", ErrBadName, err)
	}
	return err
}

func (b *JournalBackend) logger() *slog.Logger {
	if b.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.log
}

// journalStore is a store.Queue seen as a Store.
type journalStore struct {
	q        *store.Queue
	namePath string // the file of a shortened name; "" if none
}

func (s journalStore) SetConfig(cfg StoreConfig) {
	sc, err := toStoreConfig(cfg)
	if err != nil {
		return // sync policies are checked when the configuration is loaded
	}
	s.q.SetConfig(sc)
}

func (s journalStore) Put(it Item) error {
	return mapStoreErr(s.q.Put(store.Item{Data: it.Data, Flags: it.Flags, Added: it.Added, Expiry: it.Expiry}))
}

func (s journalStore) Take(now time.Time, open bool) (Item, uint64, bool, error) {
	it, xid, ok, err := s.q.Take(now, open)
	return fromStoreItem(it), xid, ok, mapStoreErr(err)
}

func (s journalStore) Peek(now time.Time) (Item, bool, error) {
	it, ok, err := s.q.Peek(now)
	return fromStoreItem(it), ok, mapStoreErr(err)
}

func (s journalStore) Confirm(xid uint64) error { return mapStoreErr(s.q.Confirm(xid)) }
func (s journalStore) Abort(xid uint64) error   { return mapStoreErr(s.q.Abort(xid)) }
func (s journalStore) Flush() error             { return mapStoreErr(s.q.Flush()) }
func (s journalStore) Delete() error {
	err := mapStoreErr(s.q.Delete())
	if err == nil && s.namePath != "" {
		os.Remove(s.namePath)
	}
	return err
}
func (s journalStore) Close() error { return mapStoreErr(s.q.Close()) }
func (s journalStore) Len() int     { return s.q.Len() }

func (s journalStore) Stats() StoreStats {
	st := s.q.Stats()
	return StoreStats{
		Items: int64(st.Items), Bytes: st.Bytes, TotalItems: int64(st.TotalItems),
		LogSize: st.LogSize, ExpiredItems: int64(st.ExpiredItems), MemItems: int64(st.MemItems),
		MemBytes: st.MemBytes, Age: st.Age, Discarded: int64(st.Discarded),
		OpenTransactions: int64(st.OpenTransactions),
	}
}

// Package store is corvid queue's storage: one durable FIFO per queue, held
// in memory with every change appended to a journal file, as Kestrel keeps
// its queues.
//
// # Journal
//
// Each queue has one file, <dir>/<name>.journal, of records framed with
// their length and a CRC-32C (see record.go). Open replays it; a torn or
// corrupt tail (a crash in the middle of a write, a flipped bit) is found by
// the length and checksum, truncated, and logged: it never stops the queue
// from opening. Items that were open (taken in a transaction and not yet
// confirmed) when the journal was last written go back to the head, in the
// order they were put, and the abort is journaled so the next replay agrees.
//
// The journal is compacted when the queue drains to empty and the file
// passed 1 MiB (or a quarter of MaxJournalSize): with no transaction open
// the file is cut to empty in place (and synced, unless SyncNever); else
// a fresh file holds only the open transactions. It is also compacted when
// the file passes MaxJournalSize (16 MiB by default, as Kestrel) and is
// more than twice the size of the queue's state. Compaction writes the
// state to <name>.journal.compact, fsyncs it, renames it over the journal
// and fsyncs the directory, so a crash leaves either journal whole.
//
// # Durability
//
// SyncNever and SyncInterval keep new records in memory for at most
// writeDelay (1 ms) or 64 KiB, then write them in one write, so a busy
// queue makes one system call per millisecond rather than one per item
// (a killed process loses at most that last millisecond). An item taken
// while its add record is still in memory and first in line is cut from
// it: when consumers keep up, items never reach the disk. SyncInterval
// also fsyncs Every after the first write since the last fsync. An idle
// queue's writer sleeps.
//
// SyncAlways writes every record at once and fsyncs before Put, Confirm,
// Flush and a non-transactional Take return: after a crash every
// acknowledged Put is present exactly once and in order, confirmed items
// are gone, and open items are back. Opening a transaction and aborting
// one are not waited for: losing either leaves the item queued, which is
// what a crash does to an open item anyway.
//
// SyncAlways is a group commit: a record is written under the queue's lock,
// then the caller waits for an fsync without the lock; callers that wrote
// while an fsync was running share the next one.
//
// # Memory
//
// Past MaxMemorySize of item data, new items are kept only in the journal
// (Kestrel's read-behind) and read back in order as the head drains, so
// memory stays bounded whatever the queue's length.
//
// # Why its own log
//
// A queue needs appends at the tail, removals at the head and one fsync per
// group of writers; an embedded key-value store gives a B-tree (bbolt) or
// an LSM (pebble) and then its own write amplification. Measured on this
// project's 2-core build machine (shared, loaded), 100-byte items, fsync'd
// appends for 3 s, one writer and 16:
//
//	               1 writer    16 writers
//	this journal    640-970    3750-3860 puts/s  (Put, SyncAlways)
//	bbolt           130-280     570-750 puts/s  (Update; Batch for 16)
//	pebble          410-420    3140-4040 puts/s  (Set with pebble.Sync)
//
// bbolt rewrites B-tree pages and syncs twice per commit; pebble matches
// the journal only with many writers and would bring a large dependency,
// a second log format and background compactions of its own. The journal
// is a few hundred lines that replay, truncate and compact the way a
// queue needs.
//
// # Speed
//
// From the benchmarks (go test -bench . ./queue/store), on the same loaded
// machine (absolute numbers vary several-fold with the load):
//
//	BenchmarkPutTake/never/100B     0.4-1.5 M put+take/s (about 0.7 us of CPU each)
//	BenchmarkPutTake/never/4096B    60k-150k put+take/s (about 6 us of CPU each)
//	BenchmarkPutTakeOpen            0.6-1.4 M put+take+confirm/s
//	BenchmarkPutAlways/writers=1    410-970 puts/s (one fsync each)
//	BenchmarkPutAlways/writers=16   3750-7400 puts/s: 8-9x one writer
//	BenchmarkMemoryPerItem          about 230 bytes of heap per queued 100-byte item
//
// # Locking
//
// A Queue is safe for concurrent use. mu guards the queue's state and
// file; syncMu guards the group commit's state (how far the journal is
// synced, whether an fsync runs). The two are never held at once, and
// neither is held during the fsync of a Put, Take, Confirm or Flush. Compaction runs under mu (it fsyncs the
// new file before renaming it); it happens once per MaxJournalSize or so
// of writes.
package store

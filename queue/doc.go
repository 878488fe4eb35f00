// Package queue is corvid's Kestrel-compatible queue server: named FIFO
// queues over the memcached text protocol. set enqueues, get dequeues;
// get's options (/t=<ms>, /open, /close, /abort, /peek) wait for an item
// and make reads reliable, as Kestrel's docs/guide.md describes.
//
// The Server owns connections, waiters, open reads and fanout; the items
// and their journal belong to a Store, opened through a Backend.
// JournalBackend keeps each queue durably in a journal file of a data
// directory (package queue/store); MemBackend keeps them in memory only.
//
// Bounds. Each connection is one goroutine with a 4 KiB read buffer and a
// 4 KiB write buffer: a client that stops reading blocks its own
// goroutine once the write buffer is full, and nothing more is read from
// it. A set larger than its queue's max_item_size (1 MiB when unset) is
// answered NOT_STORED and its data discarded as it arrives. A client
// blocked in get/t= is a waiter: a small struct and a list element on its
// queue, with the connection's one reusable timer and no goroutine of its
// own. A connection waits for at most one get at a time, so waiters are
// bounded by Config.MaxConns (4096 by default), and also by
// Config.MaxWaiters (a get/t= beyond it answers at once, as on timeout).
// Queues are bounded by Config.MaxQueues (each holds a journal file open).
//
// Replies are Kestrel's: STORED, NOT_STORED (full or too large), END,
// DELETED, "Flushed all queues.", "Reloaded config.", and a bare
// CLIENT_ERROR (or ERROR, for a second open read or a plain get while one
// is open) after which the connection is closed. A queue name that cannot
// be one (empty, over 250 bytes, holding whitespace, a control character,
// '/', '~' or '.') is answered "CLIENT_ERROR queue: bad queue name: ..."
// and the connection kept.
package queue

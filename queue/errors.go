package queue

import "errors"

var (
	// ErrFull is returned by a Store's Put when the queue is full and
	// does not discard old items.
	ErrFull = errors.New("queue: full")
	// ErrTooLarge is returned by a Store's Put for an item over the
	// queue's max_item_size.
	ErrTooLarge = errors.New("queue: item too large")
	// ErrNoTransaction is returned by Confirm and Abort for an unknown xid.
	ErrNoTransaction = errors.New("queue: no such transaction")
	// ErrClosed is returned by a closed Store.
	ErrClosed = errors.New("queue: closed")
	// ErrTooManyQueues is returned when a command names a new queue and
	// the server holds Config.MaxQueues queues.
	ErrTooManyQueues = errors.New("queue: too many queues")
	// ErrBadName is returned for a queue name the server refuses.
	ErrBadName = errors.New("queue: bad queue name")
)

package store

import "errors"

var (
	// ErrFull is returned by Put when the queue holds MaxItems items or
	// MaxSize bytes and DiscardOldWhenFull is off.
	ErrFull = errors.New("store: queue full")
	// ErrTooLarge is returned by Put for an item larger than MaxItemSize.
	ErrTooLarge = errors.New("store: item too large")
	// ErrClosed is returned by every operation on a closed or deleted queue.
	ErrClosed = errors.New("store: queue closed")
	// ErrNoTransaction is returned by Confirm and Abort for an xid that is
	// not open.
	ErrNoTransaction = errors.New("store: no such transaction")
	// ErrBadName is returned by Open for a name that cannot be a file name.
	ErrBadName = errors.New("store: bad queue name")
)

// errCorrupt marks a journal record that cannot be replayed: a torn write,
// a checksum mismatch or an operation that does not fit the state.
var errCorrupt = errors.New("store: corrupt journal record")

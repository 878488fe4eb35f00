package mctool

import "errors"

var (
	// ErrAddress reports a server address that is not host:port.
	ErrAddress = errors.New("mctool: malformed address")
	// ErrNotMemcached reports a server whose reply is not memcached's.
	ErrNotMemcached = errors.New("mctool: not a memcached server")
	// ErrTimeout reports a server that did not answer in time.
	ErrTimeout = errors.New("mctool: no reply in time")
	// ErrDumpFile reports a dump file that is truncated or corrupt.
	ErrDumpFile = errors.New("mctool: bad dump file")
)

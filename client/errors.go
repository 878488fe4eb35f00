package client

import (
	"errors"
	"fmt"
)

var (
	// ErrCacheMiss means the key is not in the cache.
	ErrCacheMiss = errors.New("client: cache miss")
	// ErrNotStored means an add, replace, append or prepend found the key
	// in the wrong state.
	ErrNotStored = errors.New("client: not stored")
	// ErrCASConflict means the item changed since its CAS value was read.
	ErrCASConflict = errors.New("client: compare-and-swap conflict")
	// ErrMalformedKey means a key is empty, longer than 250 bytes or holds
	// a space or control character, and Config.HashLongKeys is off.
	ErrMalformedKey = errors.New("client: malformed key")
	// ErrNoServers means the Config lists no servers.
	ErrNoServers = errors.New("client: no servers")
	// ErrServerDead means the key's server failed too often and is out
	// until its retry timeout passes (with FailurePolicy FailError).
	ErrServerDead = errors.New("client: server marked dead")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrNotSupported means the server does not speak the meta protocol.
	ErrNotSupported = errors.New("client: not supported by server")
)

// ServerError is an error talking to one server; it names the server.
type ServerError struct {
	Addr string
	Op   string
	Err  error
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("client: %s %s: %v", e.Op, e.Addr, e.Err)
}

func (e *ServerError) Unwrap() error { return e.Err }

// ReplyError is an error line the server answered (ERROR, CLIENT_ERROR …,
// SERVER_ERROR …); the connection stays usable.
type ReplyError struct {
	Line string
}

func (e *ReplyError) Error() string { return "client: server replied " + e.Line }

// resumable reports whether the connection that produced err can be reused:
// the server answered and the reply was read whole.
func resumable(err error) bool {
	var re *ReplyError
	return errors.Is(err, ErrCacheMiss) || errors.Is(err, ErrNotStored) ||
		errors.Is(err, ErrCASConflict) || errors.As(err, &re)
}

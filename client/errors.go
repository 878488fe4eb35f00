package client

import (
	"errors"
	"fmt"
	"strconv"
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
	// a space or control character, and Config.HashLongKeys is off; or
	// that a Stats argument holds a control character.
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
	// ErrAppendCompressed means an Append or Prepend was refused because
	// the client compresses values: joined to a compressed value, the
	// bytes would corrupt it.
	ErrAppendCompressed = errors.New("client: append and prepend are refused when compressing")
	// ErrCompressFlag means an item's Flags use Config.CompressFlag, the
	// bit that marks compressed values.
	ErrCompressFlag = errors.New("client: flags use the compression flag")
	// ErrValueTooLarge means a compressed value would uncompress to more
	// than Config.MaxUncompressedSize bytes.
	ErrValueTooLarge = errors.New("client: value too large")
	// ErrReplicatedCAS means a compare-and-swap was refused because its key
	// is replicated (Config.Replicas): a CAS unique is one server's, read
	// from one copy, and would be compared with the other copies' own.
	ErrReplicatedCAS = errors.New("client: compare-and-swap of a replicated key")
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

// ReplyError is a whole error line (ERROR, CLIENT_ERROR …, SERVER_ERROR …)
// the server answered to one request, with nothing else of the request
// left unread; the connection stays usable.
type ReplyError struct {
	Line string
}

func (e *ReplyError) Error() string { return "client: server replied " + e.Line }

// ProtocolError is a reply the request did not expect: an unknown line, a
// malformed header whose data block cannot be skipped, a value for a key
// that was not asked for, or an error line in the middle of a reply or
// after a request whose data block the server may have read as a command.
// What else is unread on the connection is unknown, so it is closed; the
// server is not counted as failing, since it answered.
type ProtocolError struct {
	// Line is the offending reply line (without "\r\n"), when there is one.
	Line string
	// Reason says what was wrong with it.
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Line == "" {
		return "client: " + e.Reason
	}
	return "client: " + e.Reason + ": " + strconv.Quote(e.Line)
}

// Unwrap returns the ReplyError of an error line that came out of turn,
// so that errors.As still finds the server's words.
func (e *ProtocolError) Unwrap() error {
	if e.Line != "" && isErrorLine([]byte(e.Line)) {
		return &ReplyError{Line: e.Line}
	}
	return nil
}

// resumable reports whether the connection that produced err can be reused:
// the server answered and the reply was read whole, and nothing else is
// pending on the connection. It is the one place that decides this; every
// error that is not listed here closes the connection.
func resumable(err error) bool {
	if err == nil {
		return true
	}
	var pe *ProtocolError
	if errors.As(err, &pe) || errors.Is(err, ErrNotSupported) {
		return false
	}
	var re *ReplyError
	return errors.Is(err, ErrCacheMiss) || errors.Is(err, ErrNotStored) ||
		errors.Is(err, ErrCASConflict) || errors.As(err, &re)
}

// serverFault reports whether err, which closes the connection, counts as
// a failure of the server: a network error or a timeout, not an answer the
// client could not use.
func serverFault(err error) bool {
	var pe *ProtocolError
	return !errors.As(err, &pe) && !errors.Is(err, ErrNotSupported)
}

package protocol

import "errors"

// Errors returned by Parse. ErrorReply maps each to the line memcached sends.
var (
	// ErrUnknownCommand is answered "ERROR". memcached also gives it for a
	// known command with a wrong number of tokens.
	ErrUnknownCommand = errors.New("protocol: unknown command")
	// ErrBadFormat is answered "CLIENT_ERROR bad command line format".
	ErrBadFormat = errors.New("protocol: bad command line format")
	// ErrDeleteUsage is answered "CLIENT_ERROR bad command line format.
	// Usage: delete <key> [noreply]" (two spaces after the period): delete
	// with a time argument other than "0", or with extra tokens.
	ErrDeleteUsage = errors.New("protocol: bad command line format; usage: delete <key> [noreply]")
	// ErrInvalidDelta is answered "CLIENT_ERROR invalid numeric delta argument".
	ErrInvalidDelta = errors.New("protocol: invalid numeric delta argument")
	// ErrInvalidExptime is answered "CLIENT_ERROR invalid exptime argument"
	// (touch, gat, gats, and flush_all's delay).
	ErrInvalidExptime = errors.New("protocol: invalid exptime argument")
	// ErrInvalidMemlimit is answered "ERROR", as memcached answers a
	// cache_memlimit whose argument is not a number.
	ErrInvalidMemlimit = errors.New("protocol: invalid memory limit")
	// ErrLineTooLong means the client sent a line longer than memcached
	// accepts without a newline; the connection is closed.
	ErrLineTooLong = errors.New("protocol: line too long")
)

// Reply lines for the errors above, without "\r\n".
const (
	replyError       = "ERROR"
	replyBadFormat   = "CLIENT_ERROR bad command line format"
	replyDeleteUsage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyBadDelta    = "CLIENT_ERROR invalid numeric delta argument"
	replyBadExptime  = "CLIENT_ERROR invalid exptime argument"
)

// ErrorReply returns the reply line (without "\r\n") memcached sends for err,
// and whether the connection must be closed instead. An empty line with
// close false means no reply (the command asked for noreply). It is safe for
// concurrent use.
func ErrorReply(err error, noreply bool) (line string, close bool) {
	switch {
	case errors.Is(err, ErrLineTooLong):
		return "", true
	case errors.Is(err, ErrUnknownCommand), errors.Is(err, ErrInvalidMemlimit):
		line = replyError
	case errors.Is(err, ErrDeleteUsage):
		line = replyDeleteUsage
	case errors.Is(err, ErrInvalidDelta):
		line = replyBadDelta
	case errors.Is(err, ErrInvalidExptime):
		line = replyBadExptime
	default:
		line = replyBadFormat
		if l, ok := metaReplies[err]; ok {
			line = l
		}
	}
	if noreply {
		return "", false
	}
	return line, false
}

// Errors returned by ParseMeta, and answered by the server for meta
// commands; ErrorReply maps each to the line memcached 1.6.18 sends.
var (
	// ErrNotMeta means the line is not a meta command; Parse reads it.
	ErrNotMeta                = errors.New("protocol: not a meta command")
	ErrMetaGetTooManyFlags    = errors.New("protocol: options flags are too long")
	ErrMetaTooManyFlags       = errors.New("protocol: options flags too long")
	ErrMetaDuplicateFlag      = errors.New("protocol: duplicate flag")
	ErrMetaInvalidFlag        = errors.New("protocol: invalid flag")
	ErrMetaInvalidOrDuplicate = errors.New("protocol: invalid or duplicate flag")
	ErrMetaBadToken           = errors.New("protocol: bad token in command line format")
	ErrMetaKeyDecode          = errors.New("protocol: error decoding key")
	ErrMetaModeLength         = errors.New("protocol: incorrect length for M token")
	ErrMetaInitial            = errors.New("protocol: invalid numeric initial value")
	ErrMetaDelta              = errors.New("protocol: invalid numeric delta value")
	ErrMetaOpaqueTooLong      = errors.New("protocol: opaque token too long")
	ErrMetaSetMode            = errors.New("protocol: invalid mode for ms M token")
	ErrMetaArithMode          = errors.New("protocol: invalid mode for ma M token")
)

// metaReplies are the reply lines of the meta errors.
var metaReplies = map[error]string{
	ErrMetaGetTooManyFlags:    "CLIENT_ERROR options flags are too long",
	ErrMetaTooManyFlags:       "CLIENT_ERROR options flags too long",
	ErrMetaDuplicateFlag:      "CLIENT_ERROR duplicate flag",
	ErrMetaInvalidFlag:        "CLIENT_ERROR invalid flag",
	ErrMetaInvalidOrDuplicate: "CLIENT_ERROR invalid or duplicate flag",
	ErrMetaBadToken:           "CLIENT_ERROR bad token in command line format",
	ErrMetaKeyDecode:          "CLIENT_ERROR error decoding key",
	ErrMetaModeLength:         "CLIENT_ERROR incorrect length for M token",
	ErrMetaInitial:            "CLIENT_ERROR invalid numeric initial value",
	ErrMetaDelta:              "CLIENT_ERROR invalid numeric delta value",
	ErrMetaOpaqueTooLong:      "CLIENT_ERROR opaque token too long",
	ErrMetaSetMode:            "CLIENT_ERROR invalid mode for ms M token",
	ErrMetaArithMode:          "CLIENT_ERROR invalid mode for ma M token",
}

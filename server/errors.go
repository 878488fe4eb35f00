package server

import "errors"

// Errors New returns for a configuration it cannot serve (an auth file
// error is wrapped with the file's name); compare with errors.Is.
var (
	// ErrAuthFileMalformed is returned for an auth file line that has no
	// ':' in its first 255 bytes (memcached's "malformed entry").
	ErrAuthFileMalformed = errors.New("server: auth file has a malformed entry, should be 'user:password'")
	// ErrAuthWithUDP is returned when both an auth file and UDP are
	// configured: UDP requests cannot authenticate.
	ErrAuthWithUDP = errors.New("server: cannot use UDP with ascii authentication enabled")
	// ErrSASLNeedsBinary is returned when SASL is required of a server
	// that also serves the ASCII protocol, whose clients could not
	// authenticate.
	ErrSASLNeedsBinary = errors.New("server: SASL requires the binary protocol")
)

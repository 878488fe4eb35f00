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
	// ErrMaxConnsTooLow is returned for a Config.MaxConns that memcached
	// would not start with: too low for the descriptors it holds itself
	// with the same threads and listeners (see Config.MaxConns).
	ErrMaxConnsTooLow = errors.New("server: maxconns setting is too low, use -c to increase")
	// ErrSASLNeedsBinary is returned when SASL is required of a server
	// that also serves the ASCII protocol, whose clients could not
	// authenticate.
	ErrSASLNeedsBinary = errors.New("server: SASL requires the binary protocol")
	// ErrAuthNeedsASCII is returned when an auth file is given to a server
	// that serves the binary protocol, whose clients could not
	// authenticate.
	ErrAuthNeedsASCII = errors.New("server: ascii authentication requires the ascii protocol")
	// ErrSASLWithUDP is returned when both SASL and UDP are configured:
	// the clients of a UDP socket share one connection, so one client's
	// authentication would serve them all.
	ErrSASLWithUDP = errors.New("server: cannot enable UDP while using binary SASL authentication")
	// ErrTLSConfig matches every error New returns for a TLS setting it
	// cannot use (certificate, key or CA files, cipher list); their text
	// is memcached's message.
	ErrTLSConfig = errors.New("server: TLS configuration")
	// ErrListen matches every error New returns for a listener it cannot
	// open (an address in use or not the machine's, a bad port); the
	// text names the listener and the system's reason.
	ErrListen = errors.New("server: cannot listen")
	// ErrTLSWithoutTCP is returned when TLS is configured without a TCP
	// listener, the only kind that serves it (memcached's message).
	ErrTLSWithoutTCP error = tlsConfigError("ERROR: You cannot enable SSL without a TCP port.")
)

// tlsConfigError is a TLS setting New cannot use; its text is memcached's
// message and it matches ErrTLSConfig.
type tlsConfigError string

func (e tlsConfigError) Error() string        { return string(e) }
func (e tlsConfigError) Is(target error) bool { return target == ErrTLSConfig }

// listenError is a listener New cannot open; it matches ErrListen.
type listenError struct{ err error }

func (e listenError) Error() string        { return e.err.Error() }
func (e listenError) Unwrap() error        { return e.err }
func (e listenError) Is(target error) bool { return target == ErrListen }

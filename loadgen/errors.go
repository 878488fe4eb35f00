package loadgen

import "errors"

var (
	// ErrConfig is wrapped by every error about a Config or a flag value.
	ErrConfig = errors.New("loadgen: bad configuration")
	// ErrProtocol is wrapped by errors about a reply the generator cannot
	// parse; the connection is closed after one.
	ErrProtocol = errors.New("loadgen: malformed reply")
	// ErrNoMeta is wrapped when a server does not answer the meta protocol.
	ErrNoMeta = errors.New("loadgen: server does not speak the meta protocol")
)

package proxy

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
)

// Errors of the proxy's data path. A failed request is answered
// "SERVER_ERROR " + errorText(err), twemproxy's reply for the same
// failure.
var (
	// errGarbage is a backend reply the proxy cannot frame; the
	// connection is closed (twemproxy: EINVAL).
	errGarbage = errors.New("proxy: garbage reply from server")
	// errNoServer means every server of the pool is ejected (twemproxy:
	// ECONNREFUSED).
	errNoServer = errors.New("proxy: no live server")
	// errQueueFull means a server's queue of unsent requests is at its
	// bound.
	errQueueFull = errors.New("proxy: server queue is full")
	// errNoMemory means the replies held for clients are at their bound
	// and this client may hold no more (twemproxy: ENOMEM).
	errNoMemory = errors.New("proxy: replies held for clients are at their bound")
	// errClosed means the proxy is shutting down.
	errClosed = errors.New("proxy: closed")
	// errRedis refuses a redis pool.
	errRedis = errors.New("redis is not supported; corvid proxy speaks memcached")
	// errNoPools refuses a configuration without pools.
	errNoPools = errors.New("proxy: no pools")
	// errDuplicatePool refuses two pools of one name.
	errDuplicatePool = errors.New("proxy: two pools have this name")
)

// errorText returns the reason twemproxy gives for err in its
// "SERVER_ERROR <reason>" reply: the C library's strerror text of the
// system error ("Connection refused", "Connection timed out"), "unknown"
// for a connection the server closed.
func errorText(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "Connection timed out"
	case errors.Is(err, errGarbage):
		return "Invalid argument"
	case errors.Is(err, errNoServer):
		return "Connection refused"
	case errors.Is(err, errQueueFull):
		return "server queue is full"
	case errors.Is(err, errNoMemory):
		return "Cannot allocate memory"
	case errors.Is(err, errClosed):
		return "proxy is shutting down"
	case errors.Is(err, io.EOF):
		return "unknown"
	case errors.As(err, &errno):
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "Connection timed out"
	}
	return "unknown"
}

// errReadBufOOM ends a client connection whose request needs more read
// buffer than the proxy's bound leaves.
var errReadBufOOM = errors.New("proxy: out of memory reading request")

// errQuit ends a client connection that sent quit.
var errQuit = errors.New("proxy: client quit")

//go:build !unix

package tcpnet

import (
	"net"
	"os"
)

// ListenUnix listens on the Unix socket path. There is no umask here:
// the caller sets the file's mode afterwards.
func ListenUnix(path string, _ os.FileMode) (net.Listener, error) {
	return net.Listen("unix", path)
}

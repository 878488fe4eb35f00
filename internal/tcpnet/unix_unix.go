//go:build unix

package tcpnet

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// umaskMu serialises ListenUnix's changes of the process's umask.
var umaskMu sync.Mutex

// ListenUnix listens on the Unix socket path. A mode other than 0 is
// the socket file's mode from its creation, as memcached creates its
// socket under a umask that leaves only the -a mask's bits: a socket
// created with the usual umask and restricted afterwards would meanwhile
// accept (into its backlog) the connections of users the mode excludes.
// The umask is the process's: files other goroutines create in the
// meantime get a narrower mode, never a wider one.
func ListenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if mode == 0 {
		return net.Listen("unix", path)
	}
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(int(^mode & 0o777))
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

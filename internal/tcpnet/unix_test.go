//go:build unix

package tcpnet

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestListenUnixMode checks that the socket file has the mode asked for
// as soon as it listens, whatever the process's umask, and the umask's
// mode when none is asked for.
func TestListenUnixMode(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	for _, tc := range []struct{ mode, want os.FileMode }{{0o700, 0o700}, {0o660, 0o660}, {0, 0o775}} {
		path := filepath.Join(t.TempDir(), "s.sock")
		ln, err := ListenUnix(path, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("mode %#o: socket file %#o, want %#o", tc.mode, got, tc.want)
		}
	}
	if now := syscall.Umask(0o002); now != 0o002 {
		t.Errorf("umask %#o after ListenUnix, want it restored to 0o002", now)
	}
}

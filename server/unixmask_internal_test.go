//go:build unix

package server

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestUnixSocketModeFromTheStart checks that the Unix socket file has the
// -a mask's mode from the moment it accepts connections, as memcached
// creates it under that umask: a socket created with the process's umask
// and restricted afterwards would queue the connections of users the mask
// excludes meanwhile, to be served later.
func TestUnixSocketModeFromTheStart(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "corvid.sock")
	var mode os.FileMode
	testHookUnixListening = func(p string) {
		if fi, err := os.Lstat(p); err == nil {
			mode = fi.Mode().Perm()
		} else {
			t.Errorf("socket file: %v", err)
		}
	}
	defer func() { testHookUnixListening = nil }()
	s, err := New(Config{UnixPath: path, UnixMask: 0o700})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mode != 0o700 {
		t.Fatalf("socket file mode %#o while listening, want %#o", mode, 0o700)
	}
}

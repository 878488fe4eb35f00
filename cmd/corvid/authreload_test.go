//go:build unix

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAuthFileReloadOnSIGHUP checks that SIGHUP reads the -Y auth file
// again, as memcached does: a user removed from it can no longer
// authenticate.
func TestAuthFileReloadOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(path, []byte("alice:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServerProcWith(t, procOptions{probe: func(addr string) bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	}}, "-Y", path)
	const alice = "set a 0 0 12\r\nalice secret\r\n"
	if got := roundTrip(t, p.addr, alice, "STORED"); !strings.HasSuffix(got, "STORED\r\n") {
		t.Fatalf("alice before SIGHUP: %q", got)
	}
	if err := os.WriteFile(path, []byte("bob:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reload is asynchronous: poll until alice is refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := roundTrip(t, p.addr, alice+"set a 0 0 6\r\nbob pw\r\n", "STORED")
		if got == "CLIENT_ERROR authentication failure\r\nSTORED\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP alice then bob got %q\n%s", got, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(t, syscall.SIGTERM)
}

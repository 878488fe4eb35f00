//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFileLines polls path until it holds n lines.
func waitFileLines(t *testing.T, path string, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") >= n {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q, want %d lines", path, b, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKlogReopenOnSIGHUP rotates the command log as logrotate does: rename
// the file, send SIGHUP, and expect new lines in a new file.
func TestKlogReopenOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "commands.log")
	p := startServerProc(t, "-o", "klog_file="+path)
	roundTrip(t, p.addr, "get before\r\n", "END")
	waitFileLines(t, path, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reopen is asynchronous: poll with requests until one lands in
	// the new file.
	deadline := time.Now().Add(10 * time.Second)
	for {
		roundTrip(t, p.addr, "get after\r\n", "END")
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), `"get after" 1 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line in the reopened file\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if old := waitFileLines(t, path+".1", 1); !strings.Contains(old, `"get before" 1 0`) {
		t.Fatalf("rotated file: %q", old)
	}
	p.stop(t, syscall.SIGTERM)
}

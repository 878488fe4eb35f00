//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// waitPidFile polls path until it names pid, for at most ten seconds.
func waitPidFile(t *testing.T, path string, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for readPidFile(path) != pid {
		if time.Now().After(deadline) {
			b, err := os.ReadFile(path)
			t.Fatalf("%s holds %q (%v), want pid %d", path, b, err, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPidFileWithoutDaemon: memcached writes -P's pid file whether or not
// it daemonizes (a supervisor such as systemd keeps it in the foreground);
// so does corvid server, which also removes it when it stops.
func TestPidFileWithoutDaemon(t *testing.T) {
	t.Run("memcached", func(t *testing.T) {
		bin := testutil.MemcachedPath()
		if bin == "" {
			t.Skip("memcached is not installed")
		}
		// memcached writes it as nobody when started by root.
		dir := t.TempDir()
		os.Chmod(filepath.Dir(dir), 0o711)
		os.Chmod(dir, 0o777)
		path := filepath.Join(dir, "memcached.pid")
		args := []string{"-p", strconv.Itoa(freePort(t)), "-l", "127.0.0.1", "-U", "0", "-P", path}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "nobody")
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitPidFile(t, path, cmd.Process.Pid)
	})
	t.Run("corvid", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "corvid.pid")
		p := startServerProc(t, "-P", path)
		waitPidFile(t, path, p.cmd.Process.Pid)
		p.stop(t, syscall.SIGTERM)
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("pid file left after a clean stop: %v", err)
		}
	})
}

// TestPidFileWrittenWhole writes a pid file over and over while another
// goroutine reads it: the reader finds the whole id every time, never an
// empty or partial file, and no scratch file is left beside it.
func TestPidFileWrittenWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "corvid.pid")
	want := strconv.Itoa(os.Getpid()) + "\n"
	if err := writePidFile(path, true); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		defer close(bad)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != want {
				bad <- string(b)
				return
			}
		}
	}()
	for range 500 {
		if err := writePidFile(path, true); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if b, ok := <-bad; ok {
		t.Fatalf("a reader found %q in the pid file, want %q", b, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the directory, want the pid file alone", len(ents))
	}
}

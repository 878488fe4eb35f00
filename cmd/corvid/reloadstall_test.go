//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// stallConfig replaces the configuration file at path with a FIFO no one
// writes to: reading it blocks, as a read from a hung network file system
// does. The test's end opens it for writing, which lets a reader that is
// still blocked go.
func stallConfig(t *testing.T, path string) {
	t.Helper()
	fifo := path + ".fifo"
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("cannot make a FIFO: %v", err)
	}
	if err := os.Rename(fifo, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
	})
}

// routerWithStallableConfig starts corvid router on a configuration file
// and returns the process and the file's path.
func routerWithStallableConfig(t *testing.T) (*serverProc, string) {
	t.Helper()
	path := writeFile(t, t.TempDir(), "router.json",
		`{"pools": {"a": {"servers": ["127.0.0.1:1"]}}, "route": "PoolRoute|a"}`)
	port := testutil.FreePorts(t, 1)[0]
	return startRouterProc(t, "-f", path, "-p", strconv.Itoa(port), "--listen-addresses", "127.0.0.1"), path
}

// A reload that cannot read its file (SIGHUP, then SIGTERM) must not keep
// corvid router from stopping.
func TestBinaryRouterStopsWhileSIGHUPReloadStalls(t *testing.T) {
	p, path := routerWithStallableConfig(t)
	stallConfig(t, path)
	hupThenStop(t, p)
}

// The same with the reload the file watcher starts.
func TestBinaryRouterStopsWhileWatcherReloadStalls(t *testing.T) {
	p, path := routerWithStallableConfig(t)
	stallConfig(t, path)
	time.Sleep(configDebounce + 500*time.Millisecond) // the watcher's reload is blocked on the file
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.exitWithin(t, 10*time.Second)
}

// A reload that cannot read its file (SIGHUP, then SIGTERM) must not keep
// corvid queue from stopping.
func TestQueueBinaryStopsWhileSIGHUPReloadStalls(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "queue.yml")
	if err := os.WriteFile(conf, []byte("default:\n  max_items: 10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startQueueProc(t, "--data-dir", filepath.Join(dir, "data"), "--config", conf)
	stallConfig(t, conf)
	hupThenStop(t, p)
}

// hupThenStop sends p SIGHUP, whose reload blocks on its stalled file,
// then SIGTERM, and fails the test unless p exits within ten seconds.
func hupThenStop(t *testing.T, p *serverProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the reload is blocked on the file
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.exitWithin(t, 10*time.Second)
}

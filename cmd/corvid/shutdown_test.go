//go:build unix

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// bigValue is the value stuck readers ask for again and again.
var bigValue = strings.Repeat("0123456789", 50*1000)

// dialProc connects to addr; the test's end closes the connection.
func dialProc(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, bufio.NewReader(nc)
}

// stuckReader stores a 500 KB value through addr and returns a connection
// that asked for it 80 times (40 MB, more than sockets buffer) and read
// only the first reply line: the server is left writing to a client that
// does not read.
func stuckReader(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, r := dialProc(t, addr)
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "set big 0 0 %d\r\n%s\r\n", len(bigValue), bigValue)
	if line, err := r.ReadString('\n'); line != "STORED\r\n" {
		t.Fatalf("set big: %q %v", line, err)
	}
	if _, err := io.WriteString(nc, strings.Repeat("get big\r\n", 80)); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); !strings.HasPrefix(line, "VALUE big ") {
		t.Fatalf("get big: %q %v", line, err)
	}
	return nc
}

// waitRefusing waits until the server has closed its listener: it has
// begun to stop.
func (p *serverProc) waitRefusing(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		nc, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the server still accepts connections:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitWithin waits up to limit for the server to exit cleanly and returns
// how long it took.
func (p *serverProc) exitWithin(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.stderr)
		}
	case <-time.After(limit):
		t.Fatalf("the server did not exit within %v\n%s", limit, p.stderr)
	}
	return time.Since(start)
}

// TestBinarySecondSignalSkipsGrace stops a server with an hour of grace and
// a client that does not read: a second signal closes the connection at
// once, and the snapshot is saved.
func TestBinarySecondSignalSkipsGrace(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	p := startServerProc(t, "-e", snap, "--shutdown-grace", "1h")
	stuckReader(t, p.addr)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitRefusing(t)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.exitWithin(t, 15*time.Second)
	if !strings.Contains(p.stderr.String(), "cache saved") {
		t.Fatalf("no save logged:\n%s", p.stderr)
	}
	p = startServerProc(t, "-e", snap)
	if got := roundTrip(t, p.addr, "get big\r\n", "END"); got != fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(bigValue), bigValue) {
		t.Fatalf("after restart: %.80q", got)
	}
}

// TestBinaryShutdownCommandThenSignal stops a server with the "shutdown"
// command, an hour of grace and a client that does not read: the stop is
// under way, so the operator's first signal is the second stop request and
// closes the connection at once, and the snapshot is saved.
func TestBinaryShutdownCommandThenSignal(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	p := startServerProc(t, "-A", "-e", snap, "--shutdown-grace", "1h")
	stuckReader(t, p.addr)
	nc, _ := dialProc(t, p.addr)
	if _, err := io.WriteString(nc, "shutdown\r\n"); err != nil {
		t.Fatal(err)
	}
	p.waitRefusing(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.exitWithin(t, 15*time.Second)
	if !strings.Contains(p.stderr.String(), "cache saved") {
		t.Fatalf("no save logged:\n%s", p.stderr)
	}
	p = startServerProc(t, "-e", snap)
	if got := roundTrip(t, p.addr, "get big\r\n", "END"); got != fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(bigValue), bigValue) {
		t.Fatalf("after restart: %.80q", got)
	}
}

// TestBinaryShutdownUnderLoad stops a server with -e that holds N items,
// serves clients under load and has stuck ones: a client that does not
// read a large reply, another that does not read its watch lines, half-sent
// requests, idle connections and a watcher that reads. The server must exit
// once the shutdown grace is over, not before, closing every connection,
// and a restart must find the N items and every store acknowledged before
// the stop. With event loops and with goroutines; the default grace (5 s)
// is checked once.
func TestBinaryShutdownUnderLoad(t *testing.T) {
	for _, c := range []struct {
		name  string
		grace time.Duration // 0: the default
		args  []string
	}{
		{"eventloops", 2 * time.Second, nil},
		{"goroutines", 2 * time.Second, []string{"--event-loops", "0"}},
		{"eventloops-default-grace", 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.grace == 0 && testing.Short() {
				t.Skip("waits the default grace")
			}
			testShutdownUnderLoad(t, c.grace, c.args)
		})
	}
}

func testShutdownUnderLoad(t *testing.T, grace time.Duration, args []string) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	args = append(args, "-e", snap)
	if grace != 0 {
		args = append(args, "--shutdown-grace", grace.String())
	} else {
		grace = server.DefaultShutdownGrace
	}
	p := startServerProc(t, args...)

	const items = 2000
	var req strings.Builder
	for i := range items {
		fmt.Fprintf(&req, "set item:%d %d 0 %d noreply\r\nvalue-%d\r\n", i, i, len(fmt.Sprint("value-", i)), i)
	}
	req.WriteString("version\r\n")
	roundTrip(t, p.addr, req.String(), "VERSION "+server.Version)

	// Stuck and idle clients.
	stuckReader(t, p.addr)
	for _, s := range []string{"set half 0 0 100\r\nabc", "get item:1", "version\r\n", "", ""} {
		nc, _ := dialProc(t, p.addr)
		io.WriteString(nc, s)
	}
	silent, r := dialProc(t, p.addr)
	silent.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(silent, "watch fetchers mutations\r\n")
	if line, err := r.ReadString('\n'); line != "OK\r\n" {
		t.Fatalf("watch: %q %v", line, err)
	}
	watcher, r := dialProc(t, p.addr)
	watcher.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(watcher, "watch mutations\r\n")
	if line, err := r.ReadString('\n'); line != "OK\r\n" {
		t.Fatalf("watch: %q %v", line, err)
	}
	watched := make(chan error, 1)
	go func() {
		watcher.SetDeadline(time.Now().Add(grace + 60*time.Second))
		_, err := io.Copy(io.Discard, r)
		watched <- err
	}()

	// Clients under load: each stores its own keys, one at a time,
	// counting the stores acknowledged, until the server closes it.
	const loaders = 4
	acked := make([]atomic.Int64, loaders)
	loadDone := make(chan struct{}, loaders)
	for g := range loaders {
		nc, r := dialProc(t, p.addr)
		go func() {
			defer func() { loadDone <- struct{}{} }()
			nc.SetDeadline(time.Now().Add(grace + 60*time.Second))
			for j := range 1 << 20 {
				v := fmt.Sprintf("load-%d-%d", g, j)
				if _, err := fmt.Fprintf(nc, "set load:%d:%d 0 0 %d\r\n%s\r\nget item:%d\r\n", g, j, len(v), v, j%items); err != nil {
					return
				}
				line, err := r.ReadString('\n')
				if err != nil || line != "STORED\r\n" {
					return
				}
				acked[g].Store(int64(j + 1))
				for line != "END\r\n" {
					if line, err = r.ReadString('\n'); err != nil {
						return
					}
				}
			}
		}()
	}
	for g := range loaders {
		for deadline := time.Now().Add(10 * time.Second); acked[g].Load() < 20; {
			if time.Now().After(deadline) {
				t.Fatalf("loader %d stores nothing", g)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took := p.exitWithin(t, grace+15*time.Second)
	if took < grace {
		t.Errorf("exited after %v, before the grace of %v was over", took, grace)
	}
	t.Logf("exited %v after SIGTERM", took)
	if !strings.Contains(p.stderr.String(), "shutdown grace over") {
		t.Errorf("closing the stuck connections was not logged:\n%s", p.stderr)
	}
	for range loaders {
		<-loadDone
	}
	if err := <-watched; errTimeout(err) {
		t.Errorf("the watcher was not closed: %v", err)
	}

	p = startServerProc(t, "-e", snap)
	want := make(map[string]string)
	for i := range items {
		want[fmt.Sprint("item:", i)] = fmt.Sprint("value-", i)
	}
	for g := range loaders {
		for j := range int(acked[g].Load()) {
			want[fmt.Sprintf("load:%d:%d", g, j)] = fmt.Sprintf("load-%d-%d", g, j)
		}
	}
	got := getAll(t, p.addr, want)
	missing := 0
	for k, v := range want {
		if got[k] != v {
			if missing < 5 {
				t.Errorf("after restart %s = %q, want %q", k, got[k], v)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d items lost", missing, len(want))
	}
}

// getAll fetches the keys of want from addr with multi-gets and returns the
// values found.
func getAll(t *testing.T, addr string, want map[string]string) map[string]string {
	t.Helper()
	nc, r := dialProc(t, addr)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	got := make(map[string]string)
	for len(keys) > 0 {
		n := min(len(keys), 100)
		if _, err := fmt.Fprintf(nc, "get %s\r\n", strings.Join(keys[:n], " ")); err != nil {
			t.Fatal(err)
		}
		keys = keys[n:]
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "END\r\n" {
				break
			}
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "VALUE" {
				t.Fatalf("get: %q", line)
			}
			v, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			got[f[1]] = strings.TrimSuffix(v, "\r\n")
		}
	}
	return got
}

// errTimeout reports whether err is a timeout.
func errTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestBinarySignalDuringRestore sends SIGTERM while the server is still
// loading a large -e snapshot: as memcached, whose signal handlers are in
// place before it restores its cache, the server finishes starting, stops
// at once and saves the cache, instead of dying on the signal (and, with a
// snapshot consumed by the load, losing it).
func TestBinarySignalDuringRestore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("watches the snapshot being read in /proc")
	}
	bin := corvidBinary(t)
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	c, err := storage.New(storage.Config{MemoryLimit: 192 << 20})
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("v", 1000))
	const items = 100_000
	for i := range items {
		if _, err := c.Store(storage.ModeSet, []byte(fmt.Sprint("key:", i)), 0, 0, value, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SaveFile(snap); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var p *serverProc
	reading := false
	onFreePort(t, func(port int) (bool, error) {
		p = launchServerProc(t, bin, port, procOptions{}, []string{"-m", "192", "-e", snap})
		// Wait for the server to open the snapshot, then signal it.
		fds := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !reading; {
			ents, _ := os.ReadDir(fds)
			for _, e := range ents {
				if target, _ := os.Readlink(filepath.Join(fds, e.Name())); target == snap {
					reading = true
				}
			}
		}
		if !reading {
			return false, nil // the load went by unseen
		}
		return false, p.cmd.Process.Signal(syscall.SIGTERM)
	})
	if !reading {
		t.Skip("the snapshot loaded before it could be seen being read")
	}
	p.exitWithin(t, 60*time.Second)
	if !strings.Contains(p.stderr.String(), "cache saved") {
		t.Fatalf("no save logged:\n%s", p.stderr)
	}
	p = startServerProc(t, "-m", "192", "-e", snap)
	if got := roundTrip(t, p.addr, "get key:0\r\n", "END"); got != "VALUE key:0 0 1000\r\n"+string(value)+"\r\nEND\r\n" {
		t.Fatalf("after restart: %.80q", got)
	}
}

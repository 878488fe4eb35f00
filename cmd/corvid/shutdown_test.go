package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// kickedWithin reports whether the server closes c within d, discarding
// what it still sends.
func (c *client) kickedWithin(d time.Duration) bool {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.r)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestModeIdleTimeoutFromLastCommand checks memcached's idle timeout
// rule: a connection is closed only while it waits for a command, once
// its last command is older than the timeout. A client halfway through a
// value, or not reading its replies, stalls for as long as it likes, and is
// closed soon after it finishes if it sends nothing more.
func TestModeIdleTimeoutFromLastCommand(t *testing.T) {
	const idle = 200 * time.Millisecond
	const stall = 3 * idle
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		srv, addr := start(t, mode(Config{IdleTimeout: idle}))
		kicks := 0

		// Halfway through a value held in the read buffer, and through
		// one streamed into its item.
		for _, size := range []int{10, 512 << 10} {
			value := strings.Repeat("v", size)
			c := dial(t, "tcp", addr)
			c.send(fmt.Sprintf("set k 0 0 %d\r\n%s", size, value[:size/2]))
			time.Sleep(stall)
			c.expect(value[size/2:]+"\r\nmg k s\r\n", "STORED", fmt.Sprintf("HD s%d", size))
			if !c.kickedWithin(5 * time.Second) {
				t.Errorf("value of %d: not closed once idle", size)
			}
			kicks++
		}

		// Not reading a long reply. Its values are stored in the cache
		// directly, not set by the client: on a loaded machine a 512 KiB
		// value can take longer than the timeout to arrive (the timeout
		// counts from its set's line), or the next set longer than the
		// timeout to follow, and the connection was closed between sets.
		const n, size = 8, 512 << 10
		for i := range n {
			if _, err := srv.cache.Store(storage.ModeSet, []byte(fmt.Sprintf("k%d", i)), 0, 0, []byte(strings.Repeat("r", size)), 0); err != nil {
				t.Fatal(err)
			}
		}
		c := dial(t, "tcp", addr)
		get := "get"
		for i := range n {
			get += fmt.Sprintf(" k%d", i)
		}
		c.send(get + "\r\n")
		time.Sleep(stall)
		for i := range n {
			if l := c.line(); l != fmt.Sprintf("VALUE k%d 0 %d", i, size) {
				t.Fatalf("reply line %q", l)
			}
			if _, err := c.r.Discard(size + 2); err != nil {
				t.Fatal(err)
			}
		}
		if l := c.line(); l != "END" {
			t.Fatalf("reply ends with %q", l)
		}
		if !c.kickedWithin(5 * time.Second) {
			t.Error("reader: not closed once idle")
		}
		kicks++

		s := dial(t, "tcp", addr)
		if got := s.stat("idle_kicks"); got != fmt.Sprint(kicks) {
			t.Errorf("idle_kicks = %s, want %d", got, kicks)
		}
	})
}

// TestModeIdleTimeoutSlowCommandLine checks that a client sending a
// command line a byte at a time, each well within the idle timeout, is
// closed all the same, as memcached times it from the last command.
func TestModeIdleTimeoutSlowCommandLine(t *testing.T) {
	const idle = 200 * time.Millisecond
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{IdleTimeout: idle}))
		c := dial(t, "tcp", addr)
		c.send("get ")
		closed := false
		for i := 0; i < 40 && !closed; i++ {
			// Each byte comes a quarter of the timeout after the last,
			// for ten timeouts in all, unless the server closes first.
			closed = c.kickedWithin(idle / 4)
			if !closed {
				io.WriteString(c.nc, "k")
			}
		}
		if !closed {
			t.Fatal("a command line sent a byte at a time kept its connection")
		}
		s := dial(t, "tcp", addr)
		if got := s.stat("idle_kicks"); got != "1" {
			t.Errorf("idle_kicks = %s, want 1", got)
		}
	})
}

// TestModeIdleTimeoutOtherProtocolBytes checks that a partial request is
// judged by the protocol the connection speaks: a text client that sends
// a binary magic byte and a header's worth of bytes with no newline, and
// a binary client that sends a newline short of a header, are waiting for
// a command, as memcached's are, and are closed once idle.
func TestModeIdleTimeoutOtherProtocolBytes(t *testing.T) {
	const idle = 200 * time.Millisecond
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{IdleTimeout: idle}))

		text := dial(t, "tcp", addr)
		text.expect("version\r\n", "VERSION "+Version)
		text.send(strings.Repeat("\x80", 2*protocol.BinaryHeaderLen))
		if !text.kickedWithin(5 * time.Second) {
			t.Error("text client with binary bytes: not closed once idle")
		}

		bin := dial(t, "tcp", addr)
		noop := make([]byte, protocol.BinaryHeaderLen)
		noop[0], noop[1] = 0x80, 0x0a
		bin.send(string(noop))
		reply := make([]byte, protocol.BinaryHeaderLen)
		if _, err := io.ReadFull(bin.r, reply); err != nil || reply[0] != 0x81 || reply[1] != 0x0a {
			t.Fatalf("noop reply %x, %v", reply, err)
		}
		bin.send("ab\n")
		if !bin.kickedWithin(5 * time.Second) {
			t.Error("binary client with a newline: not closed once idle")
		}

		s := dial(t, "tcp", addr)
		if got := s.stat("idle_kicks"); got != "2" {
			t.Errorf("idle_kicks = %s, want 2", got)
		}
	})
}

// TestModeIdleTimeoutErrorReplies checks that a request answered with an
// error is a command for the idle timeout, as memcached times it from
// every line (or binary header) it reads: a client sending only unknown
// commands, empty lines or malformed meta commands, each well within the
// timeout, is kept, and closed once it stops.
func TestModeIdleTimeoutErrorReplies(t *testing.T) {
	const idle = 2 * time.Second
	unknownBinary := make([]byte, protocol.BinaryHeaderLen)
	unknownBinary[0], unknownBinary[1] = protocol.BinaryRequestMagic, 0x50
	requests := map[string]string{
		"unknown":        "nosuchcommand\r\n",
		"empty":          "\r\n",
		"meta":           "mg\r\n",
		"binary unknown": string(unknownBinary),
	}
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		_, addr := start(t, mode(Config{IdleTimeout: idle}))
		clients := map[string]*client{}
		for name := range requests {
			clients[name] = dial(t, "tcp", addr)
		}
		// Ten requests each, a tenth of the timeout apart: twice the
		// timeout in all.
		for range 10 {
			for name, req := range requests {
				if _, err := io.WriteString(clients[name].nc, req); err != nil {
					t.Fatalf("%s: closed while sending commands: %v", name, err)
				}
			}
			time.Sleep(idle / 10)
		}
		open := time.Now().Add(idle / 2) // still open then
		for name, c := range clients {
			c.nc.SetReadDeadline(open)
			if _, err := io.Copy(io.Discard, c.r); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: closed while sending commands (%v)", name, err)
			}
		}
		for name, c := range clients {
			if !c.kickedWithin(3 * idle) {
				t.Errorf("%s: not closed once idle", name)
			}
		}
	})
}

// TestModeIdleTimeoutTCPOnly checks that, as memcached's idle thread
// looks only at TCP connections, a client idle on the Unix socket is
// kept while one idle on TCP is closed.
func TestModeIdleTimeoutTCPOnly(t *testing.T) {
	const idle = 200 * time.Millisecond
	forEachMode(t, func(t *testing.T, mode func(Config) Config) {
		path := filepath.Join(t.TempDir(), "corvid.sock")
		_, addr := start(t, mode(Config{IdleTimeout: idle, UnixPath: path, TCPAddrs: []string{"127.0.0.1:0"}}))
		local := dial(t, "unix", path)
		local.expect("version\r\n", "VERSION "+Version)
		remote := dial(t, "tcp", addr)
		remote.expect("version\r\n", "VERSION "+Version)
		if !remote.kickedWithin(5 * time.Second) {
			t.Error("TCP client: not closed once idle")
		}
		if local.kickedWithin(10 * idle) {
			t.Fatal("Unix socket client: closed by the idle timeout")
		}
		local.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		local.expect("version\r\n", "VERSION "+Version)
		if got := local.stat("idle_kicks"); got != "1" {
			t.Errorf("idle_kicks = %s, want 1", got)
		}
	})
}

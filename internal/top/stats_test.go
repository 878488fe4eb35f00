package top

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// sendGets sends n gets of key on one connection and reads their replies.
func sendGets(t *testing.T, addr, key string, n int) {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte(strings.Repeat("get "+key+"\r\n", n)))
	for range n {
		c.ReadReply(testutil.ValuesReply)
	}
}

// TestPollerCorvid polls an in-process corvid: the general stats, the
// class table and the hot keys of "stats hotkeys".
func TestPollerCorvid(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{HotKeySample: 1})
	c := testutil.Dial(t, addr)
	c.Send([]byte("set hot:one 0 0 5\r\nhello\r\n"))
	c.ReadReply(testutil.LineReply)
	c.Close()
	sendGets(t, addr, "hot:one", 50)

	s, err := Poller{Addr: addr}.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Int("cmd_get"); got != 50 {
		t.Errorf("cmd_get = %d, want 50", got)
	}
	if got := s.Int("get_hits"); got != 50 {
		t.Errorf("get_hits = %d, want 50", got)
	}
	if s.HotKeySource != "stats hotkeys" || len(s.HotKeys) == 0 || s.HotKeys[0].Key != "hot:one" {
		t.Errorf("hot keys from %q: %+v", s.HotKeySource, s.HotKeys)
	}
	rows := ClassRows(&s, nil, 0)
	if len(rows) != 1 || rows[0].Items != 1 || rows[0].Pages != 1 || rows[0].ChunkSize == 0 {
		t.Errorf("class rows: %+v", rows)
	}
}

// TestPollerWatchesFetchers polls a server without "stats hotkeys" (real
// memcached, and corvid with the tracker off): the hot keys are counted
// from "watch fetchers" while traffic runs.
func TestPollerWatchesFetchers(t *testing.T) {
	servers := map[string]func(t *testing.T) string{
		"corvid": func(t *testing.T) string {
			return testutil.StartCorvid(t, server.Config{HotKeySample: -1})
		},
		"memcached": func(t *testing.T) string { return testutil.StartMemcached(t) },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			// Traffic runs until the poll is over; its errors are reported
			// after it stops.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var trafficErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				trafficErr = getLoop(addr, "watched:key", stop)
			}()
			s, err := Poller{Addr: addr, WatchWindow: 300 * time.Millisecond}.Fetch(context.Background())
			close(stop)
			wg.Wait()
			if trafficErr != nil {
				t.Fatal(trafficErr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.HotKeySource != "watch fetchers" || len(s.HotKeys) == 0 || s.HotKeys[0].Key != "watched:key" || s.HotKeys[0].Rate <= 0 {
				t.Errorf("hot keys from %q: %+v", s.HotKeySource, s.HotKeys)
			}
		})
	}
}

// getLoop gets key on one connection until stop is closed, at most for
// ten seconds.
func getLoop(addr, key string, stop <-chan struct{}) error {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	deadline := time.Now().Add(10 * time.Second)
	nc.SetDeadline(deadline)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := io.WriteString(nc, "get "+key+"\r\n"); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || line != "END\r\n" {
			return fmt.Errorf("get: %q %v", line, err)
		}
	}
	return nil
}

// TestPollerBadServers: a port that is not memcached, one that never
// answers, and one nobody listens on each give an error in bounded time.
func TestPollerBadServers(t *testing.T) {
	httpish := testutil.FakeServer(t, func(nc net.Conn) {
		io.WriteString(nc, "HTTP/1.1 400 Bad Request\r\n\r\n")
	})
	silent := testutil.FakeServer(t, func(nc net.Conn) {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, nc)
	})
	closed := testutil.RefusedAddr(t)

	p := Poller{Addr: httpish, Timeout: 5 * time.Second}
	if _, err := p.Fetch(context.Background()); !errors.Is(err, ErrNotMemcached) || !strings.Contains(err.Error(), "HTTP/1.1 400") {
		t.Errorf("not memcached: %v", err)
	}
	start := time.Now()
	p = Poller{Addr: silent, Timeout: 200 * time.Millisecond}
	if _, err := p.Fetch(context.Background()); err == nil {
		t.Error("silent server: no error")
	} else if took := time.Since(start); took > 5*time.Second {
		t.Errorf("silent server: error after %v", took)
	}
	p = Poller{Addr: closed}
	if _, err := p.Fetch(context.Background()); err == nil {
		t.Error("closed port: no error")
	}
	// A cancelled context ends a poll at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Poller{Addr: silent, Timeout: time.Minute}).Fetch(ctx); err == nil {
		t.Error("cancelled: no error")
	}
}

// TestReadStats covers the reply shapes a stats request can get.
func TestReadStats(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
		ok       bool
		err      error
	}{
		{"stats", "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n", 2, true, nil},
		{"empty", "END\r\n", 0, true, nil},
		{"error", "ERROR\r\n", 0, false, nil},
		{"client error", "CLIENT_ERROR bad command line format\r\n", 0, false, nil},
		{"not memcached", "+OK\r\n", 0, false, ErrNotMemcached},
		{"error after stats", "STAT a 1\r\nSERVER_ERROR out of memory\r\n", 0, false, ErrNotMemcached},
		{"cut short", "STAT a 1\r\n", 0, false, io.EOF},
		{"line too long", "STAT a " + strings.Repeat("x", maxLine) + "\r\nEND\r\n", 0, false, ErrReplyTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kvs, ok, err := readStats(bufio.NewReaderSize(strings.NewReader(tc.in), maxLine))
			if len(kvs) != tc.n || ok != tc.ok || !errors.Is(err, tc.err) {
				t.Errorf("got %d stats, ok %v, err %v; want %d, %v, %v", len(kvs), ok, err, tc.n, tc.ok, tc.err)
			}
		})
	}
}

func TestWatchKey(t *testing.T) {
	for line, want := range map[string]string{
		"ts=1.2 gid=2 type=item_get key=a%01b status=found clsid=1 cfd=25 size=1\n": "a\x01b",
		"ts=1.2 gid=3 type=item_get key=user%3A42 status=not_found\n":               "user:42",
		"ts=1.2 gid=4 type=item_get key=bad%zz status=found\n":                      "bad%zz",
	} {
		if got, ok := watchKey([]byte(line)); !ok || got != want {
			t.Errorf("%q: %q %v, want %q", line, got, ok, want)
		}
	}
	if _, ok := watchKey([]byte("skipped=3\n")); ok {
		t.Error("skipped line has a key")
	}
}

func TestDiff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := Sample{Time: t0, Stats: map[string]string{
		"cmd_get": "100", "get_hits": "80", "get_misses": "20", "cmd_set": "10",
		"delete_hits": "1", "delete_misses": "1", "evictions": "5", "bytes_written": "1000",
	}, Classes: map[int]map[string]string{1: {"get_hits": "10", "cmd_set": "4"}}}
	cur := Sample{Time: t0.Add(2 * time.Second), Stats: map[string]string{
		"cmd_get": "300", "get_hits": "230", "get_misses": "70", "cmd_set": "4", // cmd_set reset
		"delete_hits": "3", "delete_misses": "5", "evictions": "9", "bytes_written": "3048",
	}, Classes: map[int]map[string]string{1: {"get_hits": "30", "cmd_set": "8"}, 2: {"get_hits": "2"}}}
	r := Diff(&prev, &cur)
	want := map[string]float64{"get": 100, "set": 2, "delete": 3}
	for cmd, v := range want {
		if r.Ops[cmd] != v {
			t.Errorf("%s: %v/s, want %v", cmd, r.Ops[cmd], v)
		}
	}
	if hr, ok := r.HitRatio(); !ok || hr != 0.75 {
		t.Errorf("hit ratio %v %v, want 0.75", hr, ok)
	}
	if r.Evictions != 2 || r.BytesWritten != 1024 || r.Total() != 105 {
		t.Errorf("evictions %v, written %v, total %v", r.Evictions, r.BytesWritten, r.Total())
	}
	if c := r.Classes[1]; c.Gets != 10 || c.Sets != 2 {
		t.Errorf("class 1: %+v", c)
	}
	if c := r.Classes[2]; c.Gets != 1 {
		t.Errorf("class 2 (new): %+v", c)
	}
}

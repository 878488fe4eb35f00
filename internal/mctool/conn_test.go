package mctool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

func TestParseAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"127.0.0.1:11211", "127.0.0.1:11211"},
		{"localhost", "localhost:11211"},
		{"[::1]:22122", "[::1]:22122"},
	} {
		if got, err := ParseAddr(c.in); err != nil || got != c.want {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:", ":11211", "127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:65536", "a:b:c", "host name:1", "/tmp/sock", "::1"} {
		_, err := ParseAddr(bad)
		if !errors.Is(err, ErrAddress) {
			t.Errorf("ParseAddr(%q): %v, want ErrAddress", bad, err)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, `"`+bad+`": malformed address`) || strings.Contains(msg, "\n") {
			t.Errorf("ParseAddr(%q): message %q", bad, msg)
		}
	}
}

// badServers are listeners that are not memcached, each with the error
// a Conn must give and words its message must hold.
func badServers(t *testing.T) []struct {
	name, addr string
	err        error
	words      string
} {
	refused := testutil.RefusedAddr(t)
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	banner := testutil.FakeServer(t, func(nc net.Conn) {
		io.WriteString(nc, "SSH-2.0-OpenSSH_9.2p1\r\n")
		io.Copy(io.Discard, nc)
	})
	silent := testutil.FakeServer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	hangup := testutil.FakeServer(t, func(nc net.Conn) {})
	endless := testutil.FakeServer(t, func(nc net.Conn) {
		line := []byte(strings.Repeat("x", 4096))
		for range 100 {
			if _, err := nc.Write(line); err != nil {
				return
			}
		}
	})
	return []struct {
		name, addr string
		err        error
		words      string
	}{
		{"refused", refused, syscall.ECONNREFUSED, "cannot connect: connection refused"},
		{"http", strings.TrimPrefix(web.URL, "http://"), ErrNotMemcached, `not a memcached server: stats answered "HTTP/1.1 400 Bad Request"`},
		{"banner", banner, ErrNotMemcached, `not a memcached server: stats answered "SSH-2.0-OpenSSH_9.2p1"`},
		{"silent", silent, ErrTimeout, "no reply within 1s"},
		{"hangup", hangup, ErrNotMemcached, "closed the connection"},
		{"endless line", endless, ErrNotMemcached, "longer than 64 KB"},
	}
}

func TestBadServers(t *testing.T) {
	const timeout = time.Second
	for _, s := range badServers(t) {
		t.Run(s.name, func(t *testing.T) {
			start := time.Now()
			err := func() error {
				c, err := Dial(context.Background(), s.addr, timeout)
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Stats("")
				return err
			}()
			if !errors.Is(err, s.err) {
				t.Fatalf("got %v, want %v", err, s.err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, s.addr+": ") || !strings.Contains(msg, s.words) || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want %q and %q on one line", msg, s.addr, s.words)
			}
			if d := time.Since(start); d > 10*timeout {
				t.Errorf("took %v with a %v timeout", d, timeout)
			}
		})
	}
}

// TestCancel cancels the context of a Conn before a request and during
// one: either way the request ends at once with the context's error,
// whatever the Conn's timeout.
func TestCancel(t *testing.T) {
	silent := testutil.FakeServer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	for _, before := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := Dial(ctx, silent, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if before {
			cancel()
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Stats("")
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancel before=%v: got %v, want context.Canceled", before, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("cancel before=%v: Stats did not return", before)
		}
		c.Close()
	}
}

// TestMetadumpAsksAgainWhenEmpty serves, as memcached's crawler now and
// then does for a metadump that starts just after another ended, an
// empty metadump from a server whose stats count an item: Metadump asks
// again and lists the key. A server that holds nothing is asked once.
func TestMetadumpAsksAgainWhenEmpty(t *testing.T) {
	for _, items := range []int{1, 0} {
		var dumps atomic.Int32
		addr := testutil.FakeServer(t, func(nc net.Conn) {
			r := bufio.NewReader(nc)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				switch strings.TrimSpace(line) {
				case "stats":
					fmt.Fprintf(nc, "STAT pid 1\r\nSTAT curr_items %d\r\nEND\r\n", items)
				case "lru_crawler metadump all":
					if dumps.Add(1) == 1 || items == 0 {
						io.WriteString(nc, "END\r\n")
					} else {
						io.WriteString(nc, "key=k exp=-1 la=1 cas=1 fetch=no cls=1 size=60\r\nEND\r\n")
					}
				default:
					io.WriteString(nc, "ERROR\r\n")
				}
			}
		})
		c, err := Dial(context.Background(), addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		err = c.Metadump(0, func(k KeyInfo) error { keys = append(keys, k.Key); return nil })
		c.Close()
		want, wantDumps := "[k]", int32(2)
		if items == 0 {
			want, wantDumps = "[]", 1
		}
		if err != nil || fmt.Sprint(keys) != want || dumps.Load() != wantDumps {
			t.Errorf("%d items: keys %v, %v after %d metadumps; want %s after %d", items, keys, err, dumps.Load(), want, wantDumps)
		}
	}
}

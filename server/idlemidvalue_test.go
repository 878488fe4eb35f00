package server_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// idleStall is longer than a one-second idle timeout plus the second
// memcached may take to notice it.
const idleStall = 3500 * time.Millisecond

// closedWithin reports whether the server closes c within d, reading and
// discarding whatever it still sends.
func closedWithin(c *testutil.Conn, d time.Duration) bool {
	c.Timeout = d
	for {
		_, err := c.TryReadReply(testutil.LineReply)
		if err != nil {
			return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset")
		}
	}
}

// TestIdleTimeoutStates runs clients that stall past a one-second idle
// timeout in different states against corvid and memcached: one idle
// between commands and one halfway through a command line are closed; one
// halfway through a value (text, meta or binary), and one that does not
// read a large reply, are kept for as long as they stall, and are answered
// once they go on. As memcached measures idleness from the last command,
// the client that stalled reading its reply is closed soon after it has
// read it, while the one that finished its value with another command is
// closed only after a further idle timeout. idle_kicks counts every
// client, as each is closed in the end.
func TestIdleTimeoutStates(t *testing.T) {
	const size = 512 << 10
	servers := map[string]string{
		"corvid": testutil.StartCorvid(t, server.Config{IdleTimeout: time.Second, Storage: storage.Config{MemoryLimit: 64 << 20}}),
	}
	if testutil.MemcachedPath() != "" {
		servers["memcached"] = testutil.StartMemcached(t, "-m", "64", "-o", "idle_timeout=1")
	}
	value := strings.Repeat("v", size)
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			setup := testutil.Dial(t, addr)
			for _, k := range keys {
				setup.Send([]byte(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, size, value)))
				if got := string(setup.ReadReply(testutil.LineReply)); got != "STORED\r\n" {
					t.Fatalf("set %s: %q", k, got)
				}
			}
			setup.Close()
			var mu sync.Mutex
			got := map[string]string{}
			note := func(client, s string) {
				mu.Lock()
				got[client] += s
				mu.Unlock()
			}
			var wg sync.WaitGroup
			run := func(client string, f func(c *testutil.Conn)) {
				c := testutil.Dial(t, addr)
				wg.Add(1)
				go func() {
					defer wg.Done()
					f(c)
				}()
			}
			run("idle", func(c *testutil.Conn) {
				c.Send([]byte("version\r\n"))
				c.ReadReply(testutil.LineReply)
				note("idle", fmt.Sprint("closed:", closedWithin(c, 2*idleStall)))
			})
			run("midline", func(c *testutil.Conn) {
				c.Send([]byte("get k"))
				note("midline", fmt.Sprint("closed:", closedWithin(c, 2*idleStall)))
			})
			run("midvalue", func(c *testutil.Conn) {
				c.Send([]byte(fmt.Sprintf("set m 0 0 %d\r\n%s", size, value[:size/2])))
				time.Sleep(idleStall)
				c.Timeout = 2 * time.Second
				if err := c.TrySend([]byte(value[size/2:] + "\r\nmg m s\r\n")); err != nil {
					note("midvalue", "send: "+err.Error())
					return
				}
				for range 2 {
					r, err := c.TryReadReply(testutil.LineReply)
					note("midvalue", string(r))
					if err != nil {
						note("midvalue", err.Error())
						return
					}
				}
				// Idle from here, after a command just sent.
				start := time.Now()
				closed := closedWithin(c, 2*idleStall)
				note("midvalue", fmt.Sprint("closed:", closed, " after a second:", time.Since(start) > 900*time.Millisecond))
			})
			run("meta", func(c *testutil.Conn) {
				c.Send([]byte(fmt.Sprintf("ms m2 %d\r\n%s", size, value[:size/2])))
				time.Sleep(idleStall)
				c.Timeout = 2 * time.Second
				if err := c.TrySend([]byte(value[size/2:] + "\r\nmn\r\n")); err != nil {
					note("meta", "send: "+err.Error())
					return
				}
				for range 2 {
					r, err := c.TryReadReply(testutil.LineReply)
					note("meta", string(r))
					if err != nil {
						note("meta", err.Error())
						return
					}
				}
				note("meta", fmt.Sprint("closed:", closedWithin(c, 2*idleStall)))
			})
			run("binary", func(c *testutil.Conn) {
				set := testutil.BinaryRequest{Opcode: 0x01, Extras: make([]byte, 8), Key: []byte("b"), Value: []byte(value)}.Bytes()
				noop := testutil.BinaryRequest{Opcode: 0x0a}.Bytes()
				c.Send(set[:len(set)-size/2])
				time.Sleep(idleStall)
				c.Timeout = 2 * time.Second
				if err := c.TrySend(append(set[len(set)-size/2:], noop...)); err != nil {
					note("binary", "send: "+err.Error())
					return
				}
				for range 2 {
					r, err := c.ReadBinary()
					if err != nil {
						note("binary", err.Error())
						return
					}
					note("binary", fmt.Sprintf("op %d status %d ", r.Opcode(), r.Status()))
				}
				note("binary", fmt.Sprint("closed:", closedWithin(c, 2*idleStall)))
			})
			run("reader", func(c *testutil.Conn) {
				c.Send([]byte("get " + strings.Join(keys, " ") + "\r\n"))
				time.Sleep(idleStall)
				r, err := c.TryReadReply(testutil.ValuesReply)
				note("reader", fmt.Sprint(len(r), " ", err))
				note("reader", fmt.Sprint(" closed:", closedWithin(c, 2*idleStall)))
			})
			wg.Wait()
			replyLen := len("END\r\n")
			for _, k := range keys {
				replyLen += len(fmt.Sprintf("VALUE %s 0 %d\r\n", k, size)) + size + 2
			}
			want := map[string]string{
				"idle":     "closed:true",
				"midline":  "closed:true",
				"midvalue": fmt.Sprintf("STORED\r\nHD s%d\r\nclosed:true after a second:true", size),
				"meta":     "HD\r\nMN\r\nclosed:true",
				"binary":   "op 1 status 0 op 10 status 0 closed:true",
				"reader":   fmt.Sprint(replyLen, " <nil> closed:true"),
			}
			for client, w := range want {
				if got[client] != w {
					t.Errorf("%s: %q, want %q", client, got[client], w)
				}
			}
			stats := testutil.Dial(t, addr)
			stats.Send([]byte("stats\r\n"))
			if r := string(stats.ReadReply(testutil.StatsReply)); !strings.Contains(r, "STAT idle_kicks 6\r\n") {
				t.Errorf("idle_kicks: stats %q", r)
			}
		})
	}
}

package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/queue"
)

func TestSetGetFIFO(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	c.mustMiss("jobs")
	c.set("jobs", "one")
	c.set("jobs", "two")
	c.do("set jobs 5 0 5 noreply\r\nthree")
	c.mustGet("jobs", "one")
	c.mustGet("jobs", "two")
	c.send("get jobs\r\n")
	c.expect("VALUE jobs 5 5", "three", "END")
	c.mustMiss("jobs")
	c.do("version", "VERSION "+queue.Version)
}

func TestGetOptions(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)

	// peek does not remove.
	c.set("q", "a")
	c.mustGet("q/peek", "a")
	c.mustGet("q/peek", "a")

	// open, then close confirms; close/open confirms and opens the next.
	c.set("q", "b")
	c.mustGet("q/open", "a")
	c.mustGet("q/close/open", "b")
	c.do("get q/close", "END")
	c.mustMiss("q")
	if got := s.stat("queue_q_open_transactions"); got != "0" {
		t.Fatalf("open_transactions = %s after close", got)
	}

	// abort puts the item back at the head.
	c.set("q", "c")
	c.set("q", "d")
	c.mustGet("q/open", "c")
	c.do("get q/abort", "END")
	c.mustGet("q", "c")
	c.mustGet("q", "d")

	// close with nothing open is ignored.
	c.do("get q/close", "END")

	// t= waits for an item set by another client.
	other := dial(t, s.addr)
	c.send("get q/t=20000\r\n")
	waitFor(t, "the waiter", func() bool { return s.stat("queue_q_waiters") == "1" })
	other.set("q", "late")
	c.expect("VALUE q 0 4", "late", "END")

	// t= on an empty queue answers END after the timeout.
	start := time.Now()
	c.mustMiss("q/t=50")
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("get/t=50 answered after %v", d)
	}

	// t= with open: the waited item is open.
	c.send("get q/t=20000/open\r\n")
	waitFor(t, "the open waiter", func() bool { return s.stat("queue_q_waiters") == "1" })
	other.set("q", "e")
	c.expect("VALUE q 0 1", "e", "END")
	if got := s.stat("queue_q_open_transactions"); got != "1" {
		t.Fatalf("open_transactions = %s", got)
	}
	c.do("get q/abort", "END")
	c.mustGet("q/t=10", "e")
}

func TestSecondOpenIsAnError(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	c.set("q", "a")
	c.set("q", "b")
	c.mustGet("q/open", "a")
	c.do("get q/open", "ERROR")
	if !c.closed() {
		t.Fatal("the connection stays open after a second open read")
	}
	// Its open item went back to the head.
	d := dial(t, s.addr)
	waitFor(t, "the item back", func() bool { return s.stat("queue_q_items") == "2" })
	d.mustGet("q", "a")

	// A plain get with a read open is an error too.
	d.mustGet("q/open", "b")
	d.do("get q", "ERROR")
	if !d.closed() {
		t.Fatal("the connection stays open after a plain get with a read open")
	}
}

func TestBadGetOptionsCloseTheConnection(t *testing.T) {
	s := startServer(t, queue.Config{})
	for _, key := range []string{"q/peek/open", "q/abort/close", "q/peek/abort", "/open", "q/t=x", "q/t=-1"} {
		c := dial(t, s.addr)
		c.do("get "+key, "CLIENT_ERROR")
		if !c.closed() {
			t.Fatalf("get %s: connection kept", key)
		}
	}
}

func TestWaitersAreWokenInOrder(t *testing.T) {
	s := startServer(t, queue.Config{})
	const n = 5
	var cs []*client
	for i := 0; i < n; i++ {
		c := dial(t, s.addr)
		c.send("get work/t=30000\r\n")
		want := strconv.Itoa(i + 1)
		waitFor(t, "waiter "+want, func() bool { return s.stat("queue_work_waiters") == want })
		cs = append(cs, c)
	}
	p := dial(t, s.addr)
	for i := 0; i < n; i++ {
		p.set("work", fmt.Sprint("item", i))
	}
	for i, c := range cs {
		c.expect("VALUE work 0 5", fmt.Sprint("item", i), "END")
	}
	if got := s.stat("queue_work_items"); got != "0" {
		t.Fatalf("items = %s", got)
	}
}

func TestDisconnectReturnsOpenItem(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	c.set("q", "first")
	c.set("q", "second")
	c.mustGet("q/open", "first")
	c.nc.Close()
	waitFor(t, "the item back", func() bool { return s.stat("queue_q_open_transactions") == "0" })
	d := dial(t, s.addr)
	d.mustGet("q", "first")
	d.mustGet("q", "second")
}

func TestOpenTimeoutReturnsItem(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, "queues:\n  slow:\n    open_timeout: 50ms\n")})
	c := dial(t, s.addr)
	c.set("slow", "x")
	c.mustGet("slow/open", "x")
	waitFor(t, "the open read to time out", func() bool { return s.stat("queue_slow_items") == "1" })
	d := dial(t, s.addr)
	d.mustGet("slow", "x")
	// The timed-out read is no longer open: close is ignored, a new open works.
	c.do("get slow/close", "END")
	c.mustMiss("slow/open")
}

func TestBadNames(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	long := strings.Repeat("n", 251)
	for _, name := range []string{long, "a.b", "a~b", "a\x01b", "a\x7fb", "+x", "x+"} {
		c.send(fmt.Sprintf("set %s 0 0 3\r\nabc\r\n", name))
		if l := c.line(); !strings.HasPrefix(l, "CLIENT_ERROR queue: bad queue name") {
			t.Fatalf("set %q: %q", name, l)
		}
		c.send("get " + name + "\r\n")
		if l := c.line(); !strings.HasPrefix(l, "CLIENT_ERROR queue: bad queue name") {
			t.Fatalf("get %q: %q", name, l)
		}
		c.send("delete " + name + "\r\n")
		if l := c.line(); !strings.HasPrefix(l, "CLIENT_ERROR queue: bad queue name") {
			t.Fatalf("delete %q: %q", name, l)
		}
	}
	// A name with '/' cannot be set (a get reads it as options).
	c.send("set a/b 0 0 3\r\nabc\r\n")
	if l := c.line(); !strings.HasPrefix(l, "CLIENT_ERROR queue: bad queue name") {
		t.Fatalf("set a/b: %q", l)
	}
	// The connection still works, and no queue was made.
	c.set("good", "v")
	c.mustGet("good", "v")
	if got := s.stat("queue_creates"); got != "1" {
		t.Fatalf("queue_creates = %s", got)
	}
	c.set(strings.Repeat("n", 250), "ok")
}

func TestOversizeItemIsDiscardedAsItArrives(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, "default:\n  max_item_size: 1KB\n")})
	c := dial(t, s.addr)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c.send(fmt.Sprintf("set big 0 0 %d\r\n", size))
	chunk := []byte(strings.Repeat("x", 64<<10))
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := c.nc.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	c.send("\r\n")
	c.expect("NOT_STORED")
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > size/4 {
		t.Fatalf("a refused %d-byte item allocated %d bytes", size, grew)
	}
	c.set("big", strings.Repeat("y", 1024))
	c.do("set big 0 0 1025\r\n"+strings.Repeat("y", 1025), "NOT_STORED")
	if got := s.stat("queue_big_items"); got != "1" {
		t.Fatalf("items = %s", got)
	}
}

func TestFullQueue(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, `
default:
  max_items: 2
queues:
  lossy:
    discard_old_when_full: true
`)})
	c := dial(t, s.addr)
	c.set("strict", "1")
	c.set("strict", "2")
	c.do("set strict 0 0 1\r\n3", "NOT_STORED")
	c.mustGet("strict", "1")
	c.mustGet("strict", "2")
	c.mustMiss("strict")

	c.set("lossy", "1")
	c.set("lossy", "2")
	c.set("lossy", "3")
	if got := s.stat("queue_lossy_discarded"); got != "1" {
		t.Fatalf("discarded = %s", got)
	}
	c.mustGet("lossy", "2")
	c.mustGet("lossy", "3")
}

func TestManyWaitersAreBounded(t *testing.T) {
	const conns, maxWaiters = 60, 40
	s := startServer(t, queue.Config{MaxConns: conns, MaxWaiters: maxWaiters})
	base := runtime.NumGoroutine()
	var cs []*client
	for i := 0; i < conns; i++ {
		c := dial(t, s.addr)
		c.send("get idle/t=60000\r\n")
		cs = append(cs, c)
	}
	waitFor(t, "the waiters", func() bool { return s.stat("queue_idle_waiters") == strconv.Itoa(maxWaiters) })
	// Those beyond MaxWaiters were answered at once, the waiters not
	// (they wait a minute). The last waiter can be counted before the
	// other connections' goroutines have read their gets, so the replies
	// are polled for until that many came (10 s at most), then once more
	// for any further one.
	replies := make([]string, conns)
	answered := 0
	poll := func() {
		for i, c := range cs {
			if replies[i] == "END\r\n" {
				continue
			}
			c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
			l, _ := c.r.ReadString('\n')
			if replies[i] += l; replies[i] == "END\r\n" {
				answered++
			}
		}
	}
	for deadline := time.Now().Add(10 * time.Second); answered < conns-maxWaiters && time.Now().Before(deadline); {
		poll()
	}
	time.Sleep(20 * time.Millisecond)
	poll()
	if answered != conns-maxWaiters {
		t.Fatalf("%d gets answered at once, want %d", answered, conns-maxWaiters)
	}
	// One goroutine per connection, none per waiter.
	if g := runtime.NumGoroutine(); g > base+conns+5 {
		t.Fatalf("%d goroutines for %d connections (%d before)", g, conns, base)
	}
	// A connection beyond MaxConns is refused.
	extra := dial(t, s.addr)
	extra.expect("SERVER_ERROR too many open connections")
}

func TestFanout(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	c.mustMiss("orders+audit") // creates the child
	c.set("orders", "o1")
	c.mustGet("orders", "o1")
	c.mustGet("orders+audit", "o1")
	c.set("orders+audit", "direct")
	c.mustMiss("orders")
	if got := s.stat("queue_orders_children"); got != "orders+audit" {
		t.Fatalf("children = %q", got)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var clock = func() time.Time { return now }
	s := startServer(t, queue.Config{
		Now:    func() time.Time { return clock() },
		Queues: configYAML(t, "queues:\n  short:\n    expire_to_queue: dead\n"),
	})
	c := dial(t, s.addr)
	c.do("set short 0 -1 1\r\na", "STORED")
	c.mustMiss("short")
	c.mustGet("dead", "a")
	c.do(fmt.Sprintf("set short 0 %d 1\r\nb", now.Unix()+10), "STORED")
	c.mustGet("short/peek", "b")
}

func TestMonitorAndConfirm(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, "max_open_transactions: 10\n")})
	c := dial(t, s.addr)
	c.set("m", "1")
	c.set("m", "2")
	c.set("m", "3")
	c.do("monitor m 1 2", "VALUE m 0 1", "1", "VALUE m 0 1", "2", "END")
	if got := s.stat("queue_m_open_transactions"); got != "2" {
		t.Fatalf("open_transactions = %s", got)
	}
	c.do("confirm m 2", "END")
	c.do("confirm m 1", "ERROR")
	c.do("monitor m 0", "END")
	c.mustGet("m", "3")
}

func TestCommands(t *testing.T) {
	reloads := 0
	s := startServer(t, queue.Config{Reload: func() (*queue.FileConfig, error) {
		reloads++
		return &queue.FileConfig{}, nil
	}})
	c := dial(t, s.addr)
	c.set("a", "1")
	c.set("b", "2")
	c.do("flush a", "END")
	c.mustMiss("a")
	c.set("a", "1")
	c.do("flush_all", "Flushed all queues.")
	c.mustMiss("a")
	c.mustMiss("b")
	c.do("delete b", "DELETED")
	c.do("reload", "Reloaded config.")
	if reloads != 1 {
		t.Fatalf("%d reloads", reloads)
	}
	c.do("dump_stats a", "queue 'a' {", "  items=0", "  bytes=0", "  total_items=2", "  logsize=0",
		"  expired_items=0", "  mem_items=0", "  mem_bytes=0", "  age=0", "  discarded=0", "  waiters=0",
		"  open_transactions=0", "}", "END")
	c.send("stats\r\n")
	seen := map[string]bool{}
	for l := c.line(); l != "END"; l = c.line() {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "STAT" {
			t.Fatalf("stats line %q", l)
		}
		seen[f[1]] = true
	}
	for _, k := range []string{"uptime", "time", "version", "curr_items", "total_items", "bytes",
		"curr_connections", "total_connections", "cmd_get", "cmd_set", "cmd_peek", "get_hits",
		"get_misses", "bytes_read", "bytes_written", "queue_creates", "queue_deletes", "queue_expires",
		"queue_a_items", "queue_a_waiters", "queue_a_open_transactions"} {
		if !seen[k] {
			t.Errorf("stats lacks %s", k)
		}
	}
	if seen["queue_b_items"] {
		t.Error("a deleted queue is in stats")
	}
	c.do("bogus", "CLIENT_ERROR")
	if !c.closed() {
		t.Fatal("connection kept after an unknown command")
	}
}

func TestGarbageDoesNotTouchOthersItems(t *testing.T) {
	s := startServer(t, queue.Config{})
	good := dial(t, s.addr)
	good.set("q", "mine")
	good.mustGet("q/open", "mine")
	for _, junk := range []string{"set q 0 0 abc\r\n", "set q 0 0 3\r\nabcdef\r\n", strings.Repeat("z", 5000) + "\r\n", "\x00\x01\x02\r\n", "get q/abort\r\nget q/close\r\nquit\r\n"} {
		b := dial(t, s.addr)
		b.send(junk)
		b.closed()
	}
	if got := s.stat("queue_q_open_transactions"); got != "1" {
		t.Fatalf("open_transactions = %s", got)
	}
	good.do("get q/close", "END")
	good.mustMiss("q")
}

func TestShutdownReturnsOpenItems(t *testing.T) {
	backend := &queue.MemBackend{}
	s := startServer(t, queue.Config{Backend: backend})
	c := dial(t, s.addr)
	c.set("q", "held")
	c.mustGet("q/open", "held")
	w := dial(t, s.addr)
	w.send("get other/t=60000\r\n")
	waitFor(t, "the waiter", func() bool { return s.stat("queue_other_waiters") == "1" })
	s.stop()
	w.expect("END")
	if !c.closed() {
		t.Fatal("connection open after shutdown")
	}
	s2 := startServer(t, queue.Config{Backend: backend})
	d := dial(t, s2.addr)
	d.mustGet("q", "held")
}

func TestShutdownCommand(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	c.send("shutdown\r\n")
	if !c.closed() {
		t.Fatal("connection open after shutdown")
	}
	select {
	case <-s.Stopping():
	case <-time.After(20 * time.Second):
		t.Fatal("not stopping")
	}
}

func TestStuckReaderDoesNotStopOthers(t *testing.T) {
	s := startServer(t, queue.Config{ShutdownGrace: 100 * time.Millisecond})
	c := dial(t, s.addr)
	item := strings.Repeat("x", 4000)
	c.do(fmt.Sprintf("set big 0 0 %d\r\n%s", len(item), item), "STORED")
	// Ask for the item over and over and read nothing: the server stops
	// reading once its replies back up, so the requests soon block too.
	chunk := []byte(strings.Repeat("get big/peek\r\n", 4096))
	blocked := false
	for sent := 0; sent < 256<<20; sent += len(chunk) {
		c.nc.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.nc.Write(chunk); err != nil {
			blocked = true
			break
		}
	}
	if !blocked {
		t.Fatal("the server read 256 MiB of requests from a client that reads no replies")
	}
	d := dial(t, s.addr)
	d.set("other", "fine")
	d.mustGet("other", "fine")
}

func TestMaxItemSizeZeroMeansTheDefault(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, "default:\n  max_item_size: 0\n")})
	c := dial(t, s.addr)
	c.set("q", "small")
	c.do(fmt.Sprintf("set q 0 0 %d\r\n%s", queue.DefaultMaxItemSize+1, strings.Repeat("x", queue.DefaultMaxItemSize+1)), "NOT_STORED")
}

func TestWaiterThatLeftDoesNotTakeTheItem(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	c.send("get q/t=60000\r\n")
	waitFor(t, "the waiter", func() bool { return s.stat("queue_q_waiters") == "1" })
	c.nc.Close()
	p := dial(t, s.addr)
	p.set("q", "kept")
	waitFor(t, "the waiter to leave", func() bool { return s.stat("curr_connections") == "1" })
	p.mustGet("q", "kept")
}

// hookBackend is a MemBackend whose stores call beforePut first.
type hookBackend struct {
	queue.MemBackend
	beforePut   func(name string)
	beforeTake  func(name string)
	beforeClose func(name string)
	// beforeConfirm is called before a Confirm returns.
	beforeConfirm func(name string)
	// confirmErr, if it returns an error, fails a Confirm (as a journal
	// write would) without confirming.
	confirmErr func() error
	// flushErr, if it returns an error, fails a Flush without flushing.
	flushErr func() error
}

type hookStore struct {
	queue.Store
	name string
	b    *hookBackend
}

func (b *hookBackend) Open(name string, cfg queue.StoreConfig) (queue.Store, error) {
	st, err := b.MemBackend.Open(name, cfg)
	return hookStore{st, name, b}, err
}

func (s hookStore) Put(it queue.Item) error {
	if s.b.beforePut != nil {
		s.b.beforePut(s.name)
	}
	return s.Store.Put(it)
}

func (s hookStore) Take(now time.Time, open bool) (queue.Item, uint64, bool, error) {
	if s.b.beforeTake != nil {
		s.b.beforeTake(s.name)
	}
	return s.Store.Take(now, open)
}

func (s hookStore) Confirm(xid uint64) error {
	if s.b.confirmErr != nil {
		if err := s.b.confirmErr(); err != nil {
			return err
		}
	}
	err := s.Store.Confirm(xid)
	if s.b.beforeConfirm != nil {
		s.b.beforeConfirm(s.name)
	}
	return err
}

func (s hookStore) Flush() error {
	if s.b.flushErr != nil {
		if err := s.b.flushErr(); err != nil {
			return err
		}
	}
	return s.Store.Flush()
}

func (s hookStore) Close() error {
	if s.b.beforeClose != nil {
		s.b.beforeClose(s.name)
	}
	return s.Store.Close()
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStopDoesNotWaitForAStalledSync stops a server whose store blocks,
// as a journal's fsync does on a failing disk, in a set's Put or in the
// Close at the end: Serve returns after StopTimeout, with a log line.
func TestStopDoesNotWaitForAStalledSync(t *testing.T) {
	for _, where := range []string{"put", "close"} {
		t.Run(where, func(t *testing.T) {
			stall := make(chan struct{})
			released := false
			release := func() {
				if !released {
					released = true
					close(stall)
				}
			}
			defer release()
			entered := make(chan struct{}, 1)
			block := func(string) {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-stall
			}
			b := &hookBackend{}
			if where == "put" {
				b.beforePut = block
			} else {
				b.beforeClose = block
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			logs := &lockedBuffer{}
			s, err := queue.New(queue.Config{
				Listener: ln, Backend: b, ShutdownGrace: 10 * time.Millisecond, StopTimeout: 100 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			c := dial(t, ln.Addr().String())
			if where == "put" {
				c.send("set q 0 0 1\r\nx\r\n")
				select {
				case <-entered:
				case <-time.After(20 * time.Second):
					t.Fatal("the set did not reach the store")
				}
			} else {
				c.set("q", "x")
			}
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Serve still waits for the stalled store")
			}
			if !strings.Contains(logs.String(), "stalled") {
				t.Errorf("no log line about the stalled store:\n%s", logs)
			}
			release()
		})
	}
}

func TestSetRacingDeleteIsStored(t *testing.T) {
	b := &hookBackend{}
	s := startServer(t, queue.Config{Backend: b})
	other := dial(t, s.addr)
	deleted := false
	b.beforePut = func(name string) {
		if !deleted {
			// The queue goes away between the set's lookup and its Put.
			deleted = true
			other.do("delete r", "DELETED")
		}
	}
	c := dial(t, s.addr)
	c.mustMiss("r")
	c.set("r", "x")
	c.mustGet("r", "x")
}

func TestGetRacingDeleteIsAMiss(t *testing.T) {
	b := &hookBackend{}
	s := startServer(t, queue.Config{Backend: b})
	other := dial(t, s.addr)
	c := dial(t, s.addr)
	c.set("r", "x")
	deleted := false
	b.beforeTake = func(name string) {
		if !deleted {
			deleted = true
			other.do("delete r", "DELETED")
		}
	}
	c.mustMiss("r")
}

func TestThousandsOfWaitersCostLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	const n = 1000
	s := startServer(t, queue.Config{MaxConns: n + 10, MaxWaiters: n})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		c := dial(t, s.addr)
		c.send("get many/t=120000\r\n")
	}
	waitFor(t, "the waiters", func() bool { return s.stat("queue_many_waiters") == strconv.Itoa(n) })
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Both ends of each connection live in this process: the server's
	// goroutine, buffers and waiter, and the test's connection and reader.
	grew := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	per := grew / n
	if per > 64<<10 {
		t.Fatalf("%d bytes per waiting client", per)
	}
	t.Logf("%d bytes per waiting client, both ends", per)
	// One more waiter is refused at once: the bound holds.
	c := dial(t, s.addr)
	c.mustMiss("many/t=120000")
	p := dial(t, s.addr)
	p.set("many", "first")
	waitFor(t, "the first waiter served", func() bool { return s.stat("queue_many_waiters") == strconv.Itoa(n-1) })
}

func TestDisconnectReturnsOpenItemsInOrder(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, "max_open_transactions: 5\n")})
	c := dial(t, s.addr)
	for _, v := range []string{"1", "2", "3", "4"} {
		c.set("m", v)
	}
	c.do("monitor m 5 3", "VALUE m 0 1", "1", "VALUE m 0 1", "2", "VALUE m 0 1", "3", "END")
	c.nc.Close()
	waitFor(t, "the items back", func() bool { return s.stat("queue_m_items") == "4" })
	d := dial(t, s.addr)
	for _, v := range []string{"1", "2", "3", "4"} {
		d.mustGet("m", v)
	}
}

func TestMonitorWaitsForItems(t *testing.T) {
	s := startServer(t, queue.Config{Queues: configYAML(t, "max_open_transactions: 2\n")})
	c := dial(t, s.addr)
	c.send("monitor w 30 2\r\n")
	waitFor(t, "the monitor to wait", func() bool { return s.stat("queue_w_waiters") == "1" })
	p := dial(t, s.addr)
	p.set("w", "a")
	c.expect("VALUE w 0 1", "a")
	p.set("w", "b")
	c.expect("VALUE w 0 1", "b", "END")
	c.do("confirm w 5", "END")
	if got := s.stat("queue_w_open_transactions"); got != "0" {
		t.Fatalf("open_transactions = %s", got)
	}
}

// TestQueuesAreBounded names more queues than the server keeps: each
// costs a journal file, its descriptor and a goroutine, so a client
// naming new queues in a loop must not run the server out of them.
func TestQueuesAreBounded(t *testing.T) {
	s := startServer(t, queue.Config{})
	c := dial(t, s.addr)
	for i := range queue.DefaultMaxQueues {
		c.mustMiss(fmt.Sprintf("q%d", i))
	}
	c.do("get one-too-many", "SERVER_ERROR too many queues")
	c.do("set one-too-many 0 0 1\r\nx", "SERVER_ERROR too many queues")
	c.set("q0", "kept") // existing queues still work
	c.mustGet("q0", "kept")
	c.do("delete q1", "DELETED")
	c.set("one-too-many", "now fits")
	if got := s.stat("queue_one-too-many_items"); got != "1" {
		t.Fatalf("items = %q", got)
	}
}

// TestAnnouncedSetDataIsNotHeldAhead opens connections that each announce
// a set of almost max_item_size and send none of its data: the server
// holds memory for what arrived, not for what was announced.
func TestAnnouncedSetDataIsNotHeldAhead(t *testing.T) {
	const conns, size = 64, queue.DefaultMaxItemSize
	s := startServer(t, queue.Config{})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	header := fmt.Sprintf("set big 0 0 %d\r\n", size)
	var cs []*client
	for range conns {
		c := dial(t, s.addr)
		c.send(header)
		cs = append(cs, c)
	}
	want := strconv.Itoa(conns * len(header))
	waitFor(t, "the headers to be read", func() bool { return s.stat("bytes_read") == want })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > conns*size/4 {
		t.Fatalf("heap grew %d MiB for %d announced sets of %d bytes with no data", grew>>20, conns, size)
	}
	// The data still arrives whole.
	c := cs[0]
	c.send(strings.Repeat("x", size) + "\r\n")
	c.expect("STORED")
	if got, ok := c.get("big"); !ok || got != strings.Repeat("x", size) {
		t.Fatalf("got %d bytes, %v", len(got), ok)
	}
}

// TestOpenReadOfDeletedQueueIsForgotten: a connection's open read of a
// queue another client deletes ends with the queue; it does not make the
// connection's next read of a queue by that name an error.
func TestOpenReadOfDeletedQueueIsForgotten(t *testing.T) {
	s := startServer(t, queue.Config{})
	a := dial(t, s.addr)
	b := dial(t, s.addr)
	a.set("r", "old")
	a.mustGet("r/open", "old")
	b.do("delete r", "DELETED")
	b.set("r", "new")
	a.mustGet("r", "new")
	a.set("r", "newer")
	a.mustGet("r/open", "newer")
	a.do("get r/close", "END")
	if got := s.stat("queue_r_items"); got != "0" {
		t.Fatalf("items = %q", got)
	}
}

// TestWaiterThatHalfClosedGetsNothingTwice: a client that sends get/t=
// and shuts down its sending side looks gone to the server, which puts
// the item it was handed back; the client must then not receive it too.
func TestWaiterThatHalfClosedGetsNothingTwice(t *testing.T) {
	s := startServer(t, queue.Config{})
	w := dial(t, s.addr)
	w.send("get hc/t=60000\r\n")
	waitFor(t, "the waiter", func() bool { return s.stat("queue_hc_waiters") == "1" })
	w.nc.(*net.TCPConn).CloseWrite()
	c := dial(t, s.addr)
	c.set("hc", "x")
	reply, _ := io.ReadAll(w.r)
	back := s.stat("queue_hc_items") == "1"
	if strings.Contains(string(reply), "VALUE") == back {
		t.Fatalf("reply %q and the item is back in the queue: %v", reply, back)
	}
}

// TestWaitedGetConfirmsBeforeReplying holds a waited plain get's Confirm
// (as a journal's fsync would): the client must not have the item before
// the Confirm returned, or a crash then would give the item, which the
// client took, to another.
func TestWaitedGetConfirmsBeforeReplying(t *testing.T) {
	release := make(chan struct{})
	confirming := make(chan struct{}, 1)
	b := &hookBackend{beforeConfirm: func(string) {
		confirming <- struct{}{}
		<-release
	}}
	s := startServer(t, queue.Config{Backend: b})
	c := dial(t, s.addr)
	c.send("get q/t=60000\r\n")
	waitFor(t, "the waiter", func() bool { return s.stat("queue_q_waiters") == "1" })
	p := dial(t, s.addr)
	p.set("q", "once")
	select {
	case <-confirming:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("the waited get never confirmed its item")
	}
	c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err := c.r.ReadByte()
	close(release)
	if err == nil {
		t.Fatal("the client had the item while its Confirm was not done")
	}
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	c.expect("VALUE q 0 4", "once", "END")
	p.mustMiss("q")
}

// TestFailedConfirmKeepsTheReadOpen fails the store's Confirm of a
// get/close and of a confirm: the client is told, the item stays its
// open read, and goes back to the queue when the client leaves.
func TestFailedConfirmKeepsTheReadOpen(t *testing.T) {
	var fail atomic.Bool
	b := &hookBackend{confirmErr: injectedWhile(&fail)}
	s := startServer(t, queue.Config{Backend: b})
	c := dial(t, s.addr)
	c.set("q", "a")
	c.set("q", "b")
	c.mustGet("q/open", "a")
	fail.Store(true)
	c.do("get q/close", "SERVER_ERROR cannot confirm the item")
	c.do("confirm q 1", "SERVER_ERROR cannot confirm the item")
	fail.Store(false)
	c.do("get q/close", "END") // a is confirmed now
	c.mustGet("q/open", "b")
	fail.Store(true)
	c.do("get q/close", "SERVER_ERROR cannot confirm the item")
	c.nc.Close()
	fail.Store(false)
	p := dial(t, s.addr)
	// p is counted once it has an answer: then one connection is p alone.
	p.send("version\r\n")
	if l := p.line(); !strings.HasPrefix(l, "VERSION ") {
		t.Fatalf("version: %q", l)
	}
	waitFor(t, "the client to leave", func() bool { return s.stat("curr_connections") == "1" })
	p.mustGet("q", "b")
	p.mustMiss("q")
}

// injectedWhile returns a hook that fails with an injected write error
// while fail is set.
func injectedWhile(fail *atomic.Bool) func() error {
	return func() error {
		if fail.Load() {
			return errors.New("injected write error")
		}
		return nil
	}
}

// TestFailedFlushIsReported fails the store's Flush: flush and flush_all
// say so instead of answering as if the items were gone.
func TestFailedFlushIsReported(t *testing.T) {
	var fail atomic.Bool
	b := &hookBackend{flushErr: injectedWhile(&fail)}
	s := startServer(t, queue.Config{Backend: b})
	c := dial(t, s.addr)
	c.set("q", "a")
	fail.Store(true)
	c.do("flush q", "SERVER_ERROR cannot flush the queue")
	c.do("flush_all", "SERVER_ERROR cannot flush every queue")
	fail.Store(false)
	c.mustGet("q/peek", "a")
	c.do("flush q", "END")
	c.mustMiss("q")
	c.set("q", "b")
	c.do("flush_all", "Flushed all queues.")
	c.mustMiss("q")
}

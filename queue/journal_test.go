package queue_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/queue"
)

func TestJournalBackendKeepsQueuesOverRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, queue.Config{Backend: queue.NewJournalBackend(dir, nil), DefaultSync: "always"})
	c := dial(t, s.addr)
	c.set("jobs", "one")
	c.set("jobs", "two")
	c.set("jobs", "three")
	c.mustGet("jobs", "one")
	c.mustGet("jobs/open", "two") // open when the server stops: goes back
	c.mustMiss("orders+audit")
	c.set("orders", "o")
	s.stop()

	s2 := startServer(t, queue.Config{Backend: queue.NewJournalBackend(dir, nil)})
	if got := s2.stat("queue_jobs_items"); got != "2" {
		t.Fatalf("jobs items after restart = %q", got)
	}
	d := dial(t, s2.addr)
	d.mustGet("jobs", "two")
	d.mustGet("jobs", "three")
	d.mustMiss("jobs")
	// The fanout child is known again from its journal.
	d.set("orders", "p")
	d.mustGet("orders+audit", "o")
	d.mustGet("orders+audit", "p")
	d.do("delete jobs", "DELETED")
	s2.stop()

	s3 := startServer(t, queue.Config{Backend: queue.NewJournalBackend(dir, nil)})
	if got := s3.stat("queue_jobs_items"); got != "" {
		t.Fatalf("a deleted queue came back: items = %q", got)
	}
}

func TestJournalBackendRefusals(t *testing.T) {
	s := startServer(t, queue.Config{
		Backend: queue.NewJournalBackend(t.TempDir(), nil),
		Queues:  configYAML(t, "default:\n  max_items: 1\nqueues:\n  lossy:\n    discard_old_when_full: true\n"),
	})
	c := dial(t, s.addr)
	c.set("q", "a")
	c.do("set q 0 0 1\r\nb", "NOT_STORED")
	c.set("lossy", "a")
	c.set("lossy", "b")
	c.mustGet("lossy", "b")
	if got := s.stat("queue_lossy_discarded"); got != "1" {
		t.Fatalf("discarded = %s", got)
	}
	// Waiters, open reads and abort over the journal.
	c.send("get w/t=20000/open\r\n")
	waitFor(t, "the waiter", func() bool { return s.stat("queue_w_waiters") == "1" })
	d := dial(t, s.addr)
	d.set("w", "x")
	c.expect("VALUE w 0 1", "x", "END")
	c.do("get w/abort", "END")
	d.mustGet("w", "x")
}

func TestJournalBackendLongNames(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("n", queue.MaxNameLength)
	long2 := strings.Repeat("n", queue.MaxNameLength-1)
	s := startServer(t, queue.Config{Backend: queue.NewJournalBackend(dir, nil)})
	c := dial(t, s.addr)
	c.set(long, "a")
	c.set(long2, "b")
	s.stop()
	s2 := startServer(t, queue.Config{Backend: queue.NewJournalBackend(dir, nil)})
	d := dial(t, s2.addr)
	d.mustGet(long, "a")
	d.mustGet(long2, "b")
	d.do("delete "+long, "DELETED")
	d.do("delete "+long2, "DELETED")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left after delete: %d", len(ents))
	}
}

// deleteHookBackend is a JournalBackend whose stores call beforeDelete
// before deleting their journal.
type deleteHookBackend struct {
	*queue.JournalBackend
	beforeDelete func(name string)
}

type deleteHookStore struct {
	queue.Store
	name string
	b    *deleteHookBackend
}

func (b *deleteHookBackend) Open(name string, cfg queue.StoreConfig) (queue.Store, error) {
	st, err := b.JournalBackend.Open(name, cfg)
	if err != nil {
		return nil, err
	}
	return deleteHookStore{st, name, b}, nil
}

func (s deleteHookStore) Delete() error {
	if s.b.beforeDelete != nil {
		s.b.beforeDelete(s.name)
	}
	return s.Store.Delete()
}

// TestSetDuringDeleteKeepsItsItem sends a set to a queue while its delete
// is under way: the set must neither bring the deleted items back (by
// replaying the journal being deleted) nor lose its own item (by writing
// to the journal the delete then removes).
func TestSetDuringDeleteKeepsItsItem(t *testing.T) {
	dir := t.TempDir()
	b := &deleteHookBackend{JournalBackend: queue.NewJournalBackend(dir, nil)}
	s := startServer(t, queue.Config{Backend: b, DefaultSync: "always"})
	c := dial(t, s.addr)
	other := dial(t, s.addr)
	c.set("r", "old")
	once := false
	b.beforeDelete = func(string) {
		if once {
			return
		}
		once = true
		other.send("set r 0 0 3\r\nnew\r\n")
		// Give the set the time to go through, if it can.
		other.nc.SetReadDeadline(time.Now().Add(time.Second))
		other.r.Peek(1)
		other.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	}
	c.do("delete r", "DELETED")
	other.expect("STORED")
	c.mustGet("r/peek", "new")
	s.stop()

	s2 := startServer(t, queue.Config{Backend: queue.NewJournalBackend(dir, nil)})
	d := dial(t, s2.addr)
	d.mustGet("r", "new")
	d.mustMiss("r")
}

// TestExpireToQueueKeepsEveryItem expires a long run of items at one
// take: each goes to the expire_to_queue, none is dropped, and a client
// waiting on that queue gets the first.
func TestExpireToQueueKeepsEveryItem(t *testing.T) {
	const n = 5000
	s := startServer(t, queue.Config{
		Backend: queue.NewJournalBackend(t.TempDir(), nil),
		Queues:  configYAML(t, "queues:\n  q:\n    expire_to_queue: dead\n"),
	})
	waiter := dial(t, s.addr)
	waiter.send("get dead/t=10000\r\n")
	c := dial(t, s.addr)
	c.send(strings.Repeat("set q 0 -1 1 noreply\r\nx\r\n", n))
	c.do("get q/peek", "END")
	waiter.expect("VALUE dead 0 1", "x", "END")
	if got := s.stat("queue_q_expired_items"); got != strconv.Itoa(n) {
		t.Fatalf("queue_q_expired_items = %s, want %d", got, n)
	}
	if got := s.stat("queue_dead_items"); got != strconv.Itoa(n-1) {
		t.Fatalf("queue_dead_items = %s, want %d (one went to the waiter)", got, n-1)
	}
}

// TestExpireToQueueCycle moves expired items around a cycle of
// expire_to_queue settings while a waiter's take runs the hooks.
func TestExpireToQueueCycle(t *testing.T) {
	s := startServer(t, queue.Config{
		Queues: configYAML(t, "queues:\n  a:\n    expire_to_queue: b\n  b:\n    expire_to_queue: a\n"),
	})
	c := dial(t, s.addr)
	c.do("set a 0 -1 1\r\nx", "STORED")
	waiter := dial(t, s.addr)
	waiter.send("get b/t=10000\r\n")
	waitFor(t, "a waiter on b", func() bool { return s.stat("queue_b_waiters") == "1" })
	// The waiter's take finds y expired: y goes to a, whose put finds x
	// expired, which goes to b, and to the waiter.
	c.do("set b 0 -1 1\r\ny", "STORED")
	waiter.expect("VALUE b 0 1", "x", "END")
	c.do("get a", "VALUE a 0 1", "y", "END")
}

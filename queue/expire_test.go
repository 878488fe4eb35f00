package queue_test

import (
	"testing"
	"time"

	"github.com/corvidcache/corvid/queue"
)

// TestExpiredItemReachesWaiterDuringAnotherWait: a get/t= on a finds an
// expired item and waits; the item goes to b, whose waiter gets it at
// once, not when the other wait ends.
func TestExpiredItemReachesWaiterDuringAnotherWait(t *testing.T) {
	s := startServer(t, queue.Config{
		Queues: configYAML(t, "queues:\n  a:\n    expire_to_queue: b\n"),
	})
	c := dial(t, s.addr)
	c.do("set a 0 -1 1\r\nx", "STORED")
	wb := dial(t, s.addr)
	wb.send("get b/t=3000\r\n")
	waitFor(t, "a waiter on b", func() bool { return s.stat("queue_b_waiters") == "1" })
	wa := dial(t, s.addr)
	wa.send("get a/t=60000\r\n")
	wb.expect("VALUE b 0 1", "x", "END")
}

// TestExpiredItemReachesWaiterWhenConnectionEnds: an open item that
// expired while open goes back to its queue when its client leaves; a
// waiter's take there expires it, and the waiter of the expire_to_queue
// gets it.
func TestExpiredItemReachesWaiterWhenConnectionEnds(t *testing.T) {
	// The commands' clock is an hour late: the item is live for the
	// get/open, expired for the waiter's take (on the real clock).
	s := startServer(t, queue.Config{
		Queues: configYAML(t, "queues:\n  a:\n    expire_to_queue: b\n"),
		Now:    func() time.Time { return time.Now().Add(-time.Hour) },
	})
	c := dial(t, s.addr)
	c.do("set a 0 60 1\r\nx", "STORED")
	c.do("get a/open", "VALUE a 0 1", "x", "END")
	wa := dial(t, s.addr)
	wa.send("get a/t=60000\r\n")
	waitFor(t, "a waiter on a", func() bool { return s.stat("queue_a_waiters") == "1" })
	wb := dial(t, s.addr)
	wb.send("get b/t=3000\r\n")
	waitFor(t, "a waiter on b", func() bool { return s.stat("queue_b_waiters") == "1" })
	c.nc.Close()
	wb.expect("VALUE b 0 1", "x", "END")
}

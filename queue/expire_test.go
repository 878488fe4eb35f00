package queue_test

import (
	"strings"
	"sync"
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

// expiryBackend is a MemBackend whose stores run their Expired hook on
// demand: a Take armed with holdTake stops until released, then reports
// an item expired; a Put armed with expireOnPut reports one at once.
type expiryBackend struct {
	queue.MemBackend
	mu          sync.Mutex
	holdTake    map[string]*heldTake
	expireOnPut map[string]queue.Item
}

type heldTake struct {
	it       queue.Item
	entered  chan struct{}
	released chan struct{}
}

type expiryStore struct {
	queue.Store
	b    *expiryBackend
	name string
	cfg  queue.StoreConfig
}

func (b *expiryBackend) Open(name string, cfg queue.StoreConfig) (queue.Store, error) {
	st, err := b.MemBackend.Open(name, cfg)
	if err != nil {
		return nil, err
	}
	return &expiryStore{Store: st, b: b, name: name, cfg: cfg}, nil
}

func (s *expiryStore) Take(now time.Time, open bool) (queue.Item, uint64, bool, error) {
	s.b.mu.Lock()
	h := s.b.holdTake[s.name]
	delete(s.b.holdTake, s.name)
	s.b.mu.Unlock()
	if h != nil {
		close(h.entered)
		<-h.released
		s.cfg.Expired(h.it)
	}
	return s.Store.Take(now, open)
}

func (s *expiryStore) Put(it queue.Item) error {
	s.b.mu.Lock()
	exp, ok := s.b.expireOnPut[s.name]
	delete(s.b.expireOnPut, s.name)
	s.b.mu.Unlock()
	if ok {
		s.cfg.Expired(exp)
	}
	return s.Store.Put(it)
}

// TestDeleteDuringExpireToQueueCycle: a waiter's take on a (a's lock
// held) moves an expired item to b, whose put moves one back to a while
// a is being deleted. The move waits for the delete to end, which must
// not wait for a's lock.
func TestDeleteDuringExpireToQueueCycle(t *testing.T) {
	b := &expiryBackend{holdTake: map[string]*heldTake{}, expireOnPut: map[string]queue.Item{}}
	s := startServer(t, queue.Config{
		Backend:       b,
		Queues:        configYAML(t, "queues:\n  a:\n    expire_to_queue: b\n  b:\n    expire_to_queue: a\n"),
		ShutdownGrace: 100 * time.Millisecond,
		StopTimeout:   time.Second,
	})
	w := dial(t, s.addr)
	w.send("get a/t=60000\r\n")
	waitFor(t, "a waiter on a", func() bool { return s.stat("queue_a_waiters") == "1" })
	h := &heldTake{it: queue.Item{Data: []byte("x")}, entered: make(chan struct{}), released: make(chan struct{})}
	b.mu.Lock()
	b.holdTake["a"] = h
	b.expireOnPut["b"] = queue.Item{Data: []byte("y")}
	b.mu.Unlock()
	setter := dial(t, s.addr)
	setter.send("set a 0 0 1\r\nz\r\n")
	<-h.entered
	deleter := dial(t, s.addr)
	deleter.send("delete a\r\n")
	// Nothing tells that the delete has begun without a's lock, held by
	// the take: give it time (if it has not begun, the test passes
	// without testing the cycle).
	time.Sleep(300 * time.Millisecond)
	close(h.released)
	deleter.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	deleter.expect("DELETED")
	setter.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	setter.expect("STORED")
	w.expect("END")
	c := dial(t, s.addr)
	c.do("get b", "VALUE b 0 1", "x", "END")
	c.do("get a", "VALUE a 0 1", "y", "END")
}

// TestExpireToQueueStress runs sets of expired items, waits, deletes,
// reloads and open reads on a cycle of expire_to_queue settings with
// fanout children, for a bounded time: every command is answered.
func TestExpireToQueueStress(t *testing.T) {
	const y = "queues:\n  a:\n    expire_to_queue: b\n  b:\n    expire_to_queue: a\n  a+c:\n    expire_to_queue: b\n"
	s := startServer(t, queue.Config{
		Backend: queue.NewJournalBackend(t.TempDir(), nil),
		Queues:  configYAML(t, y),
		Reload:  func() (*queue.FileConfig, error) { return queue.ParseConfig([]byte(y)) },
	})
	cmds := [][]string{
		{"set a 0 -1 1\r\nx\r\n", "STORED"},
		{"set b 0 -1 1\r\ny\r\n", "STORED"},
		{"set a+c 0 -1 1\r\nz\r\n", "STORED"},
		{"get a/t=20\r\n", ""},
		{"get b/t=20\r\n", ""},
		{"get a+c/t=20\r\n", ""},
		{"get b/close\r\n", ""},
		{"get a+c/peek/t=20\r\n", ""},
		{"delete a\r\n", "DELETED"},
		{"delete b\r\n", "DELETED"},
		{"reload\r\n", "Reloaded config."},
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for g := 0; g < 6; g++ {
		c := dial(t, s.addr)
		c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				cmd := cmds[(i*7+g)%len(cmds)]
				if _, err := c.nc.Write([]byte(cmd[0])); err != nil {
					t.Error(err)
					return
				}
				for {
					l, err := c.r.ReadString('\n')
					if err != nil {
						t.Errorf("%q: %v", cmd[0], err)
						return
					}
					l = strings.TrimSuffix(l, "\r\n")
					if cmd[1] != "" {
						if l != cmd[1] {
							t.Errorf("%q: got %q", cmd[0], l)
							return
						}
						break
					}
					if l == "END" {
						break
					}
					if strings.HasPrefix(l, "VALUE ") {
						if _, err := c.r.ReadString('\n'); err != nil {
							t.Errorf("%q: %v", cmd[0], err)
							return
						}
						continue
					}
					t.Errorf("%q: got %q", cmd[0], l)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	c := dial(t, s.addr)
	c.do("version", "VERSION "+queue.Version)
}

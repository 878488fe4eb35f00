package server

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReqsPerEventLetsOthersIn checks that an event loop serves another
// connection while one pipelines many requests: with -R 1 a client's
// "incr" that reaches the loop with another client's 1400 increments of
// the same key (read whole, in one read) is answered in the middle of
// them. Served whole, as before -R was honoured, the batch ran first and
// the second client saw 1400.
//
// Both requests must wait for the loop together, or the test races the
// loop: it holds the loop in a third connection's "stats conns", which
// takes the server's lock, while it writes them. The loop then finds them
// ready in the order they came, and reads both before it serves either.
// Should the loop reach the lock only after they came (a busy machine),
// epoll may list the second first and the loop serves it first (0): the
// test tries again, up to ten times.
func TestReqsPerEventLetsOthersIn(t *testing.T) {
	s, addr := start(t, Config{EventLoops: 1, ReqsPerEvent: 1})
	const batch = 1400 // "incr nN 1\r\n" lines fitting a 16 KiB read
	var seen []int
	for attempt := range 10 {
		key := "n" + strconv.Itoa(attempt)
		a, b, held := dial(t, "tcp", addr), dial(t, "tcp", addr), dial(t, "tcp", addr)
		a.expect("set "+key+" 0 0 1\r\n0\r\n", "STORED")
		b.expect("version\r\n", "VERSION "+Version)
		held.expect("version\r\n", "VERSION "+Version)
		drained := make(chan error, 1)
		go func() {
			// Read the batch's replies while it is served.
			for range batch {
				if _, err := a.r.ReadString('\n'); err != nil {
					drained <- err
					return
				}
			}
			drained <- nil
		}()
		func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			held.send("stats conns\r\n")
			time.Sleep(20 * time.Millisecond) // for the loop to reach the lock
			a.send(strings.Repeat("incr "+key+" 1\r\n", batch))
			b.send("incr " + key + " 0\r\n")
		}()
		v, err := strconv.Atoi(b.line())
		if err != nil {
			t.Fatal(err)
		}
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
		if v > 0 && v < batch {
			t.Logf("attempt %d: served after %d of %d increments", attempt, v, batch)
			return
		}
		seen = append(seen, v)
	}
	t.Errorf("the other client was never served in the middle of the batch: %v", seen)
}

// TestCloseAnswersYieldedInput closes the server while a connection is
// part way through pipelined gets, yielding after each (-R 1, some 2000
// turns of its event loop or goroutine): as for input answered at once,
// every request read is answered before the connection is closed.
func TestCloseAnswersYieldedInput(t *testing.T) {
	for _, loops := range []int{1, -1} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			closeAnswersYieldedInput(t, loops)
		})
	}
}

func closeAnswersYieldedInput(t *testing.T, loops int) {
	const n = 2000 // "get k\r\n" lines fitting a 16 KiB read
	batch := strings.Repeat("get k\r\n", n)
	for range 3 {
		s, addr := start(t, Config{EventLoops: loops, ReqsPerEvent: 1})
		c := dial(t, "tcp", addr)
		c.expect("version\r\n", "VERSION "+Version)
		c.send(batch)
		// Close once the gets are read, most likely while they are
		// being answered.
		for deadline := time.Now().Add(10 * time.Second); s.stats.bytesRead.Load() < uint64(len("version\r\n")+len(batch)); {
			if time.Now().After(deadline) {
				t.Fatal("the gets were not read within 10s")
			}
			runtime.Gosched()
		}
		answered := s.stats.cmdGet.Load()
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		for i := range n {
			if l, err := c.r.ReadString('\n'); err != nil || l != "END\r\n" {
				t.Fatalf("reply %d of %d (%d answered when the close began): %q, %v", i+1, n, answered, l, err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		t.Logf("%d of %d gets answered when the close began", answered, n)
	}
}

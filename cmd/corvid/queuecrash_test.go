//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// queueCrashKillsEnv sets the kills of TestQueueBinaryCrash (default 10);
// bench/queue-crash.sh sets it for the long run.
const queueCrashKillsEnv = "CORVID_QUEUE_CRASH_KILLS"

// queueCrashLog is what the clients of one run of the corvid queue
// process saw before it was killed. It is safe for concurrent use.
type queueCrashLog struct {
	mu         sync.Mutex
	sent       int          // the highest number the writer sent; -1: none
	acked      map[int]bool // answered STORED
	opened     map[int]bool // returned by get q/.../open
	confirming map[int]bool // its close was sent: may be gone or back
	confirmed  map[int]bool // its close was answered: gone for good
}

func (l *queueCrashLog) note(m map[int]bool, n int) {
	l.mu.Lock()
	m[n] = true
	l.mu.Unlock()
}

func (l *queueCrashLog) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// queueCrashWriter sets q to start, start+1, ... over its own connection
// until the connection fails, noting each STORED.
func queueCrashWriter(addr string, start int, l *queueCrashLog) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	for n := start; ; n++ {
		v := strconv.Itoa(n)
		l.mu.Lock()
		l.sent = n
		l.mu.Unlock()
		fmt.Fprintf(rw, "set q 0 0 %d\r\n%s\r\n", len(v), v)
		if rw.Flush() != nil {
			return nil
		}
		line, err := rw.ReadString('\n')
		if err != nil {
			return nil // killed
		}
		if line != "STORED\r\n" {
			return fmt.Errorf("set %d: %q", n, line)
		}
		l.note(l.acked, n)
	}
}

// queueCrashReader reads q with get q/close/open/t=100 over its own
// connection until the connection fails: each reply confirms the item
// the previous one opened.
func queueCrashReader(addr string, l *queueCrashLog) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	open := -1
	for {
		if open >= 0 {
			l.note(l.confirming, open)
		}
		rw.WriteString("get q/close/open/t=100\r\n")
		if rw.Flush() != nil {
			return nil
		}
		line, err := rw.ReadString('\n')
		if err != nil {
			return nil
		}
		if open >= 0 {
			l.note(l.confirmed, open)
			open = -1
		}
		if line == "END\r\n" {
			continue
		}
		var size int
		if _, err := fmt.Sscanf(line, "VALUE q 0 %d\r\n", &size); err != nil {
			return fmt.Errorf("get: %q", line)
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(rw.Reader, data); err != nil {
			return nil
		}
		if end, err := rw.ReadString('\n'); err != nil {
			return nil
		} else if end != "END\r\n" {
			return fmt.Errorf("get: %q after the value", end)
		}
		n, err := strconv.Atoi(string(data[:size]))
		if err != nil {
			return fmt.Errorf("get: item %q", data)
		}
		l.note(l.opened, n)
		open = n
	}
}

// drainQueue takes every item of q with plain gets and returns them.
func drainQueue(t *testing.T, addr string) []int {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(nc)
	var got []int
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("the queue does not drain")
		}
		if _, err := nc.Write([]byte("get q\r\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "END\r\n" {
			return got
		}
		var size int
		if _, err := fmt.Sscanf(line, "VALUE q 0 %d\r\n", &size); err != nil {
			t.Fatalf("get: %q", line)
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(r, data); err != nil {
			t.Fatal(err)
		}
		if end, err := r.ReadString('\n'); err != nil || end != "END\r\n" {
			t.Fatalf("get: %q (%v) after the value", end, err)
		}
		n, err := strconv.Atoi(string(data[:size]))
		if err != nil {
			t.Fatalf("item %q", data)
		}
		got = append(got, n)
	}
}

// TestQueueBinaryCrash is issue 17's crash test of the corvid queue
// process: a writer sets numbered items with --sync always while a reader
// opens and confirms them (get q/close/open), and the process is killed
// with SIGKILL once the writer has a random number of items acknowledged.
// After each restart on the same data directory the queue is drained and
// must hold every acknowledged item not confirmed exactly once and in
// order (the opened but unconfirmed ones among them), and no confirmed
// item.
func TestQueueBinaryCrash(t *testing.T) {
	kills := 10
	if s := os.Getenv(queueCrashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q", queueCrashKillsEnv, s)
		}
		kills = n
	}
	data := filepath.Join(t.TempDir(), "data")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	next, done, acked, confirmed, lost, dups := 0, 0, 0, 0, 0, 0
	for kill := range kills {
		done++
		p := startQueueProc(t, "--data-dir", data, "--sync", "always")
		l := &queueCrashLog{sent: -1, acked: map[int]bool{}, opened: map[int]bool{}, confirming: map[int]bool{}, confirmed: map[int]bool{}}
		errs := make(chan error, 2)
		go func() { errs <- queueCrashWriter(p.addr, next, l) }()
		go func() { errs <- queueCrashReader(p.addr, l) }()
		// The kill lands once a random number of items is acknowledged:
		// with the reader somewhere in its open and confirm.
		target := 1 + rng.IntN(200)
		deadline := time.Now().Add(time.Minute)
		for delay := time.Millisecond; l.ackedCount() < target; delay = min(2*delay, 20*time.Millisecond) {
			if time.Now().After(deadline) {
				p.kill(t)
				t.Fatalf("kill %d: %d of %d items acknowledged within a minute\n%s", kill, l.ackedCount(), target, p.stderr)
			}
			time.Sleep(delay)
		}
		p.kill(t)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("kill %d: %v", kill, err)
			}
		}

		p = startQueueProc(t, "--data-dir", data, "--sync", "always")
		got := drainQueue(t, p.addr)
		p.kill(t)

		l.mu.Lock()
		in := map[int]int{}
		for i, n := range got {
			in[n]++
			if in[n] > 1 {
				dups++
				t.Errorf("kill %d: item %d is back twice: %v", kill, n, got)
			} else if i > 0 && n < got[i-1] {
				t.Errorf("kill %d: item %d after %d: %v", kill, n, got[i-1], got)
			}
			if l.confirmed[n] {
				t.Errorf("kill %d: confirmed item %d is back", kill, n)
			}
			if n < next || n > l.sent {
				t.Errorf("kill %d: item %d was never sent (sent %d to %d)", kill, n, next, l.sent)
			}
		}
		for n := range l.acked {
			if in[n] == 0 && !l.confirming[n] {
				lost++
				t.Errorf("kill %d: lost acknowledged item %d", kill, n)
			}
		}
		for n := range l.opened {
			if in[n] == 0 && !l.confirming[n] {
				t.Errorf("kill %d: opened item %d did not come back", kill, n)
			}
		}
		acked += len(l.acked)
		confirmed += len(l.confirmed)
		next = l.sent + 1
		l.mu.Unlock()
		if t.Failed() {
			break
		}
	}
	t.Logf("%d kills, %d items acknowledged, %d confirmed, %d lost, %d duplicates", done, acked, confirmed, lost, dups)
}

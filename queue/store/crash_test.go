package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a helper that puts
// numbered items with SyncAlways while another goroutine takes them in
// transactions and confirms them (and, in the mixed runs, aborts some,
// takes some without a transaction, and keeps little in memory), reporting each step on stdout once it
// returned. The test kills it with SIGKILL at a random moment, replays the
// journal and checks the queue against what the helper reported.
const (
	crashHelperEnv = "CORVID_QSTORE_CRASH_HELPER" // the helper's data dir
	crashStartEnv  = "CORVID_QSTORE_CRASH_START"  // the first number it puts
	crashItersEnv  = "CORVID_QSTORE_CRASH_ITERS"  // kills in TestCrash (default 20)
	crashMixedEnv  = "CORVID_QSTORE_CRASH_MIXED"  // set: the helper also aborts and takes plainly, in read-behind
)

func crashHelper() {
	dir := os.Getenv(crashHelperEnv)
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	mixed := os.Getenv(crashMixedEnv) != ""
	// A small journal limit, so kills also land in compactions; in the
	// mixed run, a small memory limit so most items are read back from
	// the journal.
	cfg := Config{Sync: SyncPolicy{Mode: SyncAlways}, MaxJournalSize: 8 << 10}
	if mixed {
		cfg.MaxMemorySize = 64
	}
	q, err := Open(dir, "q", cfg, nil)
	if err != nil {
		say("E %v", err)
		os.Exit(2)
	}
	say("R")
	go func() {
		for i := start; ; i++ {
			if err := q.Put(Item{Data: fmt.Appendf(nil, "%d", i)}); err != nil {
				say("E put: %v", err)
				os.Exit(2)
			}
			say("P %d", i)
		}
	}()
	for i := 0; ; i++ {
		if mixed && i%3 == 2 {
			// A plain take: gone for good once it returned. The head is
			// announced first (this goroutine is the only reader).
			h, ok, err := q.Peek(time.Now())
			if err != nil {
				say("E peek: %v", err)
				os.Exit(2)
			}
			if !ok {
				continue
			}
			say("t %s", h.Data)
			it, _, ok, err := q.Take(time.Now(), false)
			if err != nil || !ok || string(it.Data) != string(h.Data) {
				say("E take: %q after peeking %q: %v", it.Data, h.Data, err)
				os.Exit(2)
			}
			say("T %s", it.Data)
			continue
		}
		it, xid, ok, err := q.Take(time.Now(), true)
		if err != nil {
			say("E take: %v", err)
			os.Exit(2)
		}
		if !ok {
			time.Sleep(50 * time.Microsecond) // the writer is behind
			continue
		}
		say("O %s", it.Data)
		if mixed && i%3 == 1 {
			// Put back at the head: the next take gets it again.
			if err := q.Abort(xid); err != nil {
				say("E abort: %v", err)
				os.Exit(2)
			}
			continue
		}
		say("c %s", it.Data)
		if err := q.Confirm(xid); err != nil {
			say("E confirm: %v", err)
			os.Exit(2)
		}
		say("C %s", it.Data)
	}
}

// crashRun is what one helper reported before it was killed.
type crashRun struct {
	acked, opened, confirming, confirmed map[int]bool
	max                                  int
}

func runCrashHelper(t *testing.T, dir string, start int, mixed bool, rng *rand.Rand) crashRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(start))
	if mixed {
		cmd.Env = append(cmd.Env, crashMixedEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	var lines []string
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "R" {
				close(ready)
			}
			lines = append(lines, sc.Text())
		}
	}()
	select {
	case <-ready:
		// The kill lands at a random moment of the helper's work.
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
	case <-done:
	case <-time.After(60 * time.Second):
	}
	cmd.Process.Kill()
	<-done
	cmd.Wait()
	r := crashRun{acked: map[int]bool{}, opened: map[int]bool{}, confirming: map[int]bool{}, confirmed: map[int]bool{}, max: -1}
	sawReady := false
	for _, l := range lines {
		if l == "R" {
			sawReady = true
			continue
		}
		op, arg, _ := strings.Cut(l, " ")
		n, err := strconv.Atoi(arg)
		if err != nil {
			t.Fatalf("helper said %q", l)
		}
		r.max = max(r.max, n)
		switch op {
		case "P":
			r.acked[n] = true
		case "O":
			r.opened[n] = true
		case "c", "t": // being confirmed or taken: may be gone
			r.confirming[n] = true
		case "C", "T": // gone for good
			r.confirmed[n] = true
		}
	}
	if !sawReady {
		t.Fatalf("helper never got ready: %q", lines)
	}
	return r
}

// TestCrash kills a writer and a transactional reader with SIGKILL at
// random moments and checks after each restart that every acknowledged
// item is there exactly once and in order, that confirmed items are gone
// and that open ones are back.
func TestCrash(t *testing.T) {
	iters := 20
	if s := os.Getenv(crashItersEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s=%q", crashItersEnv, s)
		}
		iters = n
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	var queued []int // what the queue held after the last restart
	next, acked, confirmed := 0, 0, 0
	for iter := range iters {
		// Odd runs also abort, take without a transaction and read most
		// items back from the journal.
		r := runCrashHelper(t, dir, next, iter%2 == 1, rng)
		acked += len(r.acked)
		confirmed += len(r.confirmed)

		q, err := Open(dir, "q", Config{}, nil)
		if err != nil {
			t.Fatalf("kill %d: %v", iter, err)
		}
		var got []int
		for {
			// Taken in transactions that stay open: Close leaves them for
			// the next Open to put back.
			it, _, ok, err := q.Take(time.Now(), true)
			if err != nil {
				t.Fatalf("kill %d: %v", iter, err)
			}
			if !ok {
				break
			}
			n, err := strconv.Atoi(string(it.Data))
			if err != nil {
				t.Fatalf("kill %d: item %q", iter, it.Data)
			}
			got = append(got, n)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}

		in := map[int]bool{}
		for i, n := range got {
			if i > 0 && n <= got[i-1] {
				t.Fatalf("kill %d: out of order or repeated: %v", iter, got)
			}
			in[n] = true
			if r.confirmed[n] {
				t.Fatalf("kill %d: confirmed item %d is back", iter, n)
			}
			if n < next && !slices.Contains(queued, n) {
				t.Fatalf("kill %d: item %d was gone before and is back", iter, n)
			}
			// The writer puts one item at a time: at most the one after
			// the last it reported can be on disk unreported.
			if n > max(r.max, next-1)+1 {
				t.Fatalf("kill %d: item %d was never put (started at %d, last reported %d)", iter, n, next, r.max)
			}
		}
		for _, n := range queued {
			if !in[n] && !r.confirming[n] {
				t.Fatalf("kill %d: lost item %d queued before the start", iter, n)
			}
		}
		for n := range r.acked {
			if !in[n] && !r.confirming[n] {
				t.Fatalf("kill %d: lost acknowledged item %d", iter, n)
			}
		}
		for n := range r.opened {
			if !in[n] && !r.confirming[n] {
				t.Fatalf("kill %d: open item %d did not come back", iter, n)
			}
		}
		queued = got
		next = max(next, r.max+2)
		if len(got) > 0 {
			next = max(next, got[len(got)-1]+1)
		}
	}
	t.Logf("%d kills, %d items acknowledged, %d confirmed, 0 lost, 0 duplicates", iters, acked, confirmed)
}

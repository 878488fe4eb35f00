package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		crashHelper()
		return
	}
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, dir string, cfg Config) *Queue {
	t.Helper()
	q, err := Open(dir, "q", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func put(t testing.TB, q *Queue, s string) {
	t.Helper()
	if err := q.Put(Item{Data: []byte(s)}); err != nil {
		t.Fatalf("Put(%q): %v", s, err)
	}
}

func take(t testing.TB, q *Queue) string {
	t.Helper()
	it, _, ok, err := q.Take(time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<empty>"
	}
	return string(it.Data)
}

// drain takes everything and returns it joined by spaces.
func drain(t testing.TB, q *Queue) string {
	t.Helper()
	var got []string
	for range 1_000_000 {
		s := take(t, q)
		if s == "<empty>" {
			break
		}
		got = append(got, s)
	}
	return strings.Join(got, " ")
}

func reopen(t testing.TB, q *Queue, dir string, cfg Config) *Queue {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, dir, cfg)
}

func TestParseSync(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want SyncPolicy
		bad  bool
	}{
		{in: "always", want: SyncPolicy{Mode: SyncAlways}},
		{in: "never", want: SyncPolicy{Mode: SyncNever}},
		{in: "10ms", want: SyncPolicy{Mode: SyncInterval, Every: 10 * time.Millisecond}},
		{in: "interval=2s", want: SyncPolicy{Mode: SyncInterval, Every: 2 * time.Second}},
		{in: "interval=", bad: true},
		{in: "0ms", bad: true},
		{in: "-1ms", bad: true},
		{in: "sometimes", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseSync(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseSync(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSync(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if again, err := ParseSync(got.String()); err != nil || again != got {
			t.Errorf("ParseSync(%q.String()) = %v, %v", tc.in, again, err)
		}
	}
}

func TestOpenRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if q, err := Open(t.TempDir(), name, Config{}, nil); !errors.Is(err, ErrBadName) {
			if q != nil {
				q.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrBadName", name, err)
		}
	}
}

func TestOpenReportsUnwritableDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if q, err := Open(filepath.Join(file, "sub"), "q", Config{}, nil); err == nil {
		q.Close()
		t.Fatal("Open under a regular file succeeded")
	}
}

func TestFIFOAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Config{})
	for i := range 5 {
		put(t, q, fmt.Sprint(i))
	}
	if got := take(t, q); got != "0" {
		t.Fatalf("first take = %q", got)
	}
	q = reopen(t, q, dir, Config{})
	if got := drain(t, q); got != "1 2 3 4" {
		t.Fatalf("after reopen: %q", got)
	}
	q = reopen(t, q, dir, Config{})
	if got := drain(t, q); got != "" {
		t.Fatalf("after drain and reopen: %q", got)
	}
}

func TestItemFieldsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Config{})
	added := time.Unix(1700000000, 123)
	exp := time.Now().Add(time.Hour).Round(0)
	want := Item{Data: []byte("v"), Flags: 0xdeadbeef, Added: added, Expiry: exp}
	if err := q.Put(want); err != nil {
		t.Fatal(err)
	}
	q = reopen(t, q, dir, Config{})
	got, _, ok, err := q.Take(time.Now(), false)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if string(got.Data) != "v" || got.Flags != want.Flags || !got.Added.Equal(added) || !got.Expiry.Equal(exp) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestTransactions(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Config{})
	for _, s := range []string{"a", "b", "c", "d"} {
		put(t, q, s)
	}
	_, xa, _, _ := q.Take(time.Now(), true)
	_, xb, _, _ := q.Take(time.Now(), true)
	_, xc, _, _ := q.Take(time.Now(), true)
	if s := q.Stats(); s.OpenTransactions != 3 || s.Items != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := q.Confirm(xb); err != nil {
		t.Fatal(err)
	}
	if err := q.Confirm(xb); !errors.Is(err, ErrNoTransaction) {
		t.Fatalf("second Confirm = %v", err)
	}
	if err := q.Abort(xc); err != nil {
		t.Fatal(err)
	}
	if got := take(t, q); got != "c" {
		t.Fatalf("aborted item not at the head: %q", got)
	}
	// a is still open: the next Open puts it back at the head.
	_ = xa
	q = reopen(t, q, dir, Config{})
	if s := q.Stats(); s.OpenTransactions != 0 || s.Items != 2 {
		t.Fatalf("stats after reopen %+v", s)
	}
	// Open it again and reopen twice: the journal stays consistent.
	if _, _, ok, err := q.Take(time.Now(), true); !ok || err != nil {
		t.Fatal(ok, err)
	}
	q = reopen(t, q, dir, Config{})
	q = reopen(t, q, dir, Config{})
	if got := drain(t, q); got != "a d" {
		t.Fatalf("got %q, want \"a d\"", got)
	}
}

func TestOpenItemsComeBackInPutOrder(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Config{})
	for _, s := range []string{"a", "b", "c", "d"} {
		put(t, q, s)
	}
	var xids []uint64
	for range 3 {
		_, x, _, _ := q.Take(time.Now(), true)
		xids = append(xids, x)
	}
	// Abort b and open it again: its xid is now the newest.
	if err := q.Abort(xids[1]); err != nil {
		t.Fatal(err)
	}
	if it, _, _, _ := q.Take(time.Now(), true); string(it.Data) != "b" {
		t.Fatalf("took %q after abort", it.Data)
	}
	q = reopen(t, q, dir, Config{})
	if got := drain(t, q); got != "a b c d" {
		t.Fatalf("got %q", got)
	}
}

// TestOpenItemsComeBackInPutOrderAfterCompaction puts an item back at the
// head while a later one is open, has the journal rewritten, opens the
// first again: after a reopen both come back in the order they were put,
// as without the rewrite.
func TestOpenItemsComeBackInPutOrderAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncPolicy{Mode: SyncAlways}, MaxJournalSize: 1 << 10}
	q := open(t, dir, cfg)
	for _, s := range []string{"a", "b", "c"} {
		put(t, q, s)
	}
	_, xa, _, _ := q.Take(time.Now(), true)
	q.Take(time.Now(), true)
	must(t, q.Abort(xa)) // a is back at the head, b stays open
	// Open and abort a until the journal passes its limit and is
	// rewritten.
	written := q.Stats().LogSize
	for range 100 {
		it, x, _, _ := q.Take(time.Now(), true)
		if string(it.Data) != "a" {
			t.Fatalf("took %q, want a", it.Data)
		}
		must(t, q.Abort(x))
		written += 2 * (headerSize + 9)
	}
	if s := q.Stats(); s.LogSize >= written {
		t.Fatalf("journal of %d bytes not rewritten", s.LogSize)
	}
	if it, _, _, _ := q.Take(time.Now(), true); string(it.Data) != "a" {
		t.Fatalf("took %q, want a", it.Data)
	}
	q = reopen(t, q, dir, cfg)
	if got := drain(t, q); got != "a b c" {
		t.Fatalf("got %q, want \"a b c\"", got)
	}
}

func TestFull(t *testing.T) {
	q := open(t, t.TempDir(), Config{MaxItems: 2})
	put(t, q, "a")
	put(t, q, "b")
	if err := q.Put(Item{Data: []byte("c")}); !errors.Is(err, ErrFull) {
		t.Fatalf("Put on full = %v", err)
	}
	q.SetConfig(Config{MaxSize: 3})
	if err := q.Put(Item{Data: []byte("cd")}); !errors.Is(err, ErrFull) {
		t.Fatalf("Put past MaxSize = %v", err)
	}
	put(t, q, "c")
	q.SetConfig(Config{MaxItemSize: 2})
	if err := q.Put(Item{Data: []byte("xyz")}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put past MaxItemSize = %v", err)
	}
	if got := drain(t, q); got != "a b c" {
		t.Fatalf("got %q", got)
	}
}

// TestLongRunOfExpiredItems has a take drop many expired items, most
// of them read back from the journal: they reach the Expired hook in
// batches, not all held in memory at once, and every one of them does.
func TestLongRunOfExpiredItems(t *testing.T) {
	const n, size = 100, 64 << 10
	var q *Queue
	var seen, droppedAtFirst int
	cfg := Config{MaxMemorySize: 256 << 10, Expired: func(it Item) {
		if seen == 0 {
			droppedAtFirst = int(q.Stats().ExpiredItems)
		}
		seen++
	}}
	q = open(t, t.TempDir(), cfg)
	past := time.Now().Add(-time.Hour)
	for range n {
		must(t, q.Put(Item{Data: make([]byte, size), Expiry: past}))
	}
	put(t, q, "live")
	if got := take(t, q); got != "live" {
		t.Fatalf("took %q", got)
	}
	if seen != n {
		t.Fatalf("the hook saw %d expired items, want %d", seen, n)
	}
	if most := expireBatch/size + 1; droppedAtFirst > most {
		t.Fatalf("%d expired items (%d bytes each) were held before the hook saw the first, want at most %d",
			droppedAtFirst, size, most)
	}
}

// TestLargeItemLeavesNoScratch passes a large item through a queue, in
// memory and read back from the journal: the queue does not keep buffers
// of its size once it is gone.
func TestLargeItemLeavesNoScratch(t *testing.T) {
	q := open(t, t.TempDir(), Config{MaxMemorySize: 1})
	put(t, q, "small")
	must(t, q.Put(Item{Data: make([]byte, 1<<20)})) // read-behind
	must(t, q.Put(Item{Data: make([]byte, 1<<20)}))
	drain(t, q)
	q.mu.Lock()
	defer q.mu.Unlock()
	if cap(q.buf) > maxScratch || cap(q.rbuf) > maxScratch {
		t.Fatalf("scratch buffers of %d and %d bytes kept, want at most %d", cap(q.buf), cap(q.rbuf), maxScratch)
	}
}

func TestDiscardOldWhenFull(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{MaxItems: 2, DiscardOldWhenFull: true}
	q := open(t, dir, cfg)
	for _, s := range []string{"a", "b", "c", "d"} {
		put(t, q, s)
	}
	if s := q.Stats(); s.Discarded != 2 || s.Items != 2 {
		t.Fatalf("stats %+v", s)
	}
	q = reopen(t, q, dir, cfg)
	if got := drain(t, q); got != "c d" {
		t.Fatalf("got %q", got)
	}
}

func TestExpiry(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var dropped []string
	cfg := Config{MaxAge: time.Hour, Expired: func(it Item) {
		mu.Lock()
		dropped = append(dropped, string(it.Data))
		mu.Unlock()
	}}
	q := open(t, dir, cfg)
	now := time.Now()
	must(t, q.Put(Item{Data: []byte("old"), Added: now.Add(-2 * time.Hour)}))
	must(t, q.Put(Item{Data: []byte("expired"), Expiry: now.Add(-time.Second)}))
	must(t, q.Put(Item{Data: []byte("later"), Expiry: now.Add(time.Minute)}))
	put(t, q, "live")
	if it, ok, err := q.Peek(now); err != nil || !ok || string(it.Data) != "later" {
		t.Fatalf("Peek = %q %v %v", it.Data, ok, err)
	}
	if s := q.Stats(); s.ExpiredItems != 2 || s.Items != 2 {
		t.Fatalf("stats %+v", s)
	}
	if it, _, _, _ := q.Take(now.Add(2*time.Minute), false); string(it.Data) != "live" {
		t.Fatalf("Take = %q", it.Data)
	}
	mu.Lock()
	if got := strings.Join(dropped, " "); got != "old expired later" {
		t.Fatalf("Expired called with %q", got)
	}
	mu.Unlock()
	q = reopen(t, q, dir, cfg)
	if q.Len() != 0 {
		t.Fatalf("expired items back after reopen: %d", q.Len())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFlushAndDelete(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Config{})
	put(t, q, "a")
	put(t, q, "b")
	_, x, _, _ := q.Take(time.Now(), true)
	must(t, q.Flush())
	if q.Len() != 0 {
		t.Fatal("Flush left items")
	}
	put(t, q, "c")
	q = reopen(t, q, dir, Config{})
	// The open item survives a flush, as in Kestrel.
	if got := drain(t, q); got != "a c" {
		t.Fatalf("got %q", got)
	}
	_ = x
	must(t, q.Delete())
	if err := q.Put(Item{Data: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Delete = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "q.journal")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal still there: %v", err)
	}
}

// TestReadBehind fills a queue far past MaxMemorySize: memory stays at the
// bound while the items stay in order, also across a reopen and a
// compaction.
func TestReadBehind(t *testing.T) {
	dir := t.TempDir()
	const n, size, bound = 2000, 100, 10_000
	cfg := Config{MaxMemorySize: bound}
	q := open(t, dir, cfg)
	val := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte{'.'}, size-8), "%08d", i) }
	for i := range n {
		must(t, q.Put(Item{Data: val(i)}))
		if s := q.Stats(); s.MemBytes > bound+size {
			t.Fatalf("after %d puts MemBytes = %d", i+1, s.MemBytes)
		}
	}
	s := q.Stats()
	if s.Items != n || s.Bytes != n*size || s.MemItems > bound/size+1 {
		t.Fatalf("stats %+v", s)
	}
	next := 0
	check := func(k int) {
		t.Helper()
		for range k {
			it, _, ok, err := q.Take(time.Now(), false)
			if err != nil || !ok || !bytes.Equal(it.Data, val(next)) {
				t.Fatalf("take %d: %q %v %v", next, it.Data, ok, err)
			}
			next++
			if s := q.Stats(); s.MemBytes > bound+size {
				t.Fatalf("MemBytes = %d", s.MemBytes)
			}
		}
	}
	check(500)
	q = reopen(t, q, dir, cfg)
	check(500)
	// Compact with items both in memory and only in the journal.
	q.mu.Lock()
	if !q.rb.active {
		t.Fatal("not in read-behind")
	}
	must(t, q.rewriteLocked())
	q.mu.Unlock()
	check(500)
	for i := n; i < n+100; i++ {
		must(t, q.Put(Item{Data: val(i)}))
	}
	q = reopen(t, q, dir, cfg)
	check(600)
	if s := q.Stats(); s.Items != 0 {
		t.Fatalf("left %+v", s)
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{MaxJournalSize: 64 << 10}
	q := open(t, dir, cfg)
	val := bytes.Repeat([]byte{'x'}, 1000)
	// Drained to empty past a quarter of the limit: a fresh file.
	for range 30 {
		must(t, q.Put(Item{Data: val}))
	}
	// Write what is pending: an add record still pending when its item is
	// taken is cut instead of written, so how much of the file the drain
	// finds would otherwise depend on when the background writer ran.
	q.mu.Lock()
	must(t, q.flushLocked())
	q.mu.Unlock()
	if q.Stats().LogSize < 16<<10 {
		t.Fatal("journal did not grow")
	}
	drain(t, q)
	if s := q.Stats(); s.LogSize != 0 {
		t.Fatalf("drained journal is %d bytes", s.LogSize)
	}
	// Passing the limit with a few live items and one open: rewritten.
	put(t, q, "keep1")
	put(t, q, "keep2")
	_, xid, _, _ := q.Take(time.Now(), true)
	for i := range 200 {
		must(t, q.Put(Item{Data: val}))
		if i%2 == 1 {
			take(t, q)
			take(t, q)
		}
	}
	if s := q.Stats(); s.LogSize > 2*(64<<10) {
		t.Fatalf("journal %d bytes after compaction", s.LogSize)
	}
	must(t, q.Confirm(xid))
	q = reopen(t, q, dir, cfg)
	// keep1 was confirmed, keep2 and all but one of the others taken.
	if s := q.Stats(); s.Items != 1 || s.OpenTransactions != 0 {
		t.Fatalf("after reopen %+v", s)
	}
}

// TestTornTail cuts the journal inside its last record and corrupts a
// checksum: each is truncated with a log line and the records before stay.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		hurt func([]byte) []byte
	}{
		{"torn", func(b []byte) []byte { return b[:len(b)-3] }},
		{"header only", func(b []byte) []byte { return b[:len(b)-len("c")-addFixed] }},
		{"bad crc", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"garbage", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5) }},
		{"zeros", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q := open(t, dir, Config{})
			put(t, q, "a")
			put(t, q, "b")
			if tc.name != "garbage" && tc.name != "zeros" {
				put(t, q, "c")
			}
			must(t, q.Close())
			path := filepath.Join(dir, "q.journal")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			must(t, os.WriteFile(path, tc.hurt(b), 0o644))
			var logs bytes.Buffer
			q, err = Open(dir, "q", Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Close() })
			if !strings.Contains(logs.String(), "truncating") {
				t.Fatalf("no log line: %q", logs.String())
			}
			put(t, q, "d")
			q = reopen(t, q, dir, Config{})
			if got := drain(t, q); got != "a b d" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestSyncIntervalStopsOnClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	q, err := Open(dir, "q", Config{Sync: SyncPolicy{Mode: SyncInterval, Every: time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, q, "a")
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.syncMu.Lock()
		synced := q.synced
		q.syncMu.Unlock()
		q.mu.Lock()
		lsn := q.lsn
		q.mu.Unlock()
		if synced == lsn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("interval syncer never synced: %d of %d", synced, lsn)
		}
		time.Sleep(time.Millisecond)
	}
	must(t, q.Close())
}

func TestSyncAlwaysConcurrent(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncPolicy{Mode: SyncAlways}, MaxJournalSize: 4 << 10}
	q := open(t, dir, cfg)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.Put(Item{Data: fmt.Appendf(nil, "%d-%d", w, i)}); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					if _, x, ok, err := q.Take(time.Now(), true); err != nil {
						errs <- err
						return
					} else if ok {
						if err := q.Confirm(x); err != nil {
							errs <- err
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	q.syncMu.Lock()
	fsyncs := q.fsyncs
	q.syncMu.Unlock()
	// Each writer waits for an fsync at each Put and Confirm; while one
	// runs, the others write: they share the next.
	if max := writers * (each + each/3); fsyncs >= uint64(max) {
		t.Fatalf("%d fsyncs for %d synced operations", fsyncs, max)
	}
	t.Logf("%d fsyncs for %d synced operations", fsyncs, writers*(each+(each+2)/3))
	n := q.Len()
	q = reopen(t, q, dir, cfg)
	if q.Len() != n {
		t.Fatalf("%d items before reopen, %d after", n, q.Len())
	}
}

// TestTakenBeforeWritten checks the records an item taken before its add
// record was written leaves: none, unless it was ever open.
func TestTakenBeforeWritten(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Config{})
	put(t, q, "a")
	if got := take(t, q); got != "a" {
		t.Fatal(got)
	}
	if s := q.Stats(); s.LogSize != 0 {
		t.Fatalf("an item put and taken at once left %d bytes of journal", s.LogSize)
	}
	put(t, q, "b")
	_, x, _, _ := q.Take(time.Now(), true)
	must(t, q.Abort(x))
	if got := take(t, q); got != "b" {
		t.Fatal(got)
	}
	put(t, q, "c")
	must(t, q.Close())
	var logs bytes.Buffer
	q, err := Open(dir, "q", Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if logs.Len() > 0 {
		t.Fatalf("replay logged %q", logs.String())
	}
	if got := drain(t, q); got != "c" {
		t.Fatalf("got %q", got)
	}
}

func TestBackgroundWriter(t *testing.T) {
	for _, sync := range []SyncPolicy{{Mode: SyncNever}, {Mode: SyncInterval, Every: time.Hour}} {
		t.Run(sync.String(), func(t *testing.T) {
			dir := t.TempDir()
			q := open(t, dir, Config{Sync: sync})
			put(t, q, "a")
			deadline := time.Now().Add(10 * time.Second)
			for {
				fi, err := os.Stat(filepath.Join(dir, "q.journal"))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the pending record was never written")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

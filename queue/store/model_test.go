package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReplayMatchesLiveState runs random puts, takes, opens, confirms,
// aborts, flushes and reopens on queues with small journal and memory
// limits (so compactions and read-behind happen), and every few steps
// replays a copy of the journal, as a SIGKILL would leave it, and checks
// it against a model: the items queued, with those open back at the head
// in the order they were put.
func TestReplayMatchesLiveState(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 1))
			cfg := Config{MaxJournalSize: int64(1+rng.IntN(8)) << 10}
			if rng.IntN(2) == 0 {
				cfg.MaxMemorySize = int64(16 + rng.IntN(200))
			}
			if rng.IntN(2) == 0 {
				cfg.Sync = SyncPolicy{Mode: SyncInterval, Every: 50 * time.Millisecond}
			}
			dir := t.TempDir()
			q, err := Open(dir, "q", cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			var model []string          // queued, head first
			open := map[uint64]string{} // by xid
			putOrder := map[string]int{}
			var ops []string
			fail := func(step int, format string, args ...any) {
				t.Helper()
				q.Close()
				t.Fatalf("seed %d step %d (%+v): %s\nlast ops: %s", seed, step, cfg,
					fmt.Sprintf(format, args...), strings.Join(ops[max(0, len(ops)-30):], " "))
			}
			for step := range 400 {
				switch op := rng.IntN(10); {
				case op < 4:
					s := fmt.Sprintf("%d-%s", len(putOrder), strings.Repeat("x", rng.IntN(60)))
					putOrder[s] = len(putOrder)
					must(t, q.Put(Item{Data: []byte(s)}))
					model = append(model, s)
					ops = append(ops, "put")
				case op < 8:
					withOpen := op >= 6
					it, xid, ok, err := q.Take(time.Now(), withOpen)
					if err != nil {
						fail(step, "take: %v", err)
					}
					if ok != (len(model) > 0) || ok && string(it.Data) != model[0] {
						fail(step, "took %q (%v), want the head of %q", it.Data, ok, model)
					}
					if ok {
						if withOpen {
							open[xid] = model[0]
						}
						model = model[1:]
					}
					ops = append(ops, fmt.Sprintf("take(open=%v)", withOpen))
				case op < 9:
					for xid, s := range open {
						if rng.IntN(2) == 0 {
							must(t, q.Confirm(xid))
							ops = append(ops, "confirm")
						} else {
							must(t, q.Abort(xid))
							model = append([]string{s}, model...)
							ops = append(ops, "abort")
						}
						delete(open, xid)
						break
					}
				case rng.IntN(4) == 0:
					must(t, q.Close())
					model = afterCrash(model, open, putOrder)
					clear(open)
					if q, err = Open(dir, "q", cfg, nil); err != nil {
						t.Fatal(err)
					}
					ops = append(ops, "reopen")
				case rng.IntN(4) == 0:
					must(t, q.Flush())
					model = nil
					ops = append(ops, "flush")
				}
				if rng.IntN(10) != 0 {
					continue
				}
				snap := filepath.Join(t.TempDir(), "snap")
				snapshot(t, q, snap)
				q2, err := Open(snap, "q", Config{MaxMemorySize: cfg.MaxMemorySize}, nil)
				if err != nil {
					fail(step, "replay: %v", err)
				}
				var got []string
				for range 10_000 {
					it, _, ok, err := q2.Take(time.Now(), false)
					if err != nil {
						fail(step, "take after replay: %v", err)
					}
					if !ok {
						break
					}
					got = append(got, string(it.Data))
				}
				q2.Close()
				if want := afterCrash(model, open, putOrder); !slices.Equal(got, want) {
					fail(step, "after replay got %q, want %q", got, want)
				}
			}
			must(t, q.Close())
		})
	}
}

// snapshot copies the journal, its pending records written first, as a
// SIGKILL just after they were would leave it.
func snapshot(t *testing.T, q *Queue, dst string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	must(t, q.flushLocked())
	b, err := os.ReadFile(q.path)
	must(t, err)
	must(t, os.MkdirAll(dst, 0o755))
	must(t, os.WriteFile(filepath.Join(dst, "q.journal"), b, 0o644))
}

// afterCrash is the queue a replay gives: the open items at the head in
// the order they were put, then the queued ones.
func afterCrash(queued []string, open map[uint64]string, putOrder map[string]int) []string {
	var out []string
	for _, s := range open {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b string) int { return putOrder[a] - putOrder[b] })
	return append(out, queued...)
}

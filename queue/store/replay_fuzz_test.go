package store

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seedJournal returns a journal that uses every op, read-behind included.
func seedJournal(t testing.TB) []byte {
	dir := t.TempDir()
	q, err := Open(dir, "q", Config{MaxMemorySize: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "bb", "ccc", "dddd", "eeeee"} {
		if err := q.Put(Item{Data: []byte(s), Flags: 7, Expiry: time.Unix(4e9, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	_, x1, _, _ := q.Take(time.Now(), true)
	_, x2, _, _ := q.Take(time.Now(), true)
	q.Take(time.Now(), false)
	q.Confirm(x1)
	q.Abort(x2)
	q.Take(time.Now(), true)
	q.Put(Item{Data: []byte("f")})
	q.Flush()
	q.Put(Item{Data: []byte("g")})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "q.journal"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzReplay opens arbitrary journals: Open never fails or panics on their
// content, and what it keeps replays the same way a second time, without
// truncation.
func FuzzReplay(f *testing.F) {
	seed := seedJournal(f)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(append(bytes.Clone(seed), seed...))
	f.Add([]byte{})
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, journal []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "q.journal")
		if err := os.WriteFile(path, journal, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := Config{MaxMemorySize: 8}
		q, err := Open(dir, "q", cfg, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		n := q.Len()
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		q, err = Open(dir, "q", cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer q.Close()
		if logs.Len() > 0 {
			t.Fatalf("second Open logged %q", logs.String())
		}
		if q.Len() != n {
			t.Fatalf("%d items, then %d", n, q.Len())
		}
		for i := 0; i < n; i++ {
			if _, _, ok, err := q.Take(time.Now(), i%2 == 0); !ok || err != nil {
				t.Fatalf("take %d of %d: %v %v", i, n, ok, err)
			}
		}
	})
}

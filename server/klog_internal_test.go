package server

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestKlogDropsWhenFull fills a shard that nothing drains: lines past its
// capacity are dropped and counted, never blocking the caller.
func TestKlogDropsWhenFull(t *testing.T) {
	k := newKlog("", 1)
	k.max = 100
	line := []byte(strings.Repeat("x", 39) + "\n")
	for range 5 {
		k.add(7, line)
	}
	if got, want := k.logged.Load(), uint64(2); got != want {
		t.Errorf("logged %d, want %d", got, want)
	}
	if got, want := k.discarded.Load(), uint64(3); got != want {
		t.Errorf("discarded %d, want %d", got, want)
	}
	// Draining makes room again.
	if out := k.drain(nil); len(out) != 80 {
		t.Fatalf("drained %d bytes, want 80", len(out))
	}
	k.add(7, line)
	if k.logged.Load() != 3 {
		t.Fatalf("logged %d after drain, want 3", k.logged.Load())
	}
}

// BenchmarkGetBatchLogging serves batches of 64 pipelined gets with the
// command log and watchers off, with the command log on (every command
// logged), and with a fetchers watcher: "off" against the hot-key
// benchmark's "off" is the cost of the nil check and the atomic load.
func BenchmarkGetBatchLogging(b *testing.B) {
	for _, tc := range []string{"off", "klog", "watch"} {
		b.Run(tc, func(b *testing.B) {
			cfg := Config{HotKeySample: -1, TCPAddrs: []string{"127.0.0.1:0"}}
			if tc == "klog" {
				cfg.KlogFile = filepath.Join(b.TempDir(), "klog")
			}
			s, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if tc == "watch" {
				w := s.watch.add(watchFetchers, defaultWatcherBuf)
				defer s.watch.remove(w)
			}
			c := newConn(s, nil)
			c.peer = "127.0.0.1:1"
			c.sfd.Store(1)
			benchGetBatch(b, c)
		})
	}
}

//go:build unix

package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/procs"
	"github.com/corvidcache/corvid/internal/testutil"
)

func TestProxyProcsFlag(t *testing.T) {
	for _, bad := range []string{"0", "-2", "two", ""} {
		_, err := runProxyCommand(context.Background(), noProxy, "--procs", bad)
		if err == nil || !strings.HasPrefix(err.Error(), "corvid: option --procs must be auto or a number of processors") {
			t.Errorf("--procs %q: %v", bad, err)
		}
	}
	o := &proxyOptions{}
	if err := proxyCommand(o).ParseFlags([]string{"--procs", "3"}); err != nil {
		t.Fatal(err)
	}
	if s, err := o.settings(); err != nil || s.procs != 3 {
		t.Errorf("--procs 3: %+v, %v", s, err)
	}
}

// TestProxyProcsAuto runs the command in this process with --procs auto:
// an idle proxy runs on one processor, takes the others back when the
// process keeps them busy, and gives them all back when it stops.
func TestProxyProcsAuto(t *testing.T) {
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("needs GOMAXPROCS of 2 or more")
	}
	scaleProcs = true
	defer func() { scaleProcs = false }()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(proxyConfigs["good.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := &fakeProxy{}
	done := make(chan error, 1)
	go func() {
		_, err := runProxyCommand(ctx, func(*nutcracker.Config, *slog.Logger) (proxyServer, error) { return fake, nil },
			"-c", conf, "-s", strconv.Itoa(testutil.FreePorts(t, 1)[0]), "-a", "127.0.0.1")
		done <- err
	}()
	waitProcs := func(want int, why string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: GOMAXPROCS %d, want %d", why, runtime.GOMAXPROCS(0), want)
			}
			time.Sleep(procs.Interval / 2)
		}
	}
	waitProcs(1, "idle")
	// Busy goroutines: the one processor is all used.
	stop := make(chan struct{})
	var spin sync.WaitGroup
	for range max {
		spin.Add(1)
		go func() {
			defer spin.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1e5; i++ {
					_ = strconv.Itoa(i)
				}
			}
		}()
	}
	waitProcs(max, "busy")
	close(stop)
	spin.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Errorf("after the proxy stopped: GOMAXPROCS %d, want %d", got, max)
	}
}

// TestRouterProcsAuto: corvid router scales its processors as the proxy
// does, whatever --num-proxies says, and gives them back when it stops.
func TestRouterProcsAuto(t *testing.T) {
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("needs GOMAXPROCS of 2 or more")
	}
	scaleProcs = true
	defer func() { scaleProcs = false }()
	_, _, stop := runFake(t, "--config-str", routerConfig, "-p", "5000", "--num-proxies", "4")
	testutil.WaitFor(t, func() bool { return runtime.GOMAXPROCS(0) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Errorf("after the router stopped: GOMAXPROCS %d, want %d", got, max)
	}
}

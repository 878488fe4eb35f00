package testutil

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/corvidcache/corvid/server"
)

// stopTimeout bounds how long a cleanup waits for a server to stop.
const stopTimeout = 10 * time.Second

// EventLoops is the number of event loops CORVID_TEST_EVENT_LOOPS asks
// the servers of a test run to use: 0 (goroutine mode) when it is unset.
func EventLoops() int {
	if n, err := strconv.Atoi(os.Getenv("CORVID_TEST_EVENT_LOOPS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// SkipInEventLoopPass skips a test that serves its connections the same
// way whatever the connection mode (TLS connections always have a
// goroutine each), in the run of a suite with CORVID_TEST_EVENT_LOOPS set,
// which follows one without: it would only repeat that run's work.
func SkipInEventLoopPass(t testing.TB) {
	t.Helper()
	if EventLoops() > 0 {
		t.Skip("its connections are served alike in both modes; the run without CORVID_TEST_EVENT_LOOPS covers it")
	}
}

// StartCorvid starts an in-process corvid server with cfg on a free
// loopback port and returns its address. When cfg names no TCP address it
// listens on 127.0.0.1:0. The server is closed when the test ends, and the
// cleanup waits for Serve to return.
//
// When cfg.EventLoops is 0 and the environment variable
// CORVID_TEST_EVENT_LOOPS holds a positive number, the server uses that
// many event loops, so a whole suite can be run in either connection mode.
func StartCorvid(t testing.TB, cfg server.Config) (addr string) {
	t.Helper()
	if len(cfg.TCPAddrs) == 0 {
		cfg.TCPAddrs = []string{"127.0.0.1:0"}
	}
	return ServeCorvid(t, cfg).Addrs()[0].String()
}

// ServeCorvid is StartCorvid with cfg's listeners as given, returning the
// server itself.
func ServeCorvid(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.EventLoops == 0 {
		cfg.EventLoops = EventLoops()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("cannot start corvid: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("corvid Serve: %v", err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("corvid Serve did not return within %v of Close", stopTimeout)
		}
	})
	return srv
}

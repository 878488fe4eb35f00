package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoopWakesForEveryBurst runs, on one event loop, the clients whose
// sockets stay ready without a new readiness edge: pipelined gets larger
// than a read buffer (the loop reads 16 KiB of them per turn), requests
// followed by a half-close (the hang-up stays reported after the input is
// read), and requests sent while the socket is full of a large reply (the
// loop switches the socket from output back to input, which raises no
// edge for input already there), after clients making one request at a
// time. A loop that waited for edges only (as Go's netpoller watches a
// descriptor) without asking its set first would leave them waiting for
// their replies until their deadline.
func TestLoopWakesForEveryBurst(t *testing.T) {
	_, addr := start(t, Config{EventLoops: 1})
	big := strings.Repeat("v", 512<<10)
	seed := dial(t, "tcp", addr)
	seed.expect("set k 0 0 1\r\nv\r\n", "STORED")
	seed.expect(fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(big), big), "STORED")

	// Each kind of client runs on its own, so that no other client's
	// input wakes the loop for it.
	run := func(what string, n int, f func(c *client, i int) error) {
		t.Helper()
		cs := make([]*client, n)
		for i := range cs {
			cs[i] = dial(t, "tcp", addr)
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- f(c, i)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		}
	}
	run("one request at a time", 8, func(c *client, i int) error { return exchange(c, i, 100) })
	run("pipelined gets", 4, func(c *client, _ int) error {
		// Each burst is several read buffers of gets, sent at once.
		const gets = 6000
		want := strings.Repeat("VALUE k 0 1\r\nv\r\nEND\r\n", gets)
		for range 3 {
			if _, err := io.WriteString(c.nc, strings.Repeat("get k\r\n", gets)); err != nil {
				return err
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c.r, got); err != nil {
				return err
			}
			if string(got) != want {
				return fmt.Errorf("wrong replies")
			}
		}
		return nil
	})
	run("large values", 4, func(c *client, _ int) error {
		// The next request comes while the socket is full of the reply
		// before it.
		want := fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\nVALUE k 0 1\r\nv\r\nEND\r\n", len(big), big)
		for range 5 {
			if _, err := io.WriteString(c.nc, "get big\r\n"); err != nil {
				return err
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c.r, got[:64<<10]); err != nil {
				return err
			}
			if _, err := io.WriteString(c.nc, "get k\r\n"); err != nil {
				return err
			}
			if _, err := io.ReadFull(c.r, got[64<<10:]); err != nil {
				return err
			}
			if string(got) != want {
				return fmt.Errorf("wrong reply")
			}
		}
		return nil
	})
	run("half-closed", 4, func(c *client, _ int) error {
		if _, err := io.WriteString(c.nc, "get k\r\n"); err != nil {
			return err
		}
		c.nc.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c.r)
		if err != nil {
			return err
		}
		if want := "VALUE k 0 1\r\nv\r\nEND\r\n"; string(got) != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	})
}

// TestLoopStopsWhileIdle checks that event loops waiting with nothing to
// do, without a limit or for an idle sweep, see the server close: Serve
// returns and closes the idle connections.
func TestLoopStopsWhileIdle(t *testing.T) {
	for _, idle := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint(idle), func(t *testing.T) {
			s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}, EventLoops: 2, IdleTimeout: idle})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			var cs []*client
			for range 4 {
				c := dial(t, "tcp", s.Addrs()[0].String())
				c.expect("version\r\n", "VERSION "+Version)
				cs = append(cs, c)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return")
			}
			for i, c := range cs {
				if !c.closed() {
					t.Errorf("connection %d left open", i)
				}
			}
		})
	}
}

package qclient_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/queue"
	"github.com/corvidcache/corvid/queue/qclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs a queue server on 127.0.0.1 until stop is called.
func startServer() (srv *queue.Server, addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	srv, err = queue.New(queue.Config{Listener: ln})
	if err != nil {
		ln.Close()
		return nil, "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	return srv, ln.Addr().String(), func() { cancel(); <-done }, nil
}

func start(t *testing.T) (*queue.Server, string) {
	t.Helper()
	srv, addr, stop, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return srv, addr
}

func stat(s *queue.Server, name string) string {
	for _, kv := range s.Stats() {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

func TestPutSpreadsAndGetFindsEveryServer(t *testing.T) {
	s1, a1 := start(t)
	s2, a2 := start(t)
	c := qclient.New(a1, a2)
	defer c.Close()
	for i := 0; i < 4; i++ {
		if err := c.Put("jobs", []byte(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if stat(s1, "queue_jobs_items") != "2" || stat(s2, "queue_jobs_items") != "2" {
		t.Fatalf("items: %s and %s, want 2 and 2", stat(s1, "queue_jobs_items"), stat(s2, "queue_jobs_items"))
	}
	var got []string
	for i := 0; i < 4; i++ {
		data, ok, err := c.Get("jobs", 0)
		if err != nil || !ok {
			t.Fatalf("get %d: %v %v", i, ok, err)
		}
		got = append(got, string(data))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("got %v", got)
	}
	if _, ok, err := c.Get("jobs", 0); ok || err != nil {
		t.Fatalf("get on empty queues: %v %v", ok, err)
	}
}

func TestGetWaits(t *testing.T) {
	_, a := start(t)
	c := qclient.New(a)
	defer c.Close()
	p := qclient.New(a)
	defer p.Close()
	got := make(chan string, 1)
	go func() {
		data, _, _ := c.Get("later", 20*time.Second)
		got <- string(data)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := p.Put("later", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != "x" {
				t.Fatalf("got %q", g)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		// The getter may have looked before the put: the item is then
		// taken by its wait; more puts are harmless.
		if time.Now().After(deadline) {
			t.Fatal("Get did not return")
		}
	}
}

func TestOpenConfirmAbort(t *testing.T) {
	s, a := start(t)
	c := qclient.New(a)
	defer c.Close()
	c.Put("work", []byte("a"), 0)
	c.Put("work", []byte("b"), 0)
	r, err := c.Open("work", 0)
	if err != nil || r == nil || string(r.Data) != "a" {
		t.Fatalf("open: %v %v", r, err)
	}
	if stat(s, "queue_work_open_transactions") != "1" {
		t.Fatal("no open transaction")
	}
	if err := r.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := r.Abort(); err != qclient.ErrDone {
		t.Fatalf("second abort: %v", err)
	}
	r, err = c.Open("work", 0)
	if err != nil || string(r.Data) != "a" {
		t.Fatalf("open after abort: %v %v", r, err)
	}
	if err := r.Confirm(); err != nil {
		t.Fatal(err)
	}
	data, ok, _ := c.Get("work", 0)
	if !ok || string(data) != "b" {
		t.Fatalf("get: %q", data)
	}
	if r, err := c.Open("work", 0); r != nil || err != nil {
		t.Fatalf("open on empty: %v %v", r, err)
	}
}

func TestDeadServerIsSkipped(t *testing.T) {
	dead := testutil.RefusedAddr(t)
	s, a := start(t)
	c := qclient.New(dead, a)
	defer c.Close()
	for i := 0; i < 3; i++ {
		if err := c.Put("q", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := stat(s, "queue_q_items"); got != "3" {
		t.Fatalf("items = %s", got)
	}
	only := qclient.New(dead)
	defer only.Close()
	if err := only.Put("q", []byte("v"), 0); err == nil {
		t.Fatal("put to a dead server succeeded")
	}
}

func Example() {
	_, addr, stop, err := startServer()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	c := qclient.New(addr) // list every server of the cluster
	defer c.Close()
	c.Put("emails", []byte("hello"), 0)

	// A reliable read: confirmed once handled, else it goes back.
	r, err := c.Open("emails", time.Second)
	if err != nil || r == nil {
		fmt.Println("nothing to do", err)
		return
	}
	fmt.Printf("sending %s\n", r.Data)
	r.Confirm()

	_, ok, _ := c.Get("emails", 10*time.Millisecond)
	fmt.Println("more:", ok)
	// Output:
	// sending hello
	// more: false
}

// TestLongExpiry puts items whose expiry is past memcached's 30 days of
// relative exptime: they must not arrive already expired.
func TestLongExpiry(t *testing.T) {
	_, addr := start(t)
	c := qclient.New(addr)
	defer c.Close()
	for _, d := range []time.Duration{time.Hour, 30 * 24 * time.Hour, 31 * 24 * time.Hour, 365 * 24 * time.Hour} {
		if err := c.Put("long", []byte(d.String()), d); err != nil {
			t.Fatal(err)
		}
		data, ok, err := c.Get("long", 0)
		if err != nil || !ok || string(data) != d.String() {
			t.Fatalf("expiry %v: got %q, %v, %v", d, data, ok, err)
		}
	}
}

// TestPutIsNotRepeatedAfterItWasSent: a server that takes a set and
// answers too late (a slow fsync) may have stored it, so Put must not
// store it again on another server.
func TestPutIsNotRepeatedAfterItWasSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan struct{})
	release := make(chan struct{})
	go func() {
		defer close(slowDone)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		buf := make([]byte, 512)
		nc.Read(buf) // the set; the reply comes after the client gave up
		<-release
	}()
	defer func() { close(release); ln.Close(); <-slowDone }()
	s2, a2 := start(t)
	c := qclient.New(ln.Addr().String(), a2)
	c.Timeout = 200 * time.Millisecond
	defer c.Close()
	err = c.Put("once", []byte("x"), 0)
	if got := stat(s2, "queue_once_items"); got == "1" {
		t.Fatalf("Put = %v, and the item was also stored on the second server", err)
	}
	if err == nil {
		t.Fatal("Put returned nil for an item whose fate is unknown")
	}
}

package attack

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

func TestRSS(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || rss > 1<<40 {
		t.Fatalf("RSS of the test process: %d bytes", rss)
	}
	if _, err := RSS(0); err == nil {
		t.Fatal("RSS of pid 0: no error")
	}
}

// TestVerifyFindsLoss stores a data set, checks it, then deletes one item
// and overwrites another: Verify must report both kinds of damage.
func TestVerifyFindsLoss(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	d := Data{Big: 2, BigSize: 100 << 10, Small: 500}
	if err := Fill(addr, d); err != nil {
		t.Fatal(err)
	}
	if err := Verify(addr, d); err != nil {
		t.Fatalf("after Fill: %v", err)
	}
	c := testutil.Dial(t, addr)
	c.Send([]byte("set " + BigKey(1) + " 1 0 1\r\nx\r\n"))
	c.ReadReply(testutil.LineReply)
	if err := Verify(addr, d); err == nil || !strings.Contains(err.Error(), BigKey(1)) {
		t.Fatalf("after overwriting %s: %v", BigKey(1), err)
	}
	if err := Fill(addr, d); err != nil {
		t.Fatal(err)
	}
	c.Send([]byte("delete " + smallKey(7) + "\r\n"))
	c.ReadReply(testutil.LineReply)
	if err := Verify(addr, d); err == nil || !strings.Contains(err.Error(), "1 items lost") {
		t.Fatalf("after deleting %s: %v", smallKey(7), err)
	}
}

// TestProberCountsStall points the prober at a listener that never
// answers: the unanswered request must show as a latency.
func TestProberCountsStall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
		close(accepted)
	}()
	p, err := StartProber(ln.Addr().String(), Data{Small: 10})
	if err != nil {
		t.Fatal(err)
	}
	nc := <-accepted
	if nc == nil {
		t.Fatal("prober did not connect")
	}
	// The stall is timed from the request's arrival: the prober marks
	// its request in flight before it sends it.
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(nc).ReadString('\n'); err != nil {
		t.Fatalf("the prober sent no request: %v", err)
	}
	const stall = 50 * time.Millisecond
	start := time.Now()
	for time.Since(start) < stall {
		time.Sleep(5 * time.Millisecond) // the stall being measured
	}
	n, p99, worst, err := p.Take()
	nc.Close() // the prober's read fails; Stop returns
	p.Stop()
	if n != 0 || p99 < stall || worst < stall || err != nil {
		t.Fatalf("Take: %d answered, p99 %v, worst %v, err %v; want 0 and at least %v", n, p99, worst, err, stall)
	}
}

func TestAttacksAreWellFormed(t *testing.T) {
	d := Data{Big: 3, BigSize: 10}
	sc := Scale{Conns: 2, BufConns: 3, Keys: 4, DeclaredSize: 100, HugeLine: true}
	seen := make(map[string]bool)
	for _, a := range Attacks(d, sc) {
		if seen[a.Name] {
			t.Errorf("two attacks named %s", a.Name)
		}
		seen[a.Name] = true
		for i := range a.Conns {
			if b := a.first(i); len(b) > max(1<<20, sc.DeclaredSize) {
				t.Errorf("%s sends %d bytes, more than a get line may hold", a.Name, len(b))
			}
		}
	}
	if got := string(Attacks(d, sc)[0].first(0)); got != "get big0 big1 big2 big0\r\n" {
		t.Errorf("unread get line: %q", got)
	}
	if h := binarySetHeader("k", 100); len(h) != 24+8+1 || h[0] != 0x80 || h[1] != 0x01 || fmt.Sprint(h[8:12]) != "[0 0 0 109]" {
		t.Errorf("binary set header: % x", h)
	}
}

package mctool

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"time"

	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// A dump file that declares a huge value but holds a few bytes must not
// make the reader allocate what the file claims before the bytes arrive.
func TestReaderHugeDeclaredLengthAllocatesLittle(t *testing.T) {
	file := fmt.Sprintf("corvid-dump 1 created=0 source=x\nI k 0 0 %d 00000000\nabc", MaxValue)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewReader(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	runtime.ReadMemStats(&after)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "truncated") {
		t.Fatalf("Next = %v, want a truncated-value FileError", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("reading a %d-byte truncated file allocated %d bytes", len(file), got)
	}
}

// A server that announces a huge value and then closes the connection
// must not make the client allocate the announced size.
func TestMetaValueHugeDeclaredLengthAllocatesLittle(t *testing.T) {
	addr := testutil.FakeServer(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		br.ReadString('\n')
		fmt.Fprintf(nc, "VA %d f0\r\nabc", MaxValue)
		nc.Close()
	})
	c := dial(t, addr)
	if err := c.send("mg k f v\r\n"); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := c.metaValue()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrNotMemcached) {
		t.Fatalf("metaValue = %v, want ErrNotMemcached", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("a 3-byte value announced as %d bytes allocated %d bytes", MaxValue, got)
	}
}

// readN reads values of every size across its growth steps intact.
func TestReadN(t *testing.T) {
	for _, n := range []int{0, 1, readChunk - 1, readChunk, readChunk + 1, 3*readChunk + 7} {
		src := make([]byte, n+5)
		for i := range src {
			src[i] = byte(i * 7)
		}
		got, m, err := readN(bytes.NewReader(src), n)
		if err != nil || m != n || !bytes.Equal(got, src[:n]) {
			t.Fatalf("n=%d: read %d bytes, err %v, equal %v", n, m, err, bytes.Equal(got, src[:n]))
		}
		got, m, err = readN(bytes.NewReader(src[:n/2]), n)
		if n > 0 && (err != io.ErrUnexpectedEOF || m != n/2 || !bytes.Equal(got, src[:n/2])) {
			t.Fatalf("n=%d short: read %d bytes, err %v", n, m, err)
		}
	}
}

// A server that trickles stats lines, each just within the timeout,
// must not hold Stats past its timeout.
func TestStatsTrickleBoundedByTimeout(t *testing.T) {
	const timeout = time.Second
	addr := testutil.FakeServer(t, func(nc net.Conn) {
		bufio.NewReader(nc).ReadString('\n')
		tick := time.NewTicker(timeout / 5)
		defer tick.Stop()
		for i := 0; i < 1000; i++ {
			if _, err := fmt.Fprintf(nc, "STAT s%d 1\r\n", i); err != nil {
				return
			}
			<-tick.C
		}
	})
	c, err := Dial(context.Background(), addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.Stats("")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Stats = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 10*timeout {
			t.Fatalf("Stats took %v with a %v timeout", d, timeout)
		}
	case <-time.After(20 * timeout):
		c.Close()
		<-done
		t.Fatalf("Stats still reading after %v with a %v timeout", 20*timeout, timeout)
	}
}

// trickleServer answers "lru_crawler metadump" with a key line every
// interval, up to n lines, then END, and every mg with EN.
func trickleServer(t *testing.T, interval time.Duration, n int) string {
	return testutil.FakeMetadump(t, interval, n, func(string) string { return "EN\r\n" })
}

// A server that trickles metadump lines, each within the timeout, must
// not hold a Walk much past its timeout: the timeout bounds the wait for
// each batch of keys, not for each line. (Half the timeout apart, so that
// a busy machine's late timer does not make the first line miss it.)
func TestMetadumpTrickleBoundedByTimeout(t *testing.T) {
	const timeout = time.Second
	addr := trickleServer(t, timeout/2, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Dial(ctx, addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.Walk(0, func(Record) error { return nil })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeout) || !strings.HasPrefix(err.Error(), addr+": lru_crawler metadump sent fewer than 100 keys in 1s") {
			t.Fatalf("Walk = %v, want ErrTimeout naming the server", err)
		}
		if d := time.Since(start); d > 10*timeout {
			t.Fatalf("Walk took %v with a %v timeout", d, timeout)
		}
	case <-time.After(20 * timeout):
		cancel()
		<-done
		t.Fatalf("Walk still reading after %v with a %v timeout", 20*timeout, timeout)
	}
}

// A fast server's dump is not cut by the rule: 250 lines at 1 ms, 100 of
// them due well within the timeout even when a busy machine's timers run
// late.
func TestMetadumpSteadyLinesPass(t *testing.T) {
	addr := trickleServer(t, time.Millisecond, 250)
	c, err := Dial(context.Background(), addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Walk(0, func(Record) error { return nil })
	if err != nil || st.Keys != 250 || st.Gone != 250 {
		t.Fatalf("Walk: %+v, %v", st, err)
	}
}

// busyServer answers its first busy "lru_crawler metadump all" requests
// with memcached's BUSY, and the ones after with one key and END.
func busyServer(t *testing.T, busy int) string {
	var asked atomic.Int32
	return testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.TrimSpace(line) != "lru_crawler metadump all" {
				io.WriteString(nc, "ERROR\r\n")
				continue
			}
			if int(asked.Add(1)) <= busy {
				io.WriteString(nc, "BUSY currently processing crawler request\r\n")
				continue
			}
			io.WriteString(nc, "key=a exp=-1 la=1700000000 cas=1 fetch=no cls=1 size=60\r\nEND\r\n")
		}
	})
}

// A crawler busy with a crawl of its own answers BUSY for a while, as
// memcached's does: Metadump asks again, and fails naming the answer only
// once it has been busy for the whole timeout.
func TestMetadumpBusyCrawler(t *testing.T) {
	c, err := Dial(context.Background(), busyServer(t, 3), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var keys []string
	if err := c.Metadump(0, func(k KeyInfo) error { keys = append(keys, k.Key); return nil }); err != nil || len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("Metadump after 3 BUSY answers: keys %q, %v", keys, err)
	}

	c, err = Dial(context.Background(), busyServer(t, 1<<30), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.Metadump(0, func(KeyInfo) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `the server answered "BUSY currently processing crawler request"`) {
		t.Fatalf("Metadump of a crawler always busy: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Errorf("Metadump gave up on a busy crawler after %v with a 300ms timeout", d)
	}
}

package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestUnreadMultiGets: a client that sends wide multi-gets of large values
// and never reads cannot make the proxy forward (and buffer) without
// bound: once its pending replies pass the bound the proxy stops reading
// it, which the client sees as a blocked write.
func TestUnreadMultiGets(t *testing.T) {
	backends := startCorvids(t, 3)
	p, addr := proxyFor(t, backends)
	const nkeys, size = 100, 100 << 10
	keys := make([]string, nkeys)
	value := strings.Repeat("v", size)
	c := testutil.Dial(t, addr)
	for i := range keys {
		keys[i] = fmt.Sprintf("big%d", i)
		if r := roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", keys[i], size, value), testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	c.Close()
	requests := func() (n int64) {
		for _, s := range p.Stats().Pools[0].Servers {
			n += s.Requests
		}
		return n
	}
	before := requests()

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := []byte("get " + strings.Join(keys, " ") + "\r\n")
	blocked := false
	for range 100000 {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(req); err != nil {
			blocked = true
			break
		}
	}
	if !blocked {
		t.Fatal("the proxy read every request of a client that never reads")
	}
	// Each multi-get is three fragments; the proxy admits requests for
	// maxInflightUnits keys, and the first reply alone passes the bytes
	// bound.
	if sent := requests() - before; sent > 3*(maxInflightUnits/nkeys+2) {
		t.Errorf("%d fragment requests forwarded for a client that never reads", sent)
	}
}

// TestLongLines: a request line without end closes the connection once it
// passes memcached's limits, instead of growing the buffer.
func TestLongLines(t *testing.T) {
	backends := startCorvids(t, 1)
	_, addr := proxyFor(t, backends)
	for _, line := range [][]byte{
		bytes.Repeat([]byte("x"), 4096),
		append([]byte("get "), bytes.Repeat([]byte("k "), 1<<20)...),
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		nc.Write(line) // may fail once the proxy closes
		b, err := io.ReadAll(nc)
		if errors.Is(err, os.ErrDeadlineExceeded) || len(b) != 0 {
			t.Errorf("%d-byte line: read %q, %v; want the connection closed", len(line), b, err)
		}
		nc.Close()
	}
}

func TestStatsCommand(t *testing.T) {
	backends := startCorvids(t, 2)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	defer c.Close()
	// One key on each server: similar short keys may all hash to one.
	rg := testRing(t, backends)
	keys := map[int]string{}
	for i := 0; len(keys) < 2 && i < 10000; i++ {
		k := fmt.Sprintf("key:%d", i)
		keys[rg.PickString(k)] = k
	}
	roundTrip(c, "get "+keys[0]+" "+keys[1]+"\r\n", testutil.ValuesReply)
	r := roundTrip(c, "stats\r\n", testutil.StatsReply)
	for _, want := range []string{"STAT curr_connections 1\r\n", "STAT alpha:fragments 2\r\n",
		"STAT alpha:" + backends[0] + ":requests 1\r\n", "END\r\n"} {
		if !strings.Contains(r, want) {
			t.Errorf("stats lack %q:\n%s", want, r)
		}
	}
}

// TestServerStopsReading: requests for a server that stops reading queue
// up to the bound, not without end.
func TestServerStopsReading(t *testing.T) {
	release := make(chan struct{})
	stuck := testutil.FakeServer(t, func(nc net.Conn) { <-release }) // never reads
	t.Cleanup(func() { close(release) })                             // runs before FakeServer's cleanup
	p, addr := proxyFor(t, []string{stuck})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n, size = 300, 100 << 10
	req := []byte(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, strings.Repeat("v", size)))
	for range n {
		nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(req); err != nil {
			break
		}
	}
	// Wait until the proxy has taken all it will take from the client.
	var last int64
	testutil.WaitFor(t, func() bool {
		s := p.Stats().Pools[0].Servers[0]
		done := s.Requests == last && s.Requests > 0
		last = s.Requests
		return done
	})
	if q := p.Stats().Pools[0].Servers[0].InQueueBytes; q > maxQueueBytes {
		t.Errorf("%d bytes queued for a server that does not read, bound %d", q, maxQueueBytes)
	}
}

// TestUnreadWideMultiGetBound: a client that sends one wide multi-get of
// large values and never reads should not make the proxy read (and hold)
// much more than maxClientReplyBytes of replies for it. Today the
// admission bound counts keys, not bytes: one request of up to
// maxInflightUnits keys is always admitted, so such a client holds the
// values of all its keys (400 keys of 1 MB: 400 MB per client). Bounding
// it needs the servers' replies streamed to the client, or a server
// connection that stops reading for a client over its bound.
func TestUnreadWideMultiGetBound(t *testing.T) {
	t.Skip("not yet bounded: a wide multi-get's replies are held whole (see the comment)")
	backends := startCorvids(t, 3)
	p, addr := proxyFor(t, backends)
	const nkeys, size = 100, 512 << 10
	keys := make([]string, nkeys)
	value := strings.Repeat("v", size)
	c := testutil.Dial(t, addr)
	for i := range keys {
		keys[i] = fmt.Sprintf("wide%d", i)
		if r := roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", keys[i], size, value), testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	c.Close()
	read := func() (n int64) {
		for _, s := range p.Stats().Pools[0].Servers {
			n += s.ResponseBytes
		}
		return n
	}
	before := read()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("get " + strings.Join(keys, " ") + "\r\n"))
	// Until the fragments are answered (a proxy that stops reading for
	// this client would wait for its read bytes to stop growing instead).
	testutil.WaitFor(t, func() bool {
		var out, in int64
		for _, s := range p.Stats().Pools[0].Servers {
			out, in = out+s.OutQueue, in+s.InQueue
		}
		return out == 0 && in == 0 && read() > before
	})
	// Socket buffers on both sides may hold a few MB of what was read.
	if held := read() - before; held > maxClientReplyBytes+16<<20 {
		t.Errorf("the proxy read %d bytes of replies for a client that reads none", held)
	}
}

// TestHeldRepliesReleased: a client pipelining gets of 1 MB values and
// reading them gets every value, and once it has read them the proxy
// holds no reply bytes: the bound on held replies only refuses what is
// really held.
func TestHeldRepliesReleased(t *testing.T) {
	backends := startCorvids(t, 2)
	p, addr := proxyFor(t, backends)
	const nkeys, size, gets = 4, 1000 << 10, 200
	value := strings.Repeat("v", size)
	c := testutil.Dial(t, addr)
	for i := range nkeys {
		if r := roundTrip(c, fmt.Sprintf("set big%d 0 0 %d\r\n%s\r\n", i, size, value), testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	var req strings.Builder
	for i := range gets {
		fmt.Fprintf(&req, "get big%d\r\n", i%nkeys)
	}
	c.Send([]byte(req.String()))
	for i := range gets {
		want := fmt.Sprintf("VALUE big%d 0 %d\r\n%s\r\nEND\r\n", i%nkeys, size, value)
		if r := c.ReadReply(testutil.ValuesReply); string(r) != want {
			t.Fatalf("get %d: %.60q (held %d)", i, r, p.replies.bytes.Load())
		}
	}
	testutil.WaitFor(t, func() bool { return p.replies.bytes.Load() == 0 })
}

// TestChunkedMultiGet: a get of more keys than a chunk, on every server,
// with misses and repeated keys, is one reply in the client's key order
// with one END.
func TestChunkedMultiGet(t *testing.T) {
	backends := startCorvids(t, 3)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	var keys []string
	var want strings.Builder
	for i := range 5*maxGetChunkKeys + 7 {
		k := fmt.Sprintf("chunk%d", i%(3*maxGetChunkKeys))
		keys = append(keys, k)
		if i%3 == 0 {
			continue // a miss
		}
		fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", k, len(k), k)
	}
	for _, k := range keys {
		if r := roundTrip(c, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(k), k), testutil.LineReply); r != "STORED\r\n" {
			t.Fatalf("set: %q", r)
		}
	}
	// The misses: deleted after the sets (a key may be a hit and a miss
	// at different places of the line only if it repeats; i%3 keeps the
	// same verdict for a repeated key since 3*maxGetChunkKeys is a
	// multiple of 3).
	for i, k := range keys {
		if i%3 == 0 {
			roundTrip(c, "delete "+k+"\r\n", testutil.LineReply)
		}
	}
	want.WriteString("END\r\n")
	if got := roundTrip(c, "get "+strings.Join(keys, " ")+"\r\n", testutil.ValuesReply); got != want.String() {
		t.Errorf("get of %d keys:\n got %.300q\nwant %.300q", len(keys), got, want.String())
	}
}

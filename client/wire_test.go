package client

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// holdBack, in a scriptedServer's reply, marks where the connection
// stops writing: what follows, and the replies to the rest of the
// request's packet, are held back and written in front of the reply to
// the next request that comes in a packet of its own. The client's check
// of a pooled connection, made before it sends that request, cannot see
// them: they arrive as if they were the reply.
const holdBack = "\x00"

// scriptedServer serves connections on a loopback port with reply, which
// is called for every request line (without "\r\n") and may read a data
// block from r; what it returns is written back as it is, up to holdBack.
// The server and its connections stop when the test ends.
func scriptedServer(t *testing.T, reply func(line string, r *bufio.Reader) string) string {
	t.Helper()
	return testutil.FakeServer(t, func(nc net.Conn) {
		r := bufio.NewReader(nc)
		var held strings.Builder
		holding := false
		for {
			fresh := r.Buffered() == 0 // the line starts a packet
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			out := reply(strings.TrimRight(line, "\r\n"), r)
			if holding && fresh {
				out, holding = held.String()+out, false
				held.Reset()
			}
			if holding {
				held.WriteString(out)
				continue
			}
			if now, later, ok := strings.Cut(out, holdBack); ok {
				out, holding = now, true
				held.WriteString(later)
			}
			if _, err := io.WriteString(nc, out); err != nil {
				return
			}
		}
	})
}

// metaFake answers "mg" and "mn" from a fixed set of items, echoing the k
// and O flags when asked and leaving out misses under q, as memcached
// does; it refuses keys starting with "refused" with a CLIENT_ERROR, and
// answers a get of key a with the value of key b when swap[a] is b.
func metaFake(items map[string]string, swap map[string]string) func(string, *bufio.Reader) string {
	return func(line string, r *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "mn":
			return "MN\r\n"
		case len(f) >= 2 && f[0] == "mg":
			key := f[1]
			if strings.HasPrefix(key, "refused") {
				return "CLIENT_ERROR bad command line format\r\n"
			}
			if k, ok := swap[key]; ok {
				key = k
			}
			var ret []string
			quiet := false
			for _, fl := range f[2:] {
				switch fl[0] {
				case 'k':
					ret = append(ret, "k"+key)
				case 'O':
					ret = append(ret, fl)
				case 'q':
					quiet = true
				}
			}
			v, ok := items[key]
			if !ok {
				if quiet {
					return ""
				}
				return strings.TrimSpace("EN "+strings.Join(ret, " ")) + "\r\n"
			}
			return fmt.Sprintf("VA %d f0 c1 %s\r\n%s\r\n", len(v), strings.Join(ret, " "), v)
		case len(f) >= 2 && (f[0] == "get" || f[0] == "gets"):
			var b strings.Builder
			for _, key := range f[1:] {
				if k, ok := swap[key]; ok {
					key = k
				}
				if v, ok := items[key]; ok {
					fmt.Fprintf(&b, "VALUE %s 0 %d 1\r\n%s\r\n", key, len(v), v)
				}
			}
			return b.String() + "END\r\n"
		}
		return "ERROR\r\n"
	}
}

// TestStatsUnexpectedLines asks for a stats argument whose reply is not
// STAT lines ("detail dump" answers PREFIX lines, as "cachedump" answers
// ITEM lines): the call fails, and the connection it leaves does not hand
// the rest of that reply, or one key's value, to later calls.
func TestStatsUnexpectedLines(t *testing.T) {
	check := func(t *testing.T, addr string, store bool) {
		ctx := context.Background()
		c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxIdleConns = 1; cfg.MaxFailures = 1 })
		if store {
			c.Stats(ctx, "detail on") // answered "OK", not STAT lines either
			for _, k := range []string{"p:a", "p:b"} {
				if err := c.Set(ctx, &Item{Key: k, Value: []byte("value of " + k)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err := c.Stats(ctx, "detail dump")
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("Stats detail dump: %v", err)
		}
		if c.servers[0].dead() {
			t.Fatal("an unexpected reply marked the server dead")
		}
		for i := range 6 {
			k := []string{"p:a", "p:b"}[i%2]
			it, err := c.Get(ctx, k)
			if err != nil || string(it.Value) != "value of "+k {
				t.Fatalf("Get(%q) after Stats = %+v, %v", k, it, err)
			}
		}
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { check(t, b.start(t, 1)[0], true) })
	}
	// The rest of the reply arrives only with the next request, where no
	// check of the pooled connection sees it: only closing the connection
	// keeps it from the next call.
	t.Run("held back", func(t *testing.T) {
		get := metaFake(map[string]string{"p:a": "value of p:a", "p:b": "value of p:b"}, nil)
		check(t, scriptedServer(t, func(line string, r *bufio.Reader) string {
			if line == "stats detail dump" {
				return "PREFIX p get 2 hit 2 set 2 del 0\r\n" + holdBack + "PREFIX q get 1 hit 0 set 0 del 0\r\nEND\r\n"
			}
			return get(line, r)
		}), false)
	})
}

// TestMetaGetMultiRefusedKey makes the server refuse one key of a
// pipeline: the rest of the pipeline's replies must not reach the next
// caller of the connection.
func TestMetaGetMultiRefusedKey(t *testing.T) {
	fake := metaFake(map[string]string{"a": "A", "b": "B"}, nil)
	addr := scriptedServer(t, func(line string, r *bufio.Reader) string {
		reply := fake(line, r)
		if strings.HasPrefix(reply, "CLIENT_ERROR") {
			// The rest of the pipeline's replies come with the next
			// request, unseen by the check of the pooled connection.
			reply += holdBack
		}
		return reply
	})
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxIdleConns = 1; cfg.MaxFailures = 1 })
	ctx := context.Background()
	m, err := c.MetaGetMulti(ctx, []string{"refused", "b"})
	var re *ReplyError
	if !errors.As(err, &re) || !strings.HasPrefix(re.Line, "CLIENT_ERROR") {
		t.Fatalf("MetaGetMulti = %v, %v", m, err)
	}
	for range 3 {
		mi, err := c.MetaGet(ctx, "a", MetaGetOptions{})
		if err != nil || string(mi.Value) != "A" {
			t.Fatalf("MetaGet(a) after a refused pipeline = %+v, %v", mi, err)
		}
	}
	if c.servers[0].dead() {
		t.Fatal("a refused key marked the server dead")
	}
}

// TestReplyForAnotherKey has the server answer a get of one key with
// another key's value: every read path returns an error, never the value.
func TestReplyForAnotherKey(t *testing.T) {
	items := map[string]string{"a": "A", "b": "B", "c": "C"}
	addr := scriptedServer(t, metaFake(items, map[string]string{"a": "b"}))
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxFailures = 1 })
	ctx := context.Background()
	var pe *ProtocolError
	if it, err := c.Get(ctx, "a"); !errors.As(err, &pe) {
		t.Errorf("Get(a) = %+v, %v", it, err)
	}
	if mi, err := c.MetaGet(ctx, "a", MetaGetOptions{}); !errors.As(err, &pe) {
		t.Errorf("MetaGet(a) = %+v, %v", mi, err)
	}
	m, err := c.GetMulti(ctx, []string{"c", "a"})
	if !errors.As(err, &pe) || m["a"] != nil {
		t.Errorf("GetMulti(c, a) = %v, %v", m, err)
	}
	m, err = c.MetaGetMulti(ctx, []string{"c", "a"})
	if !errors.As(err, &pe) || m["a"] != nil {
		t.Errorf("MetaGetMulti(c, a) = %v, %v", m, err)
	}
	if c.servers[0].dead() {
		t.Fatal("a reply for another key marked the server dead")
	}
	if it, err := c.Get(ctx, "c"); err != nil || string(it.Value) != "C" {
		t.Errorf("Get(c) = %+v, %v", it, err)
	}
}

// TestMetaGetHeaderOnly answers a get with "HD" and the key asked for, as
// a server answers an ms or md of that key: since MetaGet asks for the
// value, that is another request's reply, not an item without a value.
func TestMetaGetHeaderOnly(t *testing.T) {
	addr := scriptedServer(t, func(line string, r *bufio.Reader) string {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "mg" {
			return "HD k" + f[1] + "\r\n"
		}
		return "ERROR\r\n"
	})
	c := newClient(t, []string{addr}, nil)
	var pe *ProtocolError
	if mi, err := c.MetaGet(context.Background(), "a", MetaGetOptions{}); !errors.As(err, &pe) {
		t.Fatalf("MetaGet answered HD = %+v, %v", mi, err)
	}
}

// TestStoreClientError: a CLIENT_ERROR to a storage command may mean the
// server read the data block as a command, whose reply is still to come;
// the next call on the connection must not read it.
func TestStoreClientError(t *testing.T) {
	addr := scriptedServer(t, func(line string, r *bufio.Reader) string {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "set":
			// The data block follows as a "command", whose reply comes
			// with the next request, unseen by the check of the pooled
			// connection.
			return "CLIENT_ERROR bad command line format\r\n" + holdBack
		case len(f) == 2 && f[0] == "delete":
			return "DELETED\r\n"
		}
		return "ERROR\r\n"
	})
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxIdleConns = 1 })
	ctx := context.Background()
	var re *ReplyError
	if err := c.Set(ctx, &Item{Key: "k", Value: []byte("x")}); !errors.As(err, &re) {
		t.Fatalf("Set: %v", err)
	}
	for range 3 {
		if err := c.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete after a refused Set: %v", err)
		}
	}
}

// TestErrorReplyKeepsConnection: a whole error reply to one request leaves
// the connection in step, and it is reused.
func TestErrorReplyKeepsConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs[:1], func(cfg *Config) { cfg.MaxIdleConns = 1 })
		if err := c.Set(ctx, &Item{Key: "n", Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		var re *ReplyError
		if _, err := c.Incr(ctx, "n", 1); !errors.As(err, &re) {
			t.Fatalf("Incr non-numeric: %v", err)
		}
		big := make([]byte, 2<<20)
		if err := c.Set(ctx, &Item{Key: "big", Value: big}); !errors.As(err, &re) {
			t.Fatalf("Set 2 MB: %v", err)
		}
		s := c.servers[0]
		s.mu.Lock()
		idle := len(s.free)
		s.mu.Unlock()
		if idle != 1 {
			t.Fatalf("%d idle connections after error replies, want 1", idle)
		}
		if it, err := c.Get(ctx, "n"); err != nil || string(it.Value) != "x" {
			t.Fatalf("Get = %+v, %v", it, err)
		}
	})
}

// TestNamespaceValidated: a namespace that is not valid in a key would
// shift every reply (a space) or make keys the server refuses while the
// client sends their data blocks anyway (too long once hashed).
func TestNamespaceValidated(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	servers := []Server{{Addr: addr}}
	for _, cfg := range []Config{
		{Servers: servers, Namespace: "my app:"},
		{Servers: servers, Namespace: "app\r\n"},
		{Servers: servers, Namespace: "app\x00:"},
		{Servers: servers, Namespace: strings.Repeat("n", 250)},
		{Servers: servers, Namespace: strings.Repeat("n", 210), HashLongKeys: true},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("New with namespace %q (hashing %v): %v", cfg.Namespace, cfg.HashLongKeys, err)
		}
	}
	// The longest namespace allowed still takes every key, hashed or not.
	ctx := context.Background()
	for _, tc := range []struct {
		ns   string
		hash bool
		keys []string
	}{
		{strings.Repeat("n", 249), false, []string{"k"}},
		{strings.Repeat("n", 205), true, []string{"k", strings.Repeat("k", 45), strings.Repeat("k", 46), "a key with spaces"}},
	} {
		c := newClient(t, []string{addr}, func(cfg *Config) { cfg.Namespace, cfg.HashLongKeys = tc.ns, tc.hash })
		for _, k := range tc.keys {
			if err := c.Set(ctx, &Item{Key: k, Value: []byte(k)}); err != nil {
				t.Fatalf("Set(%q) under a %d-byte namespace: %v", k, len(tc.ns), err)
			}
			if it, err := c.Get(ctx, k); err != nil || string(it.Value) != k {
				t.Fatalf("Get(%q) = %+v, %v", k, it, err)
			}
			if m, err := c.MetaGetMulti(ctx, []string{k}); err != nil || m[k] == nil {
				t.Fatalf("MetaGetMulti(%q) = %v, %v", k, m, err)
			}
		}
	}
}

// TestMetaGetMultiBadCompressedValue: a value flagged compressed that does
// not uncompress fails that key alone; the server is not marked dead and
// the other keys are returned.
func TestMetaGetMultiBadCompressedValue(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	raw := testutil.Dial(t, addr)
	raw.Send([]byte("set bad 2 0 9\r\nnot gzip!\r\n"))
	if r := raw.ReadReply(testutil.LineReply); string(r) != "STORED\r\n" {
		t.Fatalf("set: %q", r)
	}
	raw.Close()
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.CompressThreshold = 100; cfg.MaxFailures = 1 })
	ctx := context.Background()
	if err := c.Set(ctx, &Item{Key: "good", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	for _, multi := range []func(context.Context, []string) (map[string]*Item, error){c.GetMulti, c.MetaGetMulti} {
		m, err := multi(ctx, []string{"good", "bad"})
		if err == nil || m["good"] == nil || string(m["good"].Value) != "v" || m["bad"] != nil {
			t.Fatalf("multi-get with a bad compressed value = %v, %v", m, err)
		}
		if c.servers[0].dead() {
			t.Fatal("a bad compressed value marked the server dead")
		}
	}
}

// TestGetMultiBufferSize: after a multi-get of 8 MB, a multi-get of one
// byte allocates for its own reply, not for the previous one.
func TestGetMultiBufferSize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs[:1], nil)
		var keys []string
		for i := range 8 {
			k := fmt.Sprint("big", i)
			keys = append(keys, k)
			if err := c.Set(ctx, &Item{Key: k, Value: make([]byte, 1000<<10)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Set(ctx, &Item{Key: "tiny", Value: []byte("t")}); err != nil {
			t.Fatal(err)
		}
		if m, err := c.GetMulti(ctx, keys); err != nil || len(m) != len(keys) {
			t.Fatalf("GetMulti big = %d items, %v", len(m), err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := c.GetMulti(ctx, []string{"tiny"})
		runtime.ReadMemStats(&after)
		if err != nil || m["tiny"] == nil || string(m["tiny"].Value) != "t" {
			t.Fatalf("GetMulti tiny = %v, %v", m, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
			t.Errorf("a 1-byte multi-get allocated %d bytes", d)
		}
	})
}

// describe summarises a read's result.
func describe(it *Item, err error) string {
	if it == nil {
		return fmt.Sprintf("no item, %v", err)
	}
	return fmt.Sprintf("%d bytes, flags %d, %v", len(it.Value), it.Flags, err)
}

// gzipped returns v compressed as the client compresses it.
func gzipped(t *testing.T, v []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(v)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCompressionEdges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		addrs = addrs[:1]
		c := newClient(t, addrs, func(cfg *Config) { cfg.CompressThreshold = 100 })
		plain := newClient(t, addrs, nil)
		raw := newClient(t, addrs, func(cfg *Config) { cfg.CompressThreshold = -1 })
		big := bytes.Repeat([]byte("compressible "), 1000)

		// Append and Prepend onto a value that may be compressed are
		// refused, and leave it whole.
		if err := c.Set(ctx, &Item{Key: "z", Value: big}); err != nil {
			t.Fatal(err)
		}
		for _, op := range []func(context.Context, *Item) error{c.Append, c.Prepend} {
			if err := op(ctx, &Item{Key: "z", Value: []byte("tail")}); !errors.Is(err, ErrAppendCompressed) {
				t.Errorf("Append/Prepend with compression: %v", err)
			}
		}
		if it, err := c.Get(ctx, "z"); err != nil || !bytes.Equal(it.Value, big) {
			t.Errorf("Get after refused appends: %v", err)
			c.Set(ctx, &Item{Key: "z", Value: big})
		}

		// A client that does not compress still uncompresses: it never
		// returns compressed bytes as the value.
		if it, err := plain.Get(ctx, "z"); err != nil || !bytes.Equal(it.Value, big) || it.Flags != 0 {
			t.Errorf("Get by a client without compression: %s", describe(it, err))
		}
		if mi, err := plain.MetaGet(ctx, "z", MetaGetOptions{}); err != nil || !bytes.Equal(mi.Value, big) || mi.Flags != 0 {
			t.Errorf("MetaGet by a client without compression: %v", err)
		}
		// Unless compression is off altogether.
		if it, err := raw.Get(ctx, "z"); err != nil || it.Flags != DefaultCompressFlag || len(it.Value) >= len(big) {
			t.Errorf("Get with compression off: %s", describe(it, err))
		}

		// The caller's flags may not use the compression bit.
		for _, cl := range []*Client{c, plain} {
			err := cl.Set(ctx, &Item{Key: "f", Value: big, Flags: DefaultCompressFlag | 1})
			if !errors.Is(err, ErrCompressFlag) {
				t.Errorf("Set with the compression flag: %v", err)
			}
		}
		if err := raw.Set(ctx, &Item{Key: "f", Value: []byte("v"), Flags: DefaultCompressFlag}); err != nil {
			t.Errorf("Set with the flag, compression off: %v", err)
		}

		// Uncompressing is bounded: 4 MB of zeros gzip to a few KB.
		bomb := gzipped(t, make([]byte, 4<<20))
		if err := raw.Set(ctx, &Item{Key: "bomb", Value: bomb, Flags: DefaultCompressFlag}); err != nil {
			t.Fatal(err)
		}
		for _, get := range []func(context.Context, string) (*Item, error){
			c.Get,
			func(ctx context.Context, k string) (*Item, error) {
				m, err := c.GetMulti(ctx, []string{k})
				return m[k], err
			},
			func(ctx context.Context, k string) (*Item, error) {
				m, err := c.MetaGetMulti(ctx, []string{k})
				return m[k], err
			},
		} {
			if it, err := get(ctx, "bomb"); !errors.Is(err, ErrValueTooLarge) || it != nil {
				t.Errorf("read of a 4 MB compressed value: %v", err)
			}
		}
		roomy := newClient(t, addrs, func(cfg *Config) { cfg.MaxUncompressedSize = 4 << 20 })
		if it, err := roomy.Get(ctx, "bomb"); err != nil || len(it.Value) != 4<<20 {
			t.Errorf("read with a 4 MB limit: %v", err)
		}
		// And a value that could not be read back is not stored.
		if err := c.Set(ctx, &Item{Key: "huge", Value: make([]byte, 2<<20)}); !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("Set of 2 MB that compresses: %v", err)
		}
	})
}

// TestMetaGetMultiLargeBatch sends a pipeline far larger than the socket
// buffers: a server stops reading while its replies back up, so a client
// that writes the whole pipeline before reading deadlocks until its
// timeout.
func TestMetaGetMultiLargeBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("moves about 60 MB")
	}
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs[:1], func(cfg *Config) { cfg.Timeout = time.Minute })
		// Long keys make long requests and long replies (the key comes
		// back) without filling the server's memory.
		var distinct []string
		for i := range 50 {
			k := fmt.Sprintf("%03d-%s", i, strings.Repeat("k", 236))
			distinct = append(distinct, k)
			if err := c.Set(ctx, &Item{Key: k, Value: []byte(k[:32])}); err != nil {
				t.Fatal(err)
			}
		}
		const n = 100_000 // about 28 MB each way; 50,000 already deadlocked on loopback
		keys := make([]string, n)
		for i := range keys {
			keys[i] = distinct[i%len(distinct)]
		}
		m, err := c.MetaGetMulti(ctx, keys)
		if err != nil || len(m) != len(distinct) {
			t.Fatalf("MetaGetMulti of %d keys = %d items, %v", n, len(m), err)
		}
		for _, k := range distinct {
			if it := m[k]; it == nil || string(it.Value) != k[:32] {
				t.Fatalf("%s = %+v", k[:8], it)
			}
		}
		if c.servers[0].dead() {
			t.Fatal("server marked dead")
		}
	})
}

// TestRetrievalFaults answers a get with replies that leave bytes on the
// connection which look like another key's value: the faulty call fails,
// and the next one on the connection gets its own value. The bytes left
// arrive only with the next request, where no check of the pooled
// connection sees them: only closing the connection after the fault keeps
// them from the next call.
func TestRetrievalFaults(t *testing.T) {
	faults := map[string]string{
		"header": "VALUE header 0 x 1\r\n" + holdBack + "VALUE a 0 1 1\r\nB\r\nEND\r\n",
		"line":   "ITEM line [1 b; 0 s]\r\n" + holdBack + "VALUE a 0 1 1\r\nB\r\nEND\r\n",
		"middle": "VALUE middle 0 1 1\r\nM\r\nSERVER_ERROR out of memory\r\n" + holdBack + "VALUE a 0 1 1\r\nB\r\nEND\r\n",
		"block":  "VALUE block 0 1 1\r\nMX\r" + holdBack + "\nVALUE a 0 1 1\r\nB\r\nEND\r\n",
		"twice":  "VALUE twice 0 1 1\r\nT\r\nVALUE twice 0 1 1\r\n" + holdBack + "B\r\nEND\r\n",
	}
	addr := scriptedServer(t, func(line string, r *bufio.Reader) string {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "gets" {
			return "ERROR\r\n"
		}
		if reply, ok := faults[f[1]]; ok {
			return reply
		}
		return fmt.Sprintf("VALUE %s 0 1 1\r\nA\r\nEND\r\n", f[1])
	})
	c := newClient(t, []string{addr}, func(cfg *Config) { cfg.MaxIdleConns = 1; cfg.MaxFailures = 1 })
	ctx := context.Background()
	for k := range faults {
		if it, err := c.Get(ctx, k); err == nil {
			t.Errorf("Get(%q) = %+v, want an error", k, it)
		}
		if it, err := c.Get(ctx, "a"); err != nil || string(it.Value) != "A" {
			t.Errorf("Get(a) after Get(%q) = %+v, %v", k, it, err)
		}
	}
	if c.servers[0].dead() {
		t.Error("faulty replies marked the server dead")
	}
}

// TestGetMultiManyKeys asks one server for more keys than fit the longest
// get line a server takes (corvid's is 1 MiB): GetMulti must split them
// over several requests and still find every key.
func TestGetMultiManyKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		c := newClient(t, addrs[:1], nil)
		const stored = 50
		pad := strings.Repeat("k", 200)
		keys := make([]string, 0, 6000)
		for i := range cap(keys) {
			keys = append(keys, fmt.Sprintf("%s%05d", pad, i))
		}
		for i := 0; i < len(keys); i += len(keys) / stored {
			if err := c.Set(ctx, &Item{Key: keys[i], Value: []byte(keys[i][len(pad):])}); err != nil {
				t.Fatal(err)
			}
		}
		m, err := c.GetMulti(ctx, keys)
		if err != nil {
			t.Fatalf("GetMulti of %d keys (%d bytes of keys): %v", len(keys), len(keys)*len(keys[0]), err)
		}
		if len(m) != stored {
			t.Errorf("GetMulti found %d items, want %d", len(m), stored)
		}
		for k, it := range m {
			if string(it.Value) != k[len(pad):] {
				t.Errorf("GetMulti[%q] = %q", k, it.Value)
			}
		}
	})
}

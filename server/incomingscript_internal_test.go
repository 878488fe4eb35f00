package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// binReq returns a binary request op for key with an n-byte value of
// byte v (none when n < 0), the given CAS and opaque.
func binReq(op protocol.Opcode, key string, n int, v byte, cas uint64, opaque uint32) []byte {
	ext := 0
	switch op {
	case protocol.OpSet, protocol.OpSetQ, protocol.OpAdd, protocol.OpAddQ, protocol.OpReplace, protocol.OpReplaceQ:
		ext = 8
	}
	body := ext + len(key) + max(n, 0)
	r := make([]byte, protocol.BinaryHeaderLen, protocol.BinaryHeaderLen+body)
	r[0], r[1] = protocol.BinaryRequestMagic, byte(op)
	binary.BigEndian.PutUint16(r[2:4], uint16(len(key)))
	r[4] = byte(ext)
	binary.BigEndian.PutUint32(r[8:12], uint32(body))
	binary.BigEndian.PutUint32(r[12:16], opaque)
	binary.BigEndian.PutUint64(r[16:24], cas)
	if ext > 0 {
		r = binary.BigEndian.AppendUint32(r, 7)
		r = binary.BigEndian.AppendUint32(r, 0)
	}
	r = append(r, key...)
	return append(r, bytes.Repeat([]byte{v}, max(n, 0))...)
}

// incomingScript runs a script of storage commands on values of n bytes
// over text, meta and binary, and returns the replies, with the values
// and their length written as <a>, <b>, <N> (so that the script's
// replies for one length compare with another's).
func incomingScript(t *testing.T, n int) (string, int, int) {
	cfg := Config{Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 16 << 20}}
	s, addr := start(t, cfg)
	a, b := strings.Repeat("a", n), strings.Repeat("b", n)
	N := strconv.Itoa(n)
	var script strings.Builder
	w := func(f string, args ...any) { fmt.Fprintf(&script, f, args...) }
	w("set k 0 0 3\r\nold\r\n")                   // cas 1
	w("ms k %s C999\r\n%s\r\n", N, a)             // EX
	w("ms k %s C999 q\r\n%s\r\n", N, a)           // EX, even quiet
	w("ms k %s q O1\r\n%sxx", N, a)               // bad data chunk
	w("mn\r\nmg k v c\r\n")                       // old, cas 1
	w("set k 0 0 3\r\nnew\r\n")                   // cas 2
	w("ms k %s I C1 k O2\r\n%s\r\n", N, a)        // stale replace
	w("mg k v c f t\r\n")                         // a, stale flags
	w("ms k %s C3 q\r\n%s\r\n", N, b)             // quiet hit
	w("mg k v c\r\n")                             // b
	w("ms k %s MA q\r\n%s\r\n", N, a)             // append
	w("ms k %s MP\r\n%s\r\n", N, a)               // prepend
	w("mg k s\r\n")                               //
	w("ms m %s MA\r\n%s\r\n", N, a)               // NS
	w("ms m %s MR q\r\n%s\r\n", N, a)             // NS
	w("ms m %s ME O3\r\n%s\r\n", N, b)            // HD
	w("ms m %s ME\r\n%s\r\n", N, a)               // NS
	w("cas m 0 0 %s 999\r\n%s\r\n", N, a)         // EXISTS
	w("cas m 0 0 %s 999 noreply\r\n%s\r\n", N, a) // nothing
	w("cas z 0 0 %s 999\r\n%s\r\n", N, a)         // NOT_FOUND
	w("set m 0 0 %s noreply\r\n%sxx", N, a)       // bad data chunk
	w("mn\r\nget m\r\n")                          // b
	w("ms a2V5 %s b k c\r\n%s\r\n", N, a)         // base64 key
	w("mg a2V5 b k s\r\nmg key s\r\n")            //
	w("prepend z 0 0 %s\r\n%s\r\n", N, a)         // NOT_STORED
	w("append m 0 0 %s noreply\r\n%s\r\nget m\r\n", N, a)
	w("mn\r\n")
	bin := []byte{}
	bin = append(bin, binReq(protocol.OpSet, "x", n, 'a', 0, 1)...)      // OK
	bin = append(bin, binReq(protocol.OpSetQ, "x", n, 'b', 999, 2)...)   // exists
	bin = append(bin, binReq(protocol.OpGetK, "x", -1, 0, 0, 3)...)      // a
	bin = append(bin, binReq(protocol.OpAddQ, "x", n, 'b', 0, 4)...)     // not stored
	bin = append(bin, binReq(protocol.OpReplaceQ, "y", n, 'b', 0, 5)...) // not found
	bin = append(bin, binReq(protocol.OpAppendQ, "x", n, 'b', 0, 6)...)  // quiet OK
	bin = append(bin, binReq(protocol.OpPrepend, "y", n, 'b', 0, 7)...)  // not stored
	bin = append(bin, binReq(protocol.OpAppend, "x", n, 'b', 999, 8)...) // exists
	bin = append(bin, binReq(protocol.OpGetK, "x", -1, 0, 0, 9)...)      // ab
	bin = append(bin, binReq(protocol.OpSet, "x", n, 'b', 0, 10)...)     // set over the appended value
	bin = append(bin, binReq(protocol.OpNoop, "", -1, 0, 0, 11)...)

	c := dial(t, "tcp", addr)
	c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { c.nc.Write([]byte(script.String())) }()
	var out strings.Builder
	for range 1000 {
		l := c.line()
		out.WriteString(l + "\n")
		if l == "MN" && strings.Count(out.String(), "MN\n") == 3 {
			break
		}
	}
	bc := dial(t, "tcp", addr)
	bc.nc.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { bc.nc.Write(bin) }()
	for range 100 {
		op, st, opaque, cas := readBinaryReply(t, bc)
		fmt.Fprintf(&out, "bin op %#x status %d opaque %d cas %d\n", op, st, opaque, cas)
		if op == byte(protocol.OpNoop) {
			break
		}
	}
	got := out.String()
	got = strings.ReplaceAll(got, a, "<a>")
	got = strings.ReplaceAll(got, b, "<b>")
	got = strings.ReplaceAll(got, " "+N, " <N>")
	got = strings.ReplaceAll(got, " "+strconv.Itoa(2*n), " <2N>")
	got = strings.ReplaceAll(got, " s"+N, " s<N>")
	got = strings.ReplaceAll(got, " s"+strconv.Itoa(3*n), " s<3N>")
	c.expect("delete k\r\ndelete m\r\ndelete key\r\ndelete x\r\n", "DELETED", "DELETED", "DELETED", "DELETED")
	used, items := usedChunks(s)
	return got, used, items
}

// TestIncomingScriptMatchesBuffered runs the same storage commands with
// values read into chunks and with small values read whole: the replies
// are the same, and nothing is left in use once the keys are deleted.
func TestIncomingScriptMatchesBuffered(t *testing.T) {
	small, used, items := incomingScript(t, 100)
	if used != 0 || items != 0 {
		t.Errorf("small values: %d chunks and %d items left", used, items)
	}
	big, used, items := incomingScript(t, 3<<20)
	if used != 0 || items != 0 {
		t.Errorf("chained values: %d chunks and %d items left", used, items)
	}
	if small != big {
		t.Errorf("replies differ:\nsmall values:\n%s\nchained values:\n%s", small, big)
	}
}

// TestIncomingConcurrentSetsNoMix has two clients set the same key to
// chained values of one byte each (one with set, one with ms), slowly
// and in parts, while a third gets it and flushes the cache now and then:
// a get sees one whole value or none, never a mix, and once the key is
// deleted no chunk is left in use.
func TestIncomingConcurrentSetsNoMix(t *testing.T) {
	s, addr := start(t, Config{Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 16 << 20}})
	const size = 3 << 20
	const rounds = 12
	errs := make(chan error, 2)
	for _, w := range []struct {
		v    byte
		head string
	}{{'a', fmt.Sprintf("set k 0 0 %d\r\n", size)}, {'b', fmt.Sprintf("ms k %d\r\n", size)}} {
		c := dial(t, "tcp", addr)
		c.nc.SetDeadline(time.Now().Add(60 * time.Second))
		go func() {
			value := bytes.Repeat([]byte{w.v}, size)
			for i := range rounds {
				// In four parts, the later ones after the reader has
				// had a turn.
				msg := append([]byte(w.head), value...)
				msg = append(msg, "\r\n"...)
				for p := range 4 {
					if _, err := c.nc.Write(msg[p*len(msg)/4 : (p+1)*len(msg)/4]); err != nil {
						errs <- err
						return
					}
				}
				l, err := c.r.ReadString('\n')
				if err != nil || (l != "STORED\r\n" && l != "HD\r\n") {
					errs <- fmt.Errorf("round %d of %c: %q %v", i, w.v, l, err)
					return
				}
			}
			errs <- nil
		}()
	}
	r := dial(t, "tcp", addr)
	r.nc.SetDeadline(time.Now().Add(60 * time.Second))
	done, gets := 0, 0
	for done < 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
			continue
		default:
		}
		gets++
		if gets%16 == 0 {
			r.expect("flush_all\r\n", "OK")
		}
		r.send("mg k v\r\n")
		l := r.line()
		if l == "EN" {
			continue
		}
		if l != "VA "+strconv.Itoa(size) {
			t.Fatalf("mg k: %q", l)
		}
		got := make([]byte, size+2)
		if _, err := ioReadFull(r, got); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(got[:size], got[:1]); n != size || got[0] != 'a' && got[0] != 'b' {
			t.Fatalf("a get sees a mix: %d of %d bytes are %q", n, size, got[:1])
		}
	}
	r.send("delete k\r\n")
	r.line()
	if used, items := usedChunks(s); used != 0 || items != 0 {
		t.Fatalf("after the key is deleted: %d chunks in use, %d items", used, items)
	}
	if gets == 0 {
		t.Fatal("no get ran while the values were set")
	}
}

// TestStopWithStalledIncoming stops a server while clients have sent
// part of chained values (text, meta, binary) and stall: Close returns
// within the grace, does not wait for the values, and each client is
// closed.
func TestStopWithStalledIncoming(t *testing.T) {
	const grace = 2 * time.Second
	s, addr := start(t, Config{ShutdownGrace: grace, Storage: storage.Config{MemoryLimit: 128 << 20, ItemSizeMax: 64 << 20}})
	const size = 32 << 20
	heads := []string{
		fmt.Sprintf("set k1 0 0 %d\r\n", size),
		fmt.Sprintf("ms k2 %d\r\n", size),
		string(binaryStore(protocol.OpSet, "k3", size, 1)),
	}
	var clients []*client
	for _, h := range heads {
		c := dial(t, "tcp", addr)
		c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		c.send(h + strings.Repeat("v", 3<<20))
		clients = append(clients, c)
	}
	deadline := time.Now().Add(20 * time.Second)
	for slabUse(s) < 8<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the values are not read in: %d bytes of chunks in use", slabUse(s))
		}
		time.Sleep(time.Millisecond)
	}
	began := time.Now()
	s.Close()
	if d := time.Since(began); d > grace+5*time.Second {
		t.Errorf("Close took %v with a grace of %v", d, grace)
	}
	for i, c := range clients {
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.r.ReadByte(); err == nil || isTimeout(err) {
			t.Errorf("client %d is not closed: %v", i, err)
		}
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestStopMidIncomingSavesOldValue stops a server with a snapshot file
// while clients are sending chained values (text, meta, binary) over
// keys that hold small values: the restarted server has the old values
// back, and no part of the new ones.
func TestStopMidIncomingSavesOldValue(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "snap")
	cfg := Config{SnapshotFile: snap, ShutdownGrace: time.Second,
		Storage: storage.Config{MemoryLimit: 128 << 20, ItemSizeMax: 64 << 20}}
	s, addr := start(t, cfg)
	const size = 32 << 20
	heads := []string{
		fmt.Sprintf("set k1 0 0 %d\r\n", size),
		fmt.Sprintf("ms k2 %d\r\n", size),
		string(binaryStore(protocol.OpSet, "k3", size, 1)),
		fmt.Sprintf("set k4 0 0 %d\r\n", size), // a key with no old value
	}
	for i := range 3 {
		if _, err := s.cache.Store(storage.ModeSet, fmt.Appendf(nil, "k%d", i+1), 0, 0, []byte("old"), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range heads {
		c := dial(t, "tcp", addr)
		c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		// All but the last bytes: a value that ends too soon.
		c.send(h + strings.Repeat("v", size-1))
		if h[0] == 'm' || h[0] == 's' {
			c.send("\r")
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for slabUse(s) < 3*size {
		if time.Now().After(deadline) {
			t.Fatalf("the values are not read in: %d bytes of chunks in use", slabUse(s))
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, addr = start(t, cfg)
	c := dial(t, "tcp", addr)
	for i := range 3 {
		k := fmt.Sprintf("k%d", i+1)
		c.expect("get "+k+"\r\n", "VALUE "+k+" 0 3", "old", "END")
	}
	c.expect("get k4\r\n", "END")
}

// TestIncomingCutAtChunkBoundaries sends chained values (text, meta,
// binary) that stop around every chunk boundary, and around the end of
// the value and of its "\r\n", then closes: every time, the chunks in
// use and the items come back to what they were, and no reference is
// left on an item.
func TestIncomingCutAtChunkBoundaries(t *testing.T) {
	const chunk = 64 << 10
	s, addr := start(t, Config{Storage: storage.Config{MemoryLimit: 64 << 20, ItemSizeMax: 1 << 20, SlabChunkMax: chunk}})
	const size = 3*chunk + 100
	if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	used0, items0 := usedChunks(s)
	var cuts []int
	for j := range 5 {
		for d := -2; d <= 2; d++ {
			if at := j*chunk + d; at >= 0 {
				cuts = append(cuts, at)
			}
		}
	}
	cuts = append(cuts, size-1, size, size+1)
	value := []byte(strings.Repeat("v", size) + "\r\n")
	for _, p := range []struct {
		name string
		head []byte
		wire int // bytes of the value on the wire
	}{
		{"set", fmt.Appendf(nil, "set k 0 0 %d\r\n", size), size + 2},
		{"ms", fmt.Appendf(nil, "ms k %d\r\n", size), size + 2},
		{"append", fmt.Appendf(nil, "append k 0 0 %d\r\n", size), size + 2},
		{"binary set", binaryStore(protocol.OpSet, "k", size, 1), size},
	} {
		for _, at := range cuts {
			if at >= p.wire {
				continue
			}
			c := dial(t, "tcp", addr)
			c.send(string(p.head) + string(value[:at]))
			// Before closing, the server has taken the item's header
			// chunk and at least a chunk for each chunk's worth of the
			// value sent.
			want := used0 + 1 + (at+chunk-1)/chunk
			deadline := time.Now().Add(10 * time.Second)
			for used, _ := usedChunks(s); used < want; used, _ = usedChunks(s) {
				if time.Now().After(deadline) {
					t.Fatalf("%s cut at %d: %d chunks in use, want %d", p.name, at, used, want)
				}
				time.Sleep(time.Millisecond)
			}
			c.nc.Close()
			for {
				used, items := usedChunks(s)
				if used == used0 && items == items0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s cut at %d: %d chunks and %d items in use, %d and %d before", p.name, at, used, items, used0, items0)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	check := dial(t, "tcp", addr)
	check.expect("get k\r\n", "VALUE k 0 3", "old", "END")
	check.send("stats items\r\n")
	for l := check.line(); l != "END"; l = check.line() {
		if f := strings.Fields(l); len(f) == 3 && strings.HasSuffix(f[1], ":lrutail_reflocked") && f[2] != "0" {
			t.Errorf("%s", l)
		}
	}
}

// TestIncomingMemoryTakenMidValue starts chained values (text, meta,
// binary) with enough free memory, lets other stores take it all while
// they are read, then sends the rest: each fails as memcached fails a
// value it finds no memory for while reading it, the rest of the value
// is discarded (the next request is answered), the old value stays,
// and once every key is deleted no chunk is left in use.
func TestIncomingMemoryTakenMidValue(t *testing.T) {
	s, addr := start(t, Config{Storage: storage.Config{MemoryLimit: 32 << 20, ItemSizeMax: 16 << 20}})
	const size = 10 << 20
	value := strings.Repeat("v", size)
	for _, p := range []struct {
		name, head, tail, want string
		reply                  func(c *client) string
	}{
		{"set", fmt.Sprintf("set k 0 0 %d\r\n", size), "\r\nmn\r\n", "SERVER_ERROR Out of memory during read MN",
			func(c *client) string { return c.line() + " " + c.line() }},
		{"ms", fmt.Sprintf("ms k %d T0\r\n", size), "\r\nmn\r\n", "SERVER_ERROR Out of memory during read MN",
			func(c *client) string { return c.line() + " " + c.line() }},
		{"binary set", string(binaryStore(protocol.OpSet, "k", size, 1)), string(binaryNoop(2)), "status 130 op 0xa", func(c *client) string {
			_, st, _, _ := readBinaryReply(t, c)
			op, _, _, _ := readBinaryReply(t, c)
			return fmt.Sprintf("status %d op %#x", st, op)
		}},
	} {
		t.Run(p.name, func(t *testing.T) {
			if _, err := s.cache.Store(storage.ModeSet, []byte("k"), 0, 0, []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			c := dial(t, "tcp", addr)
			c.nc.SetDeadline(time.Now().Add(30 * time.Second))
			c.send(p.head + value[:size/4])
			deadline := time.Now().Add(10 * time.Second)
			for slabUse(s) < int64(size/8) {
				if time.Now().After(deadline) {
					t.Fatal("the value is not read in")
				}
				time.Sleep(time.Millisecond)
			}
			// Others take the free memory (and evict each other).
			for i := range 16 {
				if _, err := s.cache.Store(storage.ModeSet, fmt.Appendf(nil, "fill%d", i), 0, 0, largeValueInternal(3<<20), 0); err != nil {
					t.Fatal(err)
				}
			}
			c.send(value[size/4:] + p.tail)
			if got := p.reply(c); got != p.want {
				t.Fatalf("%s: %q, want %q", p.name, got, p.want)
			}
			check := dial(t, "tcp", addr)
			check.expect("get k\r\n", "VALUE k 0 3", "old", "END")
			for i := range 16 {
				s.cache.Delete(fmt.Appendf(nil, "fill%d", i))
			}
			s.cache.Delete([]byte("k"))
			if used, items := usedChunks(s); used != 0 || items != 0 {
				t.Fatalf("after every key is deleted: %d chunks, %d items", used, items)
			}
		})
	}
}

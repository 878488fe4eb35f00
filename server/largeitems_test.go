package server_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// Large-item settings of TestLargeValuesAcrossChunks: -I 2m, the default
// slab_chunk_max (half a page), so that values up to -I span up to four
// slab_chunk_max chunks in memcached.
const (
	largeItemMax  = 2 << 20
	largeChunkMax = storage.SlabPageSize / 2
	largeMemoryMB = 64
)

// largeSizes are the value sizes tested: small ones, then sizes around
// every slab_chunk_max boundary up to -I, where an item's header, key and
// CAS move the value across a chunk boundary, and past the -I limit.
func largeSizes() []int {
	sizes := []int{1, 2, 100, 4096}
	offsets := []int{-120, -63, -62, -1, 0, 1, 47}
	if testutil.RaceEnabled {
		offsets = []int{-1, 0, 1} // every boundary still; the run without the detector tries every offset
	}
	for b := largeChunkMax / 2; b <= largeItemMax; b += largeChunkMax / 2 {
		for _, d := range offsets {
			sizes = append(sizes, b+d)
		}
	}
	return sizes
}

// largeValue is a value of n bytes in which every position holds a byte
// that depends on the position and n, so a chunk stored or read out of
// place shows.
func largeValue(n int, seed byte) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(i) ^ byte(i>>8)*31 ^ byte(i>>16)*7 ^ byte(n) ^ seed
	}
	return v
}

// largeConn is a connection to a server under test.
type largeConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialLarge(t *testing.T, addr string) *largeConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &largeConn{t: t, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

func (c *largeConn) send(parts ...[]byte) {
	c.t.Helper()
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	for _, p := range parts {
		if _, err := c.nc.Write(p); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *largeConn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return l
}

// stats sends a stats command (cmd: "stats", "stats slabs", ...) and
// returns its values by name.
func (c *largeConn) stats(cmd string) map[string]string {
	c.t.Helper()
	c.send([]byte(cmd + "\r\n"))
	m := map[string]string{}
	for {
		l := strings.TrimSpace(c.line())
		if l == "END" {
			return m
		}
		if f := strings.Fields(l); len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
}

func (c *largeConn) full(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		c.t.Fatal(err)
	}
	return b
}

// store sends a text storage command and returns the reply line.
func (c *largeConn) store(cmd, key string, v []byte) string {
	c.t.Helper()
	c.send([]byte(fmt.Sprintf("%s %s 0 0 %d\r\n", cmd, key, len(v))), v, []byte("\r\n"))
	return c.line()
}

// get returns the value of key through a text get, or nil on a miss.
func (c *largeConn) get(key string) []byte {
	c.t.Helper()
	c.send([]byte("get " + key + "\r\n"))
	l := c.line()
	if l == "END\r\n" {
		return nil
	}
	var k string
	var flags, n int
	if _, err := fmt.Sscanf(l, "VALUE %s %d %d\r\n", &k, &flags, &n); err != nil {
		c.t.Fatalf("get %s: %q", key, l)
	}
	v := c.full(n + 2)
	if l := c.line(); l != "END\r\n" {
		c.t.Fatalf("get %s: %q after the value", key, l)
	}
	return v[:n]
}

// metaSet stores with ms and returns the reply line; metaGet reads with mg.
func (c *largeConn) metaSet(key string, v []byte) string {
	c.t.Helper()
	c.send([]byte(fmt.Sprintf("ms %s %d T0\r\n", key, len(v))), v, []byte("\r\n"))
	return c.line()
}

func (c *largeConn) metaGet(key string) []byte {
	c.t.Helper()
	c.send([]byte("mg " + key + " v\r\n"))
	l := c.line()
	if l == "EN\r\n" {
		return nil
	}
	var n int
	if _, err := fmt.Sscanf(l, "VA %d", &n); err != nil {
		c.t.Fatalf("mg %s: %q", key, l)
	}
	return c.full(n + 2)[:n]
}

// binary sends one binary request and returns the response's status and
// value.
func (c *largeConn) binary(op byte, key string, extras, v []byte) (uint16, []byte) {
	c.t.Helper()
	h := make([]byte, 24)
	h[0], h[1] = 0x80, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(v)))
	c.send(h, extras, []byte(key), v)
	r := c.full(24)
	if r[0] != 0x81 {
		c.t.Fatalf("binary reply magic %#x", r[0])
	}
	body := c.full(int(binary.BigEndian.Uint32(r[8:])))
	ext, klen := int(r[4]), int(binary.BigEndian.Uint16(r[2:]))
	return binary.BigEndian.Uint16(r[6:]), body[ext+klen:]
}

// largeOutcome runs every protocol's round trips for one value size and
// describes what the server answered, so that two servers can be compared
// and a lost or corrupted value shows.
// A connection speaks the protocol of its first request: bc is a second
// one, for binary.
func largeOutcome(t *testing.T, c, bc *largeConn, n int) string {
	t.Helper()
	var out bytes.Buffer
	v := largeValue(n, 1)
	check := func(what string, stored bool, got []byte, want []byte) {
		switch {
		case !stored:
		case got == nil:
			fmt.Fprintf(&out, " %s:miss", what)
		case !bytes.Equal(got, want):
			fmt.Fprintf(&out, " %s:CORRUPT(%d bytes, first difference at %d)", what, len(got), firstDiff(got, want))
		default:
			fmt.Fprintf(&out, " %s:ok", what)
		}
	}
	key := fmt.Sprintf("t%d", n)
	r := c.store("set", key, v)
	fmt.Fprintf(&out, "set:%q", r)
	check("get", r == "STORED\r\n", c.get(key), v)

	// append and prepend onto half of the value build the whole of it.
	h := n / 2
	for _, mode := range []string{"append", "prepend"} {
		k := fmt.Sprintf("%s%d", mode[:1], n)
		first, second := v[:h], v[h:]
		if mode == "prepend" {
			first, second = v[h:], v[:h]
		}
		r1 := c.store("set", k, first)
		r2 := c.store(mode, k, second)
		fmt.Fprintf(&out, " %s:%q%q", mode, r1, r2)
		check(mode+"-get", r2 == "STORED\r\n", c.get(k), v)
	}

	mk := fmt.Sprintf("m%d", n)
	r = c.metaSet(mk, v)
	fmt.Fprintf(&out, " ms:%q", r)
	check("mg", r == "HD\r\n", c.metaGet(mk), v)

	bk := fmt.Sprintf("b%d", n)
	st, _ := bc.binary(0x01, bk, make([]byte, 8), v)
	fmt.Fprintf(&out, " bset:%d", st)
	bst, got := bc.binary(0x00, bk, nil, nil)
	if bst != 0 {
		got = nil
	}
	check("bget", st == 0, got, v)

	// ms append and binary prepend onto half of the value.
	mak := fmt.Sprintf("ma%d", n)
	r1 := c.metaSet(mak, v[:h])
	c.send([]byte(fmt.Sprintf("ms %s %d MA\r\n", mak, n-h)), v[h:], []byte("\r\n"))
	r2 := c.line()
	fmt.Fprintf(&out, " msappend:%q%q", r1, r2)
	check("msappend-mg", r2 == "HD\r\n", c.metaGet(mak), v)
	bpk := fmt.Sprintf("bp%d", n)
	st1, _ := bc.binary(0x01, bpk, make([]byte, 8), v[h:])
	st2, _ := bc.binary(0x0f, bpk, nil, v[:h])
	fmt.Fprintf(&out, " bprepend:%d,%d", st1, st2)
	bst, got = bc.binary(0x00, bpk, nil, nil)
	if bst != 0 {
		got = nil
	}
	check("bprepend-bget", st2 == 0, got, v)
	return out.String()
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLargeValuesAcrossChunks stores values of sizes from 1 byte to past
// -I, around every slab_chunk_max boundary, through text (set, append,
// prepend), meta (set, append) and binary (set, prepend), and reads each
// back: every value memcached stores must read back intact, and corvid
// must store and refuse exactly the values memcached (-I 2m) stores and
// refuses.
func TestLargeValuesAcrossChunks(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{
		Storage: storage.Config{MemoryLimit: largeMemoryMB << 20, ItemSizeMax: largeItemMax, SlabChunkMax: largeChunkMax},
	})
	c, bc := dialLarge(t, addr), dialLarge(t, addr)
	var m, bm *largeConn
	if testutil.MemcachedPath() != "" {
		maddr := testutil.StartMemcached(t, "-m", fmt.Sprint(largeMemoryMB), "-I", "2m")
		m, bm = dialLarge(t, maddr), dialLarge(t, maddr)
	}
	stored := 0
	for _, n := range largeSizes() {
		got := largeOutcome(t, c, bc, n)
		if bytes.Contains([]byte(got), []byte("CORRUPT")) || bytes.Contains([]byte(got), []byte(":miss")) {
			t.Errorf("size %d: corvid %s", n, got)
		}
		if bytes.Contains([]byte(got), []byte("get:ok")) {
			stored++
		}
		if m == nil {
			continue
		}
		if want := largeOutcome(t, m, bm, n); got != want {
			t.Errorf("size %d:\n corvid    %s\n memcached %s", n, got, want)
		}
	}
	if stored < len(largeSizes())/2 {
		t.Fatalf("only %d sizes stored", stored)
	}
}

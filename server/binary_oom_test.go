package server_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// oomCase is one binary request sent to a full -M cache, followed by a
// noop so that a quiet request's silence is seen too.
type oomCase struct {
	name string
	req  testutil.BinaryRequest
}

// binSetExtras are a set's extras: flags, then expiration.
func binSetExtras(flags, exp uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, flags), exp)
}

// binIncrExtras are incr's extras: delta, initial value, expiration.
func binIncrExtras(delta, initial uint64, exp uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, delta)
	b = binary.BigEndian.AppendUint64(b, initial)
	return binary.BigEndian.AppendUint32(b, exp)
}

// fillBinary sets keys prefix0, prefix1, ... with values of n bytes until a
// set fails, and returns that failure and how many were stored.
func fillBinary(t *testing.T, c *testutil.Conn, prefix string, n int) (*testutil.BinaryResponse, int) {
	t.Helper()
	const limit = 50000
	value := bytes.Repeat([]byte("x"), n)
	for i := 0; i < limit; i++ {
		c.Send(testutil.BinaryRequest{Opcode: 0x01, Opaque: uint32(i), Extras: binSetExtras(0, 0),
			Key: []byte(fmt.Sprint(prefix, i)), Value: value}.Bytes())
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("set %s%d: %v", prefix, i, err)
		}
		if r.Status() != 0 {
			return r, i
		}
	}
	t.Fatalf("%d sets of %d bytes all stored in a -M cache", limit, n)
	return nil, 0
}

// TestBinaryOutOfMemoryMatchesMemcached fills a small -M cache through the
// binary protocol and checks that the requests that then find no memory
// are answered as memcached answers them: status 0x82 with memcached's
// text as the body ("Out of memory allocating item" for a store, "Out of
// memory allocating new item" for an incr creating its counter), quiet
// forms included, and that a set which fails so removes the key's old
// value, as memcached's does. An append or prepend fails so when memcached
// finds no memory for the item it reads the appended value into, whether
// the key exists or not.
func TestBinaryOutOfMemoryMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-m", "2", "-M", "-o", "no_lru_crawler,no_lru_maintainer")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{
		MemoryLimit: 2 << 20, NoEvict: true, NoCrawler: true, NoLRUMaintainer: true}})
	big := bytes.Repeat([]byte("v"), 1000)
	cases := []oomCase{
		{"set", testutil.BinaryRequest{Opcode: 0x01, Extras: binSetExtras(0, 0), Key: []byte("new1"), Value: big}},
		{"setq", testutil.BinaryRequest{Opcode: 0x11, Extras: binSetExtras(1, 0), Key: []byte("new2"), Value: big}},
		{"add", testutil.BinaryRequest{Opcode: 0x02, Extras: binSetExtras(0, 0), Key: []byte("new3"), Value: big}},
		{"addq", testutil.BinaryRequest{Opcode: 0x12, Extras: binSetExtras(0, 0), Key: []byte("new3"), Value: big}},
		{"replace", testutil.BinaryRequest{Opcode: 0x03, Extras: binSetExtras(0, 0), Key: []byte("b1"), Value: big}},
		{"replaceq", testutil.BinaryRequest{Opcode: 0x13, Extras: binSetExtras(0, 0), Key: []byte("b1"), Value: big}},
		{"append", testutil.BinaryRequest{Opcode: 0x0e, Key: []byte("b6"), Value: big}},
		{"appendq", testutil.BinaryRequest{Opcode: 0x19, Key: []byte("b6"), Value: big}},
		{"prepend small", testutil.BinaryRequest{Opcode: 0x0f, Key: []byte("b6"), Value: []byte("yy")}},
		{"prependq missing", testutil.BinaryRequest{Opcode: 0x1a, Key: []byte("nokey"), Value: big}},
		{"get it", testutil.BinaryRequest{Opcode: 0x00, Key: []byte("b6")}},
		{"set cas", testutil.BinaryRequest{Opcode: 0x01, CAS: 1, Extras: binSetExtras(0, 0), Key: []byte("b2"), Value: big}},
		{"set small", testutil.BinaryRequest{Opcode: 0x01, Extras: binSetExtras(0, 0), Key: []byte("s"), Value: []byte("1")}},
		{"incr create", testutil.BinaryRequest{Opcode: 0x05, Extras: binIncrExtras(1, 5, 0), Key: []byte("cnt")}},
		{"incrq create", testutil.BinaryRequest{Opcode: 0x15, Extras: binIncrExtras(1, 5, 0), Key: []byte("cnt")}},
		{"decr create", testutil.BinaryRequest{Opcode: 0x06, Extras: binIncrExtras(1, 5, 0), Key: []byte("cnt")}},
		{"set existing", testutil.BinaryRequest{Opcode: 0x01, Extras: binSetExtras(0, 0), Key: []byte("b3"), Value: big}},
		{"get it", testutil.BinaryRequest{Opcode: 0x00, Key: []byte("b3")}},
		{"setq existing", testutil.BinaryRequest{Opcode: 0x11, Extras: binSetExtras(0, 0), Key: []byte("b4"), Value: big}},
		{"get it", testutil.BinaryRequest{Opcode: 0x00, Key: []byte("b4")}},
		{"replace existing", testutil.BinaryRequest{Opcode: 0x03, Extras: binSetExtras(0, 0), Key: []byte("b5"), Value: big}},
		{"get it", testutil.BinaryRequest{Opcode: 0x00, Key: []byte("b5")}},
	}
	run := func(addr string) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		// Fill the class of 1000-byte values, then the smallest class.
		if r, _ := fillBinary(t, c, "b", len(big)); r.Status() != 0x82 {
			t.Fatalf("filling: %v", r)
		}
		if r, _ := fillBinary(t, c, "s", 1); r.Status() != 0x82 {
			t.Fatalf("filling: %v", r)
		}
		var out []string
		for i, oc := range cases {
			oc.req.Opaque = uint32(0x1000 + i)
			c.Send(append(oc.req.Bytes(), testutil.BinaryRequest{Opcode: 0x0a, Opaque: 0xfeed}.Bytes()...))
			for {
				r, err := c.ReadBinary()
				if err != nil {
					t.Fatalf("%s: %v", oc.name, err)
				}
				if r.Opcode() == 0x0a {
					break
				}
				// CAS values are compared as zero or not.
				h := r.Header
				if binary.BigEndian.Uint64(h[16:]) != 0 {
					binary.BigEndian.PutUint64(h[16:], 1)
				}
				out = append(out, fmt.Sprintf("%s: % x %q", oc.name, h, r.Body))
			}
		}
		return out
	}
	want, got := run(mc), run(cv)
	if w, g := strings.Join(want, "\n"), strings.Join(got, "\n"); w != g {
		t.Errorf("replies differ:\ncorvid:\n%s\nmemcached:\n%s", g, w)
	}
}

// TestAppendOutOfMemoryMatchesMemcached fills a small -M cache through the
// text protocol and checks that append, prepend and a meta set in append
// mode fail as memcached's do when the item the value is read into finds
// no memory: "SERVER_ERROR out of memory storing object", counted in
// store_no_memory, the meta set dropping the key's old value.
func TestAppendOutOfMemoryMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-m", "2", "-M", "-o", "no_lru_crawler,no_lru_maintainer")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{
		MemoryLimit: 2 << 20, NoEvict: true, NoCrawler: true, NoLRUMaintainer: true}})
	big := strings.Repeat("v", 1000)
	steps := []string{
		"append b1 0 0 1000\r\n" + big + "\r\n",
		"prepend nokey 0 0 1000\r\n" + big + "\r\n",
		"append b1 0 0 2\r\nyy\r\n",
		"ms b2 1000 MA\r\n" + big + "\r\n",
		"mg b2 s\r\n",
		"ms b3 2 MA\r\nzz\r\n",
		"mg b3 s\r\n",
	}
	run := func(addr string) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		const limit = 50000
		for i := 0; ; i++ {
			if i == limit {
				t.Fatalf("%d sets of %d bytes all stored in a -M cache", limit, len(big))
			}
			c.Send([]byte(fmt.Sprintf("set b%d 0 0 %d\r\n%s\r\n", i, len(big), big)))
			if r := string(c.ReadReply(testutil.LineReply)); r != "STORED\r\n" {
				break
			}
		}
		var out []string
		for _, s := range steps {
			c.Send([]byte(s))
			out = append(out, fmt.Sprintf("%.20q: %q", s, c.ReadReply(testutil.LineReply)))
		}
		return append(out, "store_no_memory "+statValues(t, addr, "")["store_no_memory"])
	}
	want, got := run(mc), run(cv)
	if w, g := strings.Join(want, "\n"), strings.Join(got, "\n"); w != g {
		t.Errorf("replies differ:\ncorvid:\n%s\nmemcached:\n%s", g, w)
	}
}

// TestBinaryChainedOutOfMemoryMatchesMemcached fills a -M cache with
// chained values through the binary protocol until a set finds no memory
// for the body chunks: memcached fails it while reading the value, with
// status 0x82 and "Out of memory during read" (to setq too), and leaves
// the key's old value in place.
func TestBinaryChainedOutOfMemoryMatchesMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t, "-m", "64", "-I", "16m", "-M")
	cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{
		MemoryLimit: 64 << 20, ItemSizeMax: 16 << 20, NoEvict: true}})
	old := bytes.Repeat([]byte("o"), 2<<20)
	run := func(addr string) []string {
		c := testutil.Dial(t, addr)
		defer c.Close()
		set := func(op byte, key string, value []byte) *testutil.BinaryResponse {
			c.Send(append(testutil.BinaryRequest{Opcode: op, Opaque: 7, Extras: binSetExtras(0, 0),
				Key: []byte(key), Value: value}.Bytes(), testutil.BinaryRequest{Opcode: 0x0a}.Bytes()...))
			var first *testutil.BinaryResponse
			for {
				r, err := c.ReadBinary()
				if err != nil {
					t.Fatalf("set %s: %v", key, err)
				}
				if r.Opcode() == 0x0a {
					return first
				}
				first = r
			}
		}
		if r := set(0x01, "old", old); r == nil || r.Status() != 0 {
			t.Fatalf("set old: %v", r)
		}
		var out []string
		for i := 0; i < 40; i++ {
			if r := set(0x01, fmt.Sprint("k", i), bytes.Repeat([]byte{byte(i)}, 3<<20)); r.Status() != 0 {
				out = append(out, fmt.Sprintf("set: % x %q", r.Header, r.Body))
				break
			}
		}
		if len(out) == 0 {
			t.Fatalf("40 sets of 3 MB into -m 64 -M all stored")
		}
		r := set(0x11, "old", bytes.Repeat([]byte("n"), 3<<20))
		out = append(out, fmt.Sprintf("setq old: %v", r))
		c.Send(testutil.BinaryRequest{Opcode: 0x00, Key: []byte("old")}.Bytes())
		if r, err := c.ReadBinary(); err != nil || r.Status() != 0 || !bytes.Equal(r.Value(), old) {
			out = append(out, fmt.Sprintf("get old: %v %v", r, err))
		}
		return out
	}
	want, got := run(mc), run(cv)
	if w, g := strings.Join(want, "\n"), strings.Join(got, "\n"); w != g {
		t.Errorf("replies differ:\ncorvid:\n%s\nmemcached:\n%s", g, w)
	}
}

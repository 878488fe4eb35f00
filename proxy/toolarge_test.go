package proxy

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// tooLargeTranscript stores "old" under a key per step, sends the step's
// storage command with a value over the limit (text or binary), and
// then reads the key back: the replies, in order. A binary step's key is
// read with a binary get on the same connection.
func tooLargeTranscript(t *testing.T, addr string) []string {
	t.Helper()
	big := strings.Repeat("x", DefaultMaxValueLen+1)
	var out []string
	text := []struct{ key, req string }{
		{"ts", "set ts 0 0 %d\r\n%s\r\n"},
		{"tsn", "set tsn 0 0 %d noreply\r\n%s\r\n"},
		{"ta", "add ta 0 0 %d\r\n%s\r\n"},
		{"tr", "replace tr 0 0 %d\r\n%s\r\n"},
		{"tp", "append tp 0 0 %d\r\n%s\r\n"},
		{"tc", "cas tc 0 0 %d 1\r\n%s\r\n"},
	}
	c := testutil.Dial(t, addr)
	for _, s := range text {
		out = append(out, roundTrip(c, "set "+s.key+" 0 0 3\r\nold\r\n", testutil.LineReply))
		c.Send([]byte(fmt.Sprintf(s.req, len(big), big)))
		if !strings.Contains(s.req, "noreply") {
			out = append(out, string(c.ReadReply(testutil.LineReply)))
		}
		out = append(out, roundTrip(c, "get "+s.key+"\r\n", testutil.ValuesReply))
	}
	c.Close()
	flags := make([]byte, 8) // flags and exptime
	ops := []struct {
		name string
		op   byte
	}{{"set", 0x01}, {"setq", 0x11}, {"add", 0x02}, {"addq", 0x12}, {"replace", 0x03}, {"append", 0x0e}, {"prepend", 0x0f}}
	c = testutil.Dial(t, addr)
	defer c.Close()
	read := func(what string) string {
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return fmt.Sprintf("%s: op=%02x status=%04x body=%q", what, r.Opcode(), r.Status(), r.Body)
	}
	for _, o := range ops {
		key := []byte("b" + o.name)
		c.Send(testutil.BinaryRequest{Opcode: 0x01, Extras: flags, Key: key, Value: []byte("old")}.Bytes())
		out = append(out, read("set old"))
		req := testutil.BinaryRequest{Opcode: o.op, Key: key, Value: []byte(big)}
		if o.op != 0x0e && o.op != 0x0f {
			req.Extras = flags
		}
		c.Send(req.Bytes())
		out = append(out, read(o.name+" too large"))
		get := testutil.BinaryRequest{Opcode: 0x00, Key: key}.Bytes()
		binary.BigEndian.PutUint32(get[12:], 7) // opaque
		c.Send(get)
		out = append(out, read("get "+string(key)))
	}
	return out
}

// TestTooLargeMatchesMemcached: a storage command whose value is over
// the limit is refused as memcached refuses it, and leaves the key as
// memcached leaves it (a set removes the old value, in text and binary),
// through the proxy in front of real memcached.
func TestTooLargeMatchesMemcached(t *testing.T) {
	direct := testutil.StartMemcached(t)
	_, paddr := proxyFor(t, []string{testutil.StartMemcached(t), testutil.StartMemcached(t)})
	want := tooLargeTranscript(t, direct)
	got := tooLargeTranscript(t, paddr)
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("step %d: proxy %q, memcached %q", i, g, w)
		}
	}
}

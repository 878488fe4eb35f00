package server

import (
	"bytes"
	"testing"

	"github.com/corvidcache/corvid/storage"
)

// TestWriteBufAllowanceDefaultItemSize checks that a server whose
// Config leaves the item size limit at storage's default (1 MiB) has an
// allowance past write_buf_mem_limit that holds a reply of its largest
// item: computed from the 0 left in the Config, the allowance was
// limit/8, and a get of a value near 1 MiB after another value, whose
// buffer rounds up to 2 MiB, waited for room that could never come and
// was closed.
func TestWriteBufAllowanceDefaultItemSize(t *testing.T) {
	s, addr := start(t, Config{
		WriteBufMemLimit: 1 << 20,
		Storage:          storage.Config{MemoryLimit: 64 << 20},
	})
	small := bytes.Repeat([]byte("s"), 1000)
	large := bytes.Repeat([]byte("v"), 1048400) // near the 1 MiB item limit
	for k, v := range map[string][]byte{"a": small, "k": large} {
		if _, err := s.cache.Store(storage.ModeSet, []byte(k), 0, 0, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	c := dialSmall(t, addr)
	c.expect("get a k\r\n", "VALUE a 0 1000", string(small))
	if l := c.line(); l != "VALUE k 0 1048400" {
		t.Fatalf("got %q for the large value (write_buf_oom %d, allowance %d)", l, s.wbufs.oom.Load(), s.wbufs.over)
	}
	if got := readValue(t, c, "1048400"); !bytes.Equal(got, large) {
		t.Fatal("wrong value")
	}
	c.expect("", "END")
	if n := s.wbufs.oom.Load(); n != 0 {
		t.Errorf("write_buf_oom %d", n)
	}
}

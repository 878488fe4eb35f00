package server

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestMetaGetHitAllocs pins the zero-allocation mg hit path, with the
// value alone and with flags and TTL returned.
func TestMetaGetHitAllocs(t *testing.T) {
	s, _ := start(t, Config{})
	c := newConn(s, nil)
	if got := string(runOn(c, "ms key 5 F7\r\nvalue\r\n")); got != "HD\r\n" {
		t.Fatalf("ms: %q", got)
	}
	for req, want := range map[string]string{
		"mg key v\r\n":        "VA 5\r\nvalue\r\n",
		"mg key v f t\r\n":    "VA 5 f7 t-1\r\nvalue\r\n",
		"mg key s c k O1\r\n": "", // checked for allocations only
		"mg Zm9v b v q\r\n":   "", // a miss, quiet
		"mg key v f t T0\r\n": "VA 5 f7 t-1\r\nvalue\r\n",
	} {
		if got := string(runOn(c, req)); want != "" && got != want {
			t.Fatalf("%q: got %q, want %q", req, got, want)
		}
		if n := testing.AllocsPerRun(1000, func() { runOn(c, req) }); n != 0 {
			t.Errorf("%q allocates %.1f times, want 0", req, n)
		}
	}
}

func BenchmarkMetaGetHit(b *testing.B) {
	for _, req := range []string{"mg key v\r\n", "mg key v f t\r\n", "get key\r\n"} {
		b.Run(req[:len(req)-2], func(b *testing.B) {
			s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			c := newConn(s, nil)
			runOn(c, "ms key 100\r\n"+string(make([]byte, 100))+"\r\n")
			b.ReportAllocs()
			b.SetBytes(100)
			for b.Loop() {
				runOn(c, req)
			}
		})
	}
}

func BenchmarkMetaSet(b *testing.B) {
	s, err := New(Config{TCPAddrs: []string{"127.0.0.1:0"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newConn(s, nil)
	req := "ms key 100 T0 F1\r\n" + string(make([]byte, 100)) + "\r\n"
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		runOn(c, req)
	}
}

// TestMetaSplitInput feeds meta requests one byte at a time, and a value
// larger than the read buffer: the parser must resume.
func TestMetaSplitInput(t *testing.T) {
	_, addr := start(t, Config{})
	c := dial(t, "tcp", addr)
	for _, b := range []byte("ms k 5 c\r\nhello\r\nmg k v q\r\nmg x v q\r\nmn\r\n") {
		c.send(string(b))
	}
	for _, want := range []string{"HD c1", "VA 5", "hello", "MN"} {
		if got := c.line(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	big := strings.Repeat("v", 100<<10)
	c.expect("ms big "+strconv.Itoa(len(big))+" T0\r\n"+big+"\r\nmg big s\r\n", "HD", "HD s102400")
	c.expect("ms big 2000000 q\r\n", "SERVER_ERROR object too large for cache")
	c.send(strings.Repeat("x", 2000000) + "\r\n")
	c.expect("mg big\r\n", "EN")
	c.expect("ms bad 1 q\r\nxy\r\n", "CLIENT_ERROR bad data chunk", "ERROR")
}

// TestMetaStats checks the counters meta commands move, as memcached
// 1.6.18 counts them.
func TestMetaStats(t *testing.T) {
	_, addr := start(t, Config{})
	c := dial(t, "tcp", addr)
	counts := func() map[string]string {
		m := map[string]string{}
		for _, name := range []string{"cmd_get", "cmd_touch", "cmd_meta", "get_hits", "get_misses",
			"touch_hits", "delete_hits", "delete_misses", "incr_hits", "incr_misses", "cmd_set",
			"cas_badval", "cas_misses"} {
			m[name] = c.stat(name)
		}
		return m
	}
	c.expect("mg a v\r\n", "EN")        // cmd_get, get_misses
	c.expect("ms a 1\r\n1\r\n", "HD")   // cmd_set
	c.expect("mg a v\r\n", "VA 1", "1") // cmd_get, get_hits
	c.expect("mg a T10\r\n", "HD")      // cmd_touch, touch_hits
	c.expect("mg b T10\r\n", "EN")      // cmd_get, get_misses
	c.send("me a\r\n")
	if got := c.line(); !strings.HasPrefix(got, "ME a exp=") || !strings.HasSuffix(got, " cas=1 fetch=yes cls=1 size=61") {
		t.Errorf("me a: got %q", got)
	}
	c.expect("me b\r\n", "EN")           // cmd_meta twice
	c.expect("ma a\r\n", "HD")           // incr_hits
	c.expect("ma b\r\n", "NF")           // incr_misses
	c.expect("ma b N0\r\n", "HD")        // nothing
	c.expect("ms a 1 C1\r\n1\r\n", "EX") // cmd_set, cas_badval
	c.expect("ms z 1 C1\r\n1\r\n", "NF") // cmd_set, cas_misses
	c.expect("md a C1\r\n", "EX")        // delete_misses
	c.expect("md a I\r\n", "HD")         // nothing
	c.expect("md a\r\n", "HD")           // delete_hits
	c.expect("md a\r\n", "NF")           // delete_misses
	want := map[string]string{"cmd_get": "3", "cmd_touch": "1", "cmd_meta": "2", "get_hits": "1",
		"get_misses": "2", "touch_hits": "1", "delete_hits": "1", "delete_misses": "2",
		"incr_hits": "1", "incr_misses": "1", "cmd_set": "3", "cas_badval": "1", "cas_misses": "1"}
	if got := counts(); !reflect.DeepEqual(got, want) {
		t.Errorf("stats:\n got %v\nwant %v", got, want)
	}
}

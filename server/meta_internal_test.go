package server

import "testing"

// runOn feeds req to c as one batch and returns the replies.
func runOn(c *conn, req string) []byte {
	c.rbuf = append(c.rbuf[:0], req...)
	c.r, c.w = 0, len(c.rbuf)
	c.wbuf = c.wbuf[:0]
	c.process()
	return c.wbuf
}

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

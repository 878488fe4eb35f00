package server

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hotKeysReply reads "stats hotkeys" into its lines without "STAT ".
func hotKeysReply(c *client) []string {
	c.t.Helper()
	c.send("stats hotkeys\r\n")
	var lines []string
	for {
		l := c.line()
		if l == "END" {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "STAT "))
	}
}

func TestHotKeys(t *testing.T) {
	_, addr := start(t, Config{HotKeySample: 1, HotKeyHalfLife: time.Hour})
	c := dial(t, "tcp", addr)
	big := strings.Repeat("b", 5000)
	c.expect("set big 0 0 5000\r\n"+big+"\r\n", "STORED")
	c.expect("set small 0 0 1\r\nx\r\n", "STORED")
	// "small" is asked for most, "big" moves the most bytes.
	var req strings.Builder
	for i := range 200 {
		req.WriteString("get small small small\r\n")
		if i%4 == 0 {
			req.WriteString("get big\r\n")
		}
		fmt.Fprintf(&req, "get cold%d\r\n", i)
	}
	c.send(req.String())
	for ends := 0; ends < 200+50+200; {
		if c.line() == "END" {
			ends++
		}
	}
	got := hotKeysReply(c)
	if len(got) < 2+16+2 || got[0] != "hotkeys_sample 1" || got[1] != "hotkeys_half_life 3600" {
		t.Fatalf("stats hotkeys:\n%s", strings.Join(got, "\n"))
	}
	rank := func(prefix string) (string, float64) {
		for _, l := range got {
			if f := strings.Fields(l); len(f) == 3 && f[0] == prefix {
				r, err := strconv.ParseFloat(f[2], 64)
				if err != nil {
					t.Fatalf("rate in %q: %v", l, err)
				}
				return f[1], r
			}
		}
		t.Fatalf("no %s in:\n%s", prefix, strings.Join(got, "\n"))
		return "", 0
	}
	if k, _ := rank("requests:1"); k != "small" {
		t.Errorf("requests:1 is %s, want small", k)
	}
	if k, _ := rank("requests:2"); k != "big" {
		t.Errorf("requests:2 is %s, want big", k)
	}
	k, rate := rank("bytes:1")
	if k != "big" {
		t.Errorf("bytes:1 is %s, want big", k)
	}
	// 51 accesses of 5000 bytes, an hour's half-life: about
	// 255000 * ln2 / 3600 = 49 bytes/s.
	if rate < 45 || rate > 55 {
		t.Errorf("bytes:1 rate %.1f, want about 49", rate)
	}

	c.expect("stats reset\r\n", "RESET")
	if got := hotKeysReply(c); len(got) != 2 {
		t.Fatalf("after stats reset:\n%s", strings.Join(got, "\n"))
	}
}

func TestHotKeysSampling(t *testing.T) {
	s, _ := start(t, Config{HotKeySample: 8})
	c := newConn(s, nil)
	c.hotTick = 0
	for range 80 {
		c.noteKey([]byte("k"), 10)
	}
	top := s.hot.requests.Top(1, time.Now())
	if len(top) != 1 || top[0].Weight < 9.99 || top[0].Weight > 10.01 {
		t.Fatalf("80 requests sampled 1 in 8 weigh %v, want 10", top)
	}
}

func TestHotKeysDisabled(t *testing.T) {
	_, addr := start(t, Config{HotKeySample: -1})
	c := dial(t, "tcp", addr)
	c.expect("get a\r\n", "END")
	if got := hotKeysReply(c); len(got) != 1 || got[0] != "hotkeys disabled" {
		t.Fatalf("stats hotkeys with tracking off: %q", got)
	}
}

// BenchmarkGetBatchHotKeys serves batches of 64 pipelined gets of 1,000
// keys with hot-key tracking at the default sampling and off: the
// difference is the tracker's cost per request, without network costs.
func BenchmarkGetBatchHotKeys(b *testing.B) {
	for _, tc := range []struct {
		name   string
		sample int
	}{{"off", -1}, {"default", 0}, {"every", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := New(Config{HotKeySample: tc.sample, TCPAddrs: []string{"127.0.0.1:0"}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchGetBatch(b, newConn(s, nil))
		})
	}
}

// TestHotKeysAllocateNothing pins the sampled get path at zero allocations
// even when every request is sampled and new keys keep taking counters.
func TestHotKeysAllocateNothing(t *testing.T) {
	s, _ := start(t, Config{HotKeySample: 1})
	c := newConn(s, nil)
	reqs := make([]string, 500)
	for i := range reqs {
		reqs[i] = fmt.Sprintf("get key%d\r\n", i)
		runOn(c, fmt.Sprintf("set key%d 0 0 1\r\nv\r\n", i))
	}
	i := 0
	if n := testing.AllocsPerRun(2000, func() { runOn(c, reqs[i%len(reqs)]); i++ }); n != 0 {
		t.Fatalf("sampled gets allocate %.2f times per request", n)
	}
}

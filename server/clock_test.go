package server_test

import (
	"maps"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// stepClock is a storage.Clock whose wall clock can be stepped apart
// from its monotonic clock.
type stepClock struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *stepClock) Monotonic() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// advance lets d pass on both clocks.
func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.wall, c.mono = c.wall.Add(d), c.mono+d
	c.mu.Unlock()
}

// stepWall steps the wall clock alone, as NTP or date(1) does.
func (c *stepClock) stepWall(d time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mu.Unlock()
}

// TestWallClockSteps steps the server's wall clock an hour forward and
// two back while its monotonic clock runs on, as NTP or an operator may
// do: no item's remaining TTL changes (mg t, me exp), none expires early,
// the "time" stat does not jump, and no age wraps (stats items ages, me
// la). memcached's clock is monotonic in the same way.
func TestWallClockSteps(t *testing.T) {
	const day = 24 * 3600
	clk := &stepClock{wall: time.Unix(1_700_000_000, 0)}
	start := clk.Now().Unix()
	addr := testutil.StartCorvid(t, server.Config{Storage: storage.Config{Clock: clk}})
	c := testutil.Dial(t, addr)
	exptimes := map[string]int64{"short": 10, "long": 2 * 3600, "absolute": start + 40*day, "never": 0}
	for k, exp := range exptimes {
		c.Send([]byte("set " + k + " 0 " + strconv.FormatInt(exp, 10) + " 1\r\nv\r\n"))
		if got := c.ReadReply(testutil.LineReply); string(got) != "STORED\r\n" {
			t.Fatalf("set %s: %q", k, got)
		}
	}
	// state returns what the server says of every item's remaining time.
	state := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for k := range exptimes {
			c.Send([]byte("mg " + k + " t\r\n"))
			out["mg "+k] = string(c.ReadReply(testutil.LineReply))
			c.Send([]byte("me " + k + "\r\n"))
			me := string(c.ReadReply(testutil.LineReply))
			// exp= is the TTL; la= is checked below.
			f := strings.Fields(me)
			if len(f) < 4 || !strings.HasPrefix(f[2], "exp=") || !strings.HasPrefix(f[3], "la=") {
				t.Fatalf("me %s: %q", k, me)
			}
			out["me "+k] = f[2]
			if la, err := strconv.Atoi(strings.TrimPrefix(f[3], "la=")); err != nil || la < 0 || la > 10 {
				t.Fatalf("me %s: %q: last access not within 10 s", k, me)
			}
		}
		return out
	}
	clk.advance(3 * time.Second)
	want := state()
	if want["mg short"] != "HD t7\r\n" || want["mg never"] != "HD t-1\r\n" ||
		want["mg absolute"] != "HD t"+strconv.Itoa(40*day-3)+"\r\n" {
		t.Fatalf("before the steps: %v", want)
	}
	now := readStats(t, c, "stats\r\n")["time"]
	for _, step := range []time.Duration{time.Hour, -2 * time.Hour, time.Hour} {
		clk.stepWall(step)
		if got := state(); !maps.Equal(got, want) {
			t.Fatalf("after a wall step of %v:\n%v\nwant\n%v", step, got, want)
		}
		if got := readStats(t, c, "stats\r\n")["time"]; got != now {
			t.Fatalf("after a wall step of %v: time %s, want %s", step, got, now)
		}
		for k, v := range readStats(t, c, "stats items\r\n") {
			if !strings.HasSuffix(k, ":age") && !strings.HasSuffix(k, ":age_hot") && !strings.HasSuffix(k, ":age_warm") {
				continue
			}
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 10 {
				t.Fatalf("after a wall step of %v: %s %s", step, k, v)
			}
		}
	}
	// Time itself still counts: "short" lives its 10 seconds, no more.
	clk.advance(6 * time.Second)
	c.Send([]byte("mg short t\r\n"))
	if got := string(c.ReadReply(testutil.LineReply)); got != "HD t1\r\n" {
		t.Fatalf("short after 9 s: %q", got)
	}
	clk.advance(time.Second)
	c.Send([]byte("mg short t\r\n"))
	if got := string(c.ReadReply(testutil.LineReply)); got != "EN\r\n" {
		t.Fatalf("short after 10 s: %q", got)
	}
}

// TestLoopIdleTimeoutOnMonotonicClock checks that an event loop measures
// the idle timeout on the cache's monotonic clock, as memcached measures it
// on current_time: stepping the wall clock two hours forward kicks no
// connection idle for less than the hour's timeout, and the connection is
// kicked once an hour has passed on the monotonic clock.
func TestLoopIdleTimeoutOnMonotonicClock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("event loops are Linux only")
	}
	clk := &stepClock{wall: time.Unix(1_700_000_000, 0)}
	// One loop: every connection's arrival wakes the loop that holds
	// the idle one, and an idle sweep follows.
	addr := testutil.StartCorvid(t, server.Config{
		EventLoops: 1, IdleTimeout: time.Hour, Storage: storage.Config{Clock: clk},
	})
	idle := testutil.Dial(t, addr)
	idle.Send([]byte("version\r\n"))
	idle.ReadReply(testutil.LineReply)
	// sweep has the loop wake up and sweep its idle connections, then
	// waits for its answer.
	sweep := func() {
		t.Helper()
		c := testutil.Dial(t, addr)
		c.Send([]byte("version\r\n"))
		c.ReadReply(testutil.LineReply)
		c.Close()
	}
	clk.stepWall(2 * time.Hour)
	clk.advance(59 * time.Minute)
	sweep()
	idle.Send([]byte("version\r\n"))
	if _, err := idle.TryReadReply(testutil.LineReply); err != nil {
		t.Fatalf("kicked after a wall step and 59 minutes idle: %v", err)
	}
	clk.advance(61 * time.Minute)
	sweep()
	if err := idle.TrySend([]byte("version\r\n")); err == nil {
		if reply, err := idle.TryReadReply(testutil.LineReply); err == nil {
			t.Fatalf("not kicked after an hour idle: %q", reply)
		}
	}
}

package server_test

import (
	"bufio"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// watchConn starts watching addr with the given command and returns a
// reader of the lines that follow the "OK".
func watchConn(t *testing.T, addr, cmd string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, replyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte(cmd + "\r\n"))
	r := bufio.NewReader(nc)
	if line, err := r.ReadString('\n'); err != nil || line != "OK\r\n" {
		t.Fatalf("%s: %q %v", cmd, line, err)
	}
	return nc, r
}

// watchMaskRE masks what differs between two servers' log lines: time,
// log entry id and client descriptor.
var watchMaskRE = regexp.MustCompile(`^ts=\d+\.\d+ gid=\d+ |cfd=-?\d+ `)

// tooLargeClassRE masks the class of a store refused as too large:
// memcached passes none to its logger, which prints what the call left
// behind.
var tooLargeClassRE = regexp.MustCompile(`(status=too_large .*) clsid=\d+`)

// watchTranscript are requests whose log lines are compared.
var watchTranscript = []string{
	"get a\r\n", "set a 0 0 1\r\nx\r\n", "get a zz\r\n", "set k 3 100 2\r\nhi\r\n",
	"set big%% 0 0 1\r\nx\r\n", "gets k\r\n", "touch k 10\r\n", "gat 5 k\r\n", "delete k\r\n",
	"incr n 1\r\n", "append a 0 0 1\r\ny\r\n", "add a 0 0 1\r\nx\r\n", "replace nope 0 0 1\r\nx\r\n",
	"cas a 0 0 1 999\r\nz\r\n", "set n 0 0 1\r\n5\r\n", "incr n 2\r\n", "prepend nope 0 0 1\r\nx\r\n",
}

// TestWatchMatchesMemcached watches fetchers and mutations on corvid and
// memcached while the same requests run, and compares the lines.
func TestWatchMatchesMemcached(t *testing.T) {
	compareWatch(t, watchTranscript)
}

// TestWatchMetaMatchesMemcached compares the lines of meta commands and of
// values too large for the cache.
func TestWatchMetaMatchesMemcached(t *testing.T) {
	big := strings.Repeat("v", 2000000)
	compareWatch(t, []string{
		"ms a 1\r\nx\r\n", "ms a 1 MA\r\ny\r\n", "ms a 1 ME\r\nz\r\n", "ms b 1 MR\r\nz\r\n",
		"ms a 1 C999 T10\r\nz\r\n", "ms b 1 MP\r\nz\r\n",
		"ms a 2000000 T0\r\n" + big + "\r\n", "mg a v\r\n",
		"ms c 2 T0\r\nhi\r\n", "mg c v t f\r\n", "mg c T30\r\n", "mg nope v\r\n", "mg viv N30 v\r\n",
		"md c\r\n", "md c\r\n", "ma n\r\n", "ma n N0 J7\r\n", "ma n MD D2\r\n", "ma m N30 v\r\n",
		"set t 0 0 1\r\nx\r\n", "set t 0 0 2000000\r\n" + big + "\r\n", "get t\r\n",
		"add u 0 0 2000000\r\n" + big + "\r\n",
	})
}

// compareWatch runs transcript against memcached and corvid while a
// connection watches fetchers and mutations, and compares the lines.
func compareWatch(t *testing.T, transcript []string) {
	t.Helper()
	mc := testutil.StartMemcached(t)
	cv := testutil.StartCorvid(t, server.Config{})
	const end = "watch-transcript-end"
	run := func(addr string) []string {
		_, r := watchConn(t, addr, "watch fetchers mutations")
		a := dialAdmin(t, addr)
		for _, req := range transcript {
			a.do(req)
		}
		a.do("version\r\n") // not logged
		a.do("get " + end + "\r\n")
		var lines []string
		for range 100 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: after %q: %v", addr, lines, err)
			}
			if strings.Contains(line, " key="+end+" ") {
				return lines
			}
			line = watchMaskRE.ReplaceAllString(line, "")
			lines = append(lines, tooLargeClassRE.ReplaceAllString(line, "$1"))
		}
		t.Fatalf("%s: no line for the last get after %q", addr, lines)
		return nil
	}
	want, got := run(mc), run(cv)
	if len(want) == 0 {
		t.Fatal("memcached logged nothing")
	}
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if g != w {
			t.Errorf("line %d: corvid %q, memcached %q", i, g, w)
		}
	}
}

// TestWatchCommandsMatchMemcached compares the replies to watch commands
// that do not start a watch.
func TestWatchCommandsMatchMemcached(t *testing.T) {
	for _, args := range [][]string{nil, {"-W"}} {
		mc := testutil.StartMemcached(t, args...)
		cv := testutil.StartCorvid(t, server.Config{DisableWatch: args != nil})
		for _, req := range []string{"watch foo\r\n", "watch fetchers bar\r\n", "watch deletions\r\n"} {
			want, got := dialAdmin(t, mc).do(req), dialAdmin(t, cv).do(req)
			if got != want {
				t.Errorf("%v %q: corvid %q, memcached %q", args, req, got, want)
			}
		}
		// A watch behind pipelined replies is refused.
		const req = "version\r\nwatch\r\n"
		m, c := dialAdmin(t, mc), dialAdmin(t, cv)
		want, got := m.do(req)+m.read(), c.do(req)+c.read()
		if got != want {
			t.Errorf("%v %q: corvid %q, memcached %q", args, req, got, want)
		}
	}
}

// TestWatchEvictions fills a small cache and expects eviction lines.
func TestWatchEvictions(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{Storage: storage.Config{MemoryLimit: 2 << 20}})
	_, r := watchConn(t, addr, "watch evictions")
	a := dialAdmin(t, addr)
	val := strings.Repeat("v", 1000)
	for i := 0; i < 3000; i++ {
		a.do("set key000" + strconv.Itoa(i) + " 0 0 1000\r\n" + val + "\r\n")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^ts=\d+\.\d+ gid=\d+ type=eviction key=key000\d+ fetch=no ttl=-1 la=\d+ clsid=\d+ size=1000\n$`)
	if !re.MatchString(line) {
		t.Fatalf("eviction line %q", line)
	}
}

// TestWatchSkipsWhenBehind watches with a small buffer and does not read:
// once the socket and the buffer are full, lines are skipped, and the
// watcher is told how many before the next line it gets.
func TestWatchSkipsWhenBehind(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{WatcherLogBufSize: 4 << 10})
	nc, r := watchConn(t, addr, "watch fetchers")
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	a := dialAdmin(t, addr)
	keys := strings.TrimSpace(strings.Repeat("k ", 200))
	for i := 0; ; i++ {
		a.do("get " + keys + "\r\n")
		st := a.do("stats\r\n")
		if strings.Contains(st, "STAT log_watcher_skipped 0\r\n") {
			if i > 2000 {
				t.Fatal("nothing skipped")
			}
			continue
		}
		break
	}
	// Drain what was sent, then one more event brings the count. The
	// drain gets a deadline of its own, long enough for a machine busy
	// with other tests under the race detector.
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	done := make(chan bool)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- false
				return
			}
			if strings.HasPrefix(line, "skipped=") {
				done <- regexp.MustCompile(`^skipped=[1-9]\d*\n$`).MatchString(line)
				return
			}
		}
	}()
	for {
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("no well-formed skipped= line")
			}
			if st := a.do("stats\r\n"); !strings.Contains(st, "STAT log_watchers 1\r\n") {
				t.Errorf("log_watchers not 1")
			}
			return
		case <-time.After(10 * time.Millisecond):
			a.do("get k\r\n")
		}
	}
}

// TestWatchSkippedMatchesMemcached lets a watcher with a 1 KB buffer fall
// behind a burst of gets, then read: on corvid as on memcached, the first
// line it gets after the burst is preceded by "skipped=N", and every event
// is either delivered or counted in a skipped line (or, on memcached, in
// log_worker_dropped, its per-thread buffer's losses).
func TestWatchSkippedMatchesMemcached(t *testing.T) {
	t.Run("corvid", func(t *testing.T) {
		watchSkipped(t, testutil.StartCorvid(t, server.Config{WatcherLogBufSize: 1 << 10}))
	})
	t.Run("memcached", func(t *testing.T) {
		watchSkipped(t, testutil.StartMemcached(t, "-o", "watcher_logbuf_size=1"))
	})
}

func watchSkipped(t *testing.T, addr string) {
	nc, r := watchConn(t, addr, "watch fetchers")
	nc.SetDeadline(time.Now().Add(time.Minute))
	a := dialAdmin(t, addr)
	// Enough lines (some 13 MB) to fill the sockets' buffers too, which
	// take up to 4 MB, even when memcached's logger, asleep when the
	// burst begins, drops many from its per-thread buffer.
	const burst, batch = 150000, 1000
	gets := strings.Repeat("get burst\r\n", batch)
	for range burst / batch {
		a.nc.SetDeadline(time.Now().Add(replyTimeout))
		if _, err := a.nc.Write([]byte(gets)); err != nil {
			t.Fatal(err)
		}
		for range batch {
			if reply := a.read(); reply != "END\r\n" {
				t.Fatalf("get: %q", reply)
			}
		}
	}
	// Now read. The watcher's lines go to a channel until it is closed.
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	t.Cleanup(func() {
		nc.Close()
		for range lines {
		}
	})
	events := burst
	var delivered, skipped int
	var last string
	skipRE := regexp.MustCompile(`^skipped=[1-9]\d*\n$`)
	// wait reads lines until one for key arrives, sending "get key"
	// each 10 ms while poke is set.
	wait := func(key string, poke bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		send := func() {
			a.do("get " + key + "\r\n")
			events++
		}
		send()
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatal("the watcher's connection closed")
				}
				if v, ok := strings.CutPrefix(line, "skipped="); ok {
					if !skipRE.MatchString(line) || strings.HasPrefix(last, "skipped=") {
						t.Fatalf("skipped line %q after %q", line, last)
					}
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					skipped += n
				} else {
					delivered++
				}
				last = line
				if strings.Contains(line, " key="+key+" ") {
					return
				}
			case <-tick.C:
				if time.Now().After(deadline) {
					t.Fatalf("no line for %s within 10s", key)
				}
				if poke {
					send()
				}
			}
		}
	}
	wait("poke", true)
	if skipped == 0 {
		t.Fatalf("no line was skipped: %d lines of %d events delivered", delivered, events)
	}
	wait("end", false)
	// memcached counts its own drops once its logger has moved on.
	var dropped int64
	for deadline := time.Now().Add(2 * time.Second); ; {
		dropped = replyStat(a.do("stats\r\n"), "log_worker_dropped")
		if int64(delivered+skipped)+dropped == int64(events) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if int64(delivered+skipped)+dropped != int64(events) {
		t.Errorf("%d events: %d lines delivered, %d skipped, %d dropped", events, delivered, skipped, dropped)
	}
	t.Logf("%d events: %d lines delivered, %d skipped, %d dropped", events, delivered, skipped, dropped)
}

// TestWatcherThatNeverReads watches with a client that never reads while
// another client makes 100,000 requests: they complete (a watcher only
// ever costs its clients an append to its buffer), the lines that do not
// fit are skipped, and the server's heap grows by no more than the
// watcher's buffer, whatever the number of lines.
func TestWatcherThatNeverReads(t *testing.T) {
	addr := testutil.StartCorvid(t, server.Config{})
	nc, _ := watchConn(t, addr, "watch fetchers mutations")
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	a := dialAdmin(t, addr)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const requests, batch = 100000, 1000
	gets := strings.Repeat("get a-key-that-is-not-there\r\n", batch)
	r := bufio.NewReader(a.nc)
	start := time.Now()
	for range requests / batch {
		a.nc.SetDeadline(time.Now().Add(replyTimeout))
		if _, err := a.nc.Write([]byte(gets)); err != nil {
			t.Fatal(err)
		}
		for range batch {
			if line, err := r.ReadString('\n'); err != nil || line != "END\r\n" {
				t.Fatalf("get: %q %v", line, err)
			}
		}
	}
	elapsed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	a.r = r
	st := a.do("stats\r\n")
	if replyStat(st, "log_watcher_skipped") <= 0 || replyStat(st, "log_watchers") != 1 {
		t.Errorf("log_watcher_skipped %d, log_watchers %d", replyStat(st, "log_watcher_skipped"), replyStat(st, "log_watchers"))
	}
	// Some 4 MB of lines were logged; the buffer holds 256 KB.
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 2<<20 {
		t.Errorf("the heap grew by %d KB", grow>>10)
	}
	t.Logf("%d gets in %v, %d lines sent, %d skipped", requests, elapsed, replyStat(st, "log_watcher_sent"), replyStat(st, "log_watcher_skipped"))
}

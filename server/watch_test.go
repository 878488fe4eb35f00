package server_test

import (
	"bufio"
	"net"
	"regexp"
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
	// Drain what was sent, then one more event brings the count.
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

package server_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// startServer starts corvid with cfg on a loopback port and returns the
// server and its address; it is stopped when the test ends.
func startServer(t *testing.T, cfg server.Config) (*server.Server, string) {
	t.Helper()
	cfg.TCPAddrs = []string{"127.0.0.1:0"}
	srv := testutil.ServeCorvid(t, cfg)
	return srv, srv.Addrs()[0].String()
}

// klogLines waits until path holds n lines and returns them.
func klogLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	testutil.WaitFor(t, func() bool {
		b, _ := os.ReadFile(path)
		lines = strings.SplitAfter(string(b), "\n")
		lines = lines[:len(lines)-1]
		return len(lines) >= n
	})
	if len(lines) != n {
		t.Fatalf("%d lines in %s, want %d: %q", len(lines), path, n, lines)
	}
	return lines
}

// klogLineRE is twemcache's line: address, local time, command, status,
// reply length.
var klogLineRE = regexp.MustCompile(`^127\.0\.0\.1:\d+ - \[\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d [-+]\d{4}\] "(.*)" (\d+) (\d+)\n$`)

func TestKlogFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "klog")
	_, addr := startServer(t, server.Config{KlogFile: path})
	c := testutil.Dial(t, addr)
	for _, req := range []string{
		"set foo 0 0 3\r\nbar\r\n", "get foo\r\n", "get foo nope\r\n", "gets foo\r\n",
		"incr num 1\r\n", "set num 0 0 1\r\n1\r\n", "incr num 1\r\n", "incr foo 1\r\n",
		"add foo 0 0 1\r\nx\r\n", "cas foo 0 0 1 999\r\nx\r\n", "touch foo 10\r\n",
		"delete foo\r\n", "delete foo\r\n", "set q 0 0 1 noreply\r\nx\r\n", "version\r\n",
	} {
		c.Send([]byte(req))
		if !strings.Contains(req, "noreply") {
			c.ReadReply(testutil.AnyReply)
		}
	}
	want := []string{
		`"set foo 0 0 3" 1 6`, `"get foo" 0 20`, `"get foo" 0 20`, `"get nope" 1 0`,
		`"gets foo" 0 22`, `"incr num 1" 3 9`, `"set num 0 0 1" 1 6`, `"incr num 1" 0 1`,
		`"incr foo 1" 1 60`, `"add foo 0 0 1" 0 10`, `"cas foo 0 0 1 999" 2 6`,
		`"touch foo 10" 1 7`, `"delete foo" 1 7`, `"delete foo" 3 9`, `"set q 0 0 1 noreply" 1 0`,
	}
	lines := klogLines(t, path, len(want))
	for i, line := range lines {
		m := klogLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d: %q is not a klog line", i, line)
			continue
		}
		if got := `"` + m[1] + `" ` + m[2] + " " + m[3]; got != want[i] {
			t.Errorf("line %d: %s, want %s", i, got, want[i])
		}
	}
}

func TestKlogSampleAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "klog")
	srv, addr := startServer(t, server.Config{KlogFile: path, KlogSample: 3})
	c := testutil.Dial(t, addr)
	get := func(n int) {
		for range n {
			c.Send([]byte("get k\r\n"))
			c.ReadReply(testutil.ValuesReply)
		}
	}
	get(9)
	klogLines(t, path, 3)
	// Rotation: the file is renamed, the server told to reopen; new
	// lines go to a new file under the old name.
	rotated := filepath.Join(dir, "klog.1")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	get(3)
	if err := srv.ReopenLogs(); err != nil {
		t.Fatal(err)
	}
	get(6)
	klogLines(t, rotated, 4) // the line buffered before the reopen
	klogLines(t, path, 2)
	c.Send([]byte("stats\r\n"))
	st := string(c.ReadReply(testutil.StatsReply))
	for _, want := range []string{"STAT klog_logged 6\r\n", "STAT klog_skipped 12\r\n", "STAT klog_discarded 0\r\n"} {
		if !strings.Contains(st, want) {
			t.Errorf("stats lack %q", strings.TrimSpace(want))
		}
	}
	// Off by default: no counters, no file.
	_, addr2 := startServer(t, server.Config{})
	c2 := testutil.Dial(t, addr2)
	c2.Send([]byte("stats\r\n"))
	if st := string(c2.ReadReply(testutil.StatsReply)); strings.Contains(st, "klog_") {
		t.Error("klog stats without a command log")
	}
}

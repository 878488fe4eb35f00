//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// statServers runs fn against corvid in-process and real memcached
// (skipped when it is not installed).
func statServers(t *testing.T, fn func(t *testing.T, addr string)) {
	t.Run("corvid", func(t *testing.T) { fn(t, testutil.StartCorvid(t, server.Config{})) })
	t.Run("memcached", func(t *testing.T) { fn(t, testutil.StartMemcached(t)) })
}

// sendText sends req on a fresh connection and reads until the reply ends
// with end.
func sendText(t *testing.T, addr, req, end string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, []byte(end)) {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("%q: %v after %q", req, err, got)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

func fillStat(t *testing.T, addr string) {
	t.Helper()
	req := "set plain 5 0 3\r\nabc\r\nset ttl 9 1000 2\r\nhi\r\nset pct%41 0 0 1\r\nz\r\n" +
		"set big 3 0 3000\r\n" + strings.Repeat("q", 3000) + "\r\n"
	if got := sendText(t, addr, req, "STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n"); strings.Count(got, "STORED") != 4 {
		t.Fatalf("sets: %q", got)
	}
}

// memcachedTool returns a command running memcached-tool, or skips.
func memcachedTool(t *testing.T) func(args ...string) string {
	t.Helper()
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("perl is not installed")
	}
	script := os.Getenv("MEMCACHED_TOOL")
	if script == "" {
		script = "/usr/share/memcached/scripts/memcached-tool"
	}
	if _, err := os.Stat(script); err != nil {
		t.Skip("memcached-tool is not installed (set MEMCACHED_TOOL)")
	}
	return func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, perl, append([]string{script}, args...)...).Output()
		if err != nil {
			t.Fatalf("memcached-tool %v: %v", args, err)
		}
		// memcached-tool keeps the \r of the server's lines in its
		// tables; corvid stat lines the values up the same way without.
		return strings.ReplaceAll(string(out), "\r\n", "\n")
	}
}

// sameOutput polls corvid stat and memcached-tool until they agree and
// corvid's output, normalized, is complete (a second may tick between
// them, changing an age; memcached's crawler can miss items that its LRU
// maintainer is moving after a burst of gets).
func sameOutput(t *testing.T, addr string, tool func(...string) string, mode string, norm func(string) string, complete func(string) bool) {
	t.Helper()
	var ours, theirs string
	deadline := time.Now().Add(10 * time.Second)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		out, err := runCorvid(t, "stat", "-s", addr, mode)
		if err != nil {
			t.Fatalf("stat %s: %v", mode, err)
		}
		ours, theirs = norm(strings.ReplaceAll(out, "\r\n", "\n")), norm(tool(addr, mode))
		if ours == theirs && complete(ours) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
	}
	t.Errorf("stat %s:\n%s\nmemcached-tool %s:\n%s", mode, ours, mode, theirs)
}

func TestStatMatchesMemcachedTool(t *testing.T) {
	statServers(t, func(t *testing.T, addr string) {
		tool := memcachedTool(t)
		fillStat(t, addr)
		same := func(s string) string { return s }
		lines := func(n int) func(string) bool {
			return func(s string) bool { return strings.Count(s, "\n") == n }
		}
		sameOutput(t, addr, tool, "display", same, func(s string) bool { return strings.Contains(s, "\n  1 ") })
		sameOutput(t, addr, tool, "settings", same, func(s string) bool { return strings.Contains(s, " item_size_max ") })
		sameOutput(t, addr, tool, "sizes", same, lines(2))
		sameOutput(t, addr, tool, "keys", same, lines(4))
		// stats: counters move between the runs; compare the layout and
		// the lines of stats that stay put.
		stable := func(s string) string {
			var keep []string
			for i, line := range strings.Split(s, "\n") {
				f := strings.Fields(line)
				if i == 0 || len(f) == 2 && (f[0] == "pid" || f[0] == "version" || f[0] == "curr_items" || f[0] == "limit_maxbytes" || f[0] == "threads" || f[0] == "total_items") {
					keep = append(keep, line)
				}
			}
			return strings.Join(keep, "\n")
		}
		sameOutput(t, addr, tool, "stats", stable, func(s string) bool { return strings.Contains(s, " curr_items ") })
		// dump: memcached-tool prints the items in Perl's hash order.
		records := func(s string) string {
			lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
			var recs []string
			for i := 0; i+1 < len(lines); i += 2 {
				recs = append(recs, lines[i]+"|"+lines[i+1])
			}
			sort.Strings(recs)
			return strings.Join(recs, "\n")
		}
		sameOutput(t, addr, tool, "dump", records, func(s string) bool {
			return strings.Count(s, "\n") == 3 && strings.Contains(s, "plain 5 0 3|abc") && strings.Contains(s, "pct%41 0 0 1|z")
		})
	})
}

func TestStatSeveralServersAndJSON(t *testing.T) {
	a := testutil.StartCorvid(t, server.Config{})
	b := testutil.StartMemcached(t)
	fillStat(t, a)
	out, err := runCorvid(t, "stat", "-s", a+","+b, "stats")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if f := strings.Fields(lines[0]); len(f) != 3 || f[0] != "Field" || f[1] != a || f[2] != b {
		t.Errorf("header %q", lines[0])
	}
	found := false
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "curr_items" {
			found = true
			if f[1] != "4" || f[2] != "0" {
				t.Errorf("curr_items line %q, want 4 and 0", l)
			}
		}
	}
	if !found {
		t.Errorf("no curr_items line in\n%s", out)
	}

	out, err = runCorvid(t, "stat", "-s", a, "-s", b, "display", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var disp []struct {
		Server string
		Slabs  []struct {
			Class int
			Count int64
		}
	}
	if err := json.Unmarshal([]byte(out), &disp); err != nil || len(disp) != 2 || disp[0].Server != a || disp[1].Server != b {
		t.Fatalf("display --json: %v\n%s", err, out)
	}
	var n int64
	for _, s := range disp[0].Slabs {
		n += s.Count
	}
	if n != 4 || len(disp[1].Slabs) != 0 {
		t.Errorf("display --json: %+v", disp)
	}

	out, err = runCorvid(t, "stat", "-s", a, "keys", "--json")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var k struct {
			Server, Key string
			Exp         int64
		}
		if err := json.Unmarshal([]byte(l), &k); err != nil || k.Server != a {
			t.Fatalf("keys --json line %q: %v", l, err)
		}
		keys[k.Key] = k.Exp
	}
	if len(keys) != 4 || keys["plain"] != -1 || keys["pct%41"] != -1 || keys["ttl"] < time.Now().Unix()+900 {
		t.Errorf("keys --json: %v", keys)
	}
	out, err = runCorvid(t, "stat", "-s", a, "keys", "2")
	if err != nil || strings.Count(out, "key=") != 2 {
		t.Errorf("keys 2: %v\n%s", err, out)
	}
}

// badTargets are addresses where no memcached answers, with words the
// error must hold.
func badTargets(t *testing.T) map[string][2]string {
	refused := testutil.RefusedAddr(t)
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	silent := testutil.FakeServer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	webAddr := strings.TrimPrefix(web.URL, "http://")
	return map[string][2]string{
		"refused":   {refused, refused + ": cannot connect: connection refused"},
		"http":      {webAddr, webAddr + `: not a memcached server: `},
		"silent":    {silent, silent + ": no reply within 1s"},
		"malformed": {"127.0.0.1:http", `"127.0.0.1:http": malformed address`},
		"bad port":  {"127.0.0.1:70000", `"127.0.0.1:70000": malformed address`},
	}
}

// TestToolsBadInput runs the built binary as a user would: every tool,
// pointed at something that is not memcached, prints one line naming it
// and exits 1 within its timeout.
func TestToolsBadInput(t *testing.T) {
	bin := corvidBinary(t)
	good := testutil.StartCorvid(t, server.Config{})
	dir := t.TempDir()
	dumpFile := filepath.Join(dir, "empty.dump")
	if _, err := runCorvid(t, "dump", "-s", good, "-o", dumpFile); err != nil {
		t.Fatal(err)
	}
	for name, target := range badTargets(t) {
		addr, want := target[0], target[1]
		for _, args := range [][]string{
			{"stat", "-s", addr},
			{"stat", "-s", good + "," + addr, "stats"},
			{"stat", "-s", addr, "keys"},
			{"dump", "-s", addr, "-o", filepath.Join(dir, "x.dump")},
			{"load", "-i", dumpFile, "--to", addr},
			{"load", "--from", addr, "--to", good},
			{"load", "--from", good, "--to", addr},
		} {
			t.Run(name+"/"+strings.Join(args[:1], ""), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append(args, "--timeout", "1s")...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				start := time.Now()
				err := cmd.Run()
				took := time.Since(start)
				code := -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
				last := lines[len(lines)-1]
				if code != 1 || !strings.Contains(last, want) || strings.Contains(stderr.String(), "goroutine") {
					t.Errorf("%v: exit %d (%v), stderr:\n%s\nwant exit 1 and a line with %q", args, code, err, stderr.String(), want)
				}
				if len(lines) > 2 || (len(lines) == 2 && !strings.HasPrefix(lines[0], "loaded ")) {
					t.Errorf("%v: more than one line of error:\n%s", args, stderr.String())
				}
				if took > 20*time.Second {
					t.Errorf("%v took %v with --timeout 1s", args, took)
				}
			})
		}
	}
}

func TestStatTables(t *testing.T) {
	statServers(t, func(t *testing.T, addr string) {
		fillStat(t, addr)
		for mode, want := range map[string][]string{
			"items": {"items:1:number", "items:1:age"},
			"slabs": {"active_slabs", "1:chunk_size", "total_malloced"},
			"conns": {":state", ":addr"},
		} {
			out, err := runCorvid(t, "stat", "-s", addr, mode)
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			lines := strings.Split(out, "\n")
			if head := "#" + addr; !strings.HasPrefix(lines[0], head) || strings.Fields(lines[0])[1] != "Field" || strings.Fields(lines[0])[2] != "Value" {
				t.Errorf("%s: header %q", mode, lines[0])
			}
			for _, w := range want {
				if !strings.Contains(out, w+" ") {
					t.Errorf("%s: no %q in\n%s", mode, w, out)
				}
			}
			for _, l := range lines[1 : len(lines)-1] {
				if len(l) < 36 || strings.TrimSpace(l[:24]) == "" {
					t.Errorf("%s: line %q is not name (24 wide) and value (11 wide)", mode, l)
				}
			}
		}
		for _, args := range [][]string{
			{"stat", "-s", addr, "nonsense"},
			{"stat", "-s", addr, "display", "3"},
			{"stat", "-s", addr, "keys", "0"},
			{"stat", "-s", addr, "keys", "x"},
		} {
			if _, err := runCorvid(t, args...); err == nil {
				t.Errorf("%v accepted", args)
			}
		}
	})
}

// metadumpServer answers "lru_crawler metadump" with a key line every
// interval (forever, until the test ends) and every mg with EN.
func metadumpServer(t *testing.T, interval time.Duration) string {
	return testutil.FakeMetadump(t, interval, 0, func(string) string { return "EN\r\n" })
}

// TestToolsSlowMetadump runs the walking tools against servers whose
// metadump never ends: one that trickles a key line just within the
// timeout is cut off by the timeout's rule (each 100 keys within it),
// one that sends keys steadily by --deadline; either way the tool prints
// one line naming the server and exits 1.
func TestToolsSlowMetadump(t *testing.T) {
	bin := corvidBinary(t)
	good := testutil.StartCorvid(t, server.Config{})
	trickle := metadumpServer(t, 800*time.Millisecond)
	steady := metadumpServer(t, 2*time.Millisecond)
	dir := t.TempDir()
	for _, c := range []struct {
		name, addr string
		flags      []string
		want       string
	}{
		{"trickle", trickle, nil, trickle + ": lru_crawler metadump sent fewer than 100 keys in 1s"},
		{"steady", steady, []string{"--deadline", "2s"}, steady + ": stopped: --deadline 2s passed"},
	} {
		for _, args := range [][]string{
			{"dump", "-s", c.addr, "-o", filepath.Join(dir, "x.dump")},
			{"stat", "-s", c.addr, "keys"},
			{"stat", "-s", c.addr, "dump"},
			{"load", "--from", c.addr, "--to", good},
		} {
			t.Run(c.name+"/"+strings.Join(args[:2], ""), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				args := append(append(args, "--timeout", "1s"), c.flags...)
				cmd := exec.CommandContext(ctx, bin, args...)
				var stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = io.Discard, &stderr
				start := time.Now()
				err := cmd.Run()
				took := time.Since(start)
				code := -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
				if code != 1 || !strings.Contains(lines[len(lines)-1], c.want) || len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[0], "loaded ") {
					t.Errorf("%v: exit %d (%v), stderr:\n%s\nwant exit 1 and one line with %q", args, code, err, stderr.String(), c.want)
				}
				if took > 15*time.Second {
					t.Errorf("%v took %v", args, took)
				}
			})
		}
	}
}

// stat keys --json and stat dump --json give every key exactly: a key
// that is not UTF-8, which a JSON string cannot hold, comes with its bytes
// in key_base64; a UTF-8 key (control bytes too) is exact in key alone.
func TestStatJSONKeysLossless(t *testing.T) {
	statServers(t, func(t *testing.T, addr string) {
		keys := []string{"\xff\xfe k\x00", "caf\xc3\xa9\x01 %2B+", "plain"}
		var req strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&req, "ms %s 1 b F4\r\nv\r\n", base64.StdEncoding.EncodeToString([]byte(k)))
		}
		if got := sendText(t, addr, req.String()+"mn\r\n", "MN\r\n"); strings.Count(got, "HD") != len(keys) {
			t.Fatalf("sets: %q", got)
		}
		for _, mode := range []string{"keys", "dump"} {
			out, err := runCorvid(t, "stat", "-s", addr, mode, "--json")
			if err != nil {
				t.Fatalf("%s: %v\n%s", mode, err, out)
			}
			got := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var k struct {
					Key       string
					KeyBase64 *string `json:"key_base64"`
				}
				if err := json.Unmarshal([]byte(l), &k); err != nil {
					t.Fatalf("%s --json line %q: %v", mode, l, err)
				}
				key := k.Key
				if k.KeyBase64 != nil {
					b, err := base64.StdEncoding.DecodeString(*k.KeyBase64)
					if err != nil {
						t.Fatalf("%s --json line %q: %v", mode, l, err)
					}
					key = string(b)
					if utf8.ValidString(key) {
						t.Errorf("%s --json line %q: key_base64 for a UTF-8 key", mode, l)
					}
				}
				got[key] = true
			}
			for _, k := range keys {
				if !got[k] {
					t.Errorf("%s --json: no key %q in\n%s", mode, k, out)
				}
			}
		}
	})
}

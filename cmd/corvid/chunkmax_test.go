//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// startup is what a server process does with a command line: it starts
// (and prints its -vv slab class table) or it refuses with a message and
// an exit status.
type startup struct {
	accepted bool
	classes  []string // the "slab class" lines, when accepted
	out      string   // everything printed, when refused
	code     int      // exit status when refused; -1 when killed by a signal
}

// runStartup runs name with args and -vv and reports what it did: it is
// accepted once it has printed its class table and something after it,
// then stopped; otherwise it is refused when it exits.
func runStartup(t *testing.T, name string, args ...string) startup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append(args, "-vv")...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatal(err)
	}
	pw.Close()
	defer pr.Close()
	var s startup
	var all strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if strings.HasPrefix(line, "slab class ") {
			s.classes = append(s.classes, line)
			continue
		}
		if len(s.classes) > 0 {
			s.accepted = true
			break
		}
	}
	if s.accepted {
		cmd.Process.Kill()
		cmd.Wait()
		return s
	}
	err = cmd.Wait()
	if len(s.classes) > 0 { // the table was the last thing it printed
		s.accepted = true
		return s
	}
	s.out = all.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
		s.code = 0
	case errors.As(err, &ee):
		s.code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return s
}

// TestStartupItemSizeMatchesMemcached starts corvid and memcached with
// combinations of -I, -o slab_chunk_max, -m, -n, -f, no_modern and
// no_chunked_items: each must be accepted by both, with the same slab
// class table, or refused by both with the same message and exit status.
// memcached crashes on a slab_chunk_max of 0 or that it cannot parse, and
// takes a negative one; corvid refuses all of them.
func TestStartupItemSizeMatchesMemcached(t *testing.T) {
	mc := testutil.MemcachedPath()
	if mc == "" {
		t.Skip("memcached is not installed")
	}
	bin := corvidBinary(t)
	var cases [][]string
	for _, i := range []string{"", "1024", "2k", "600k", "1m", "2m", "64m", "1025m", "2048m", "x"} {
		for _, cm := range []string{"", "0", "-4", "1", "1024", "3000", "16384", "524288", "1048576", "16k"} {
			var args []string
			if i != "" {
				args = append(args, "-I", i)
			}
			if cm != "" {
				args = append(args, "-o", "slab_chunk_max="+cm)
			}
			cases = append(cases, append(args, "-m", "4096"))
		}
	}
	cases = append(cases,
		[]string{"-o", "no_modern"},
		[]string{"-o", "no_modern", "-I", "2m"},
		[]string{"-o", "no_modern,slab_chunk_max=65536", "-I", "2m"},
		[]string{"-o", "slab_chunk_max=65536,no_modern"},
		[]string{"-o", "no_chunked_items"},
		[]string{"-o", "no_chunked_items", "-I", "4m"},
		[]string{"-o", "slab_chunk_max=16384", "-f", "1.08"},
		[]string{"-o", "slab_chunk_max=512", "-n", "1000"},
		[]string{"-o", "slab_chunk_max=8192", "-n", "5", "-f", "1.01"},
		[]string{"-o", "slab_chunk_max=131072", "-n", "100", "-f", "2", "-I", "8m"},
		[]string{"-I", "32m", "-m", "64"},
		[]string{"-I", "32m", "-m", "63"},
		[]string{"-I", "128m", "-m", "256"},
		[]string{"-I", "1m", "-m", "1"},
		[]string{"-o", "slab_chunk_max"},
		[]string{"-I", "1000000", "-o", "slab_chunk_max=64"},
		[]string{"-I", "3m", "-o", "slab_chunk_max=2097152"},
	)
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			port := strconv.Itoa(freePort(t))
			common := []string{"-l", "127.0.0.1", "-p", port, "-U", "0"}
			got := runStartup(t, bin, append(append([]string{"server"}, common...), args...)...)
			margs := common
			if os.Geteuid() == 0 {
				margs = append(margs, "-u", "nobody")
			}
			want := runStartup(t, mc, append(margs, args...)...)
			switch {
			case want.code < 0 || want.code == 128+int(syscall.SIGFPE) || want.code == 128+int(syscall.SIGSEGV),
				want.accepted && strings.Contains(strings.Join(args, " "), "slab_chunk_max=-"):
				// memcached crashes, or takes a negative size.
				if got.accepted {
					t.Fatalf("corvid accepts what memcached cannot run with (%+v)", want)
				}
				if line := firstLine(want.out); line != "" && !strings.Contains(got.out, line) {
					t.Fatalf("corvid says %q, memcached %q", got.out, line)
				}
			case want.accepted != got.accepted:
				t.Fatalf("corvid %+v, memcached %+v", got, want)
			case want.accepted:
				if g, w := strings.Join(got.classes, "\n"), strings.Join(want.classes, "\n"); g != w {
					t.Fatalf("class table:\n%s\nmemcached:\n%s", g, w)
				}
			default:
				if got.code != want.code || !strings.Contains(got.out, firstLine(want.out)) {
					t.Fatalf("corvid: %q, exit %d; memcached: %q, exit %d", got.out, got.code, want.out, want.code)
				}
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestStatsSlabsMatchMemcached stores values of sizes up to -I into corvid
// and memcached started with the same options and compares "stats slabs":
// every class both list has the same chunk size and chunks per page, the
// largest class (slab_chunk_max) holds the items larger than it in both,
// and no class is listed that memcached's table lacks.
func TestStatsSlabsMatchMemcached(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	for _, tc := range []struct {
		args     []string
		chunkMax int
		sizes    []int
	}{
		{[]string{"-m", "64"}, 512 << 10, []int{10, 1000, 100 << 10, 400 << 10, 600 << 10, 1000 << 10}},
		{[]string{"-m", "64", "-I", "4m"}, 512 << 10, []int{10, 5000, 500 << 10, 1 << 20, 3 << 20}},
		{[]string{"-m", "64", "-I", "2m", "-o", "slab_chunk_max=65536"}, 64 << 10, []int{100, 50 << 10, 70 << 10, 1 << 20}},
		{[]string{"-m", "64", "-o", "slab_chunk_max=16384", "-f", "1.08"}, 16 << 10, []int{100, 10 << 10, 20 << 10, 900 << 10}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			addrs := []string{startServerProc(t, tc.args...).addr, testutil.StartMemcached(t, tc.args...)}
			var slabs [2]map[string]string
			for i, addr := range addrs {
				var req strings.Builder
				for n, size := range tc.sizes {
					fmt.Fprintf(&req, "set k%d 0 0 %d\r\n%s\r\n", n, size, strings.Repeat("v", size))
				}
				reply := roundTrip(t, addr, req.String()+"stats slabs\r\n", "END")
				if strings.Count(reply, "STORED\r\n") != len(tc.sizes) {
					t.Fatalf("%s: %q", addr, reply[:min(len(reply), 300)])
				}
				slabs[i] = statMap(reply)
			}
			got, want := slabs[0], slabs[1]
			largest := 0
			for k, v := range want {
				if id, f, ok := strings.Cut(k, ":"); ok && f == "chunk_size" && v == strconv.Itoa(tc.chunkMax) {
					largest, _ = strconv.Atoi(id)
				}
			}
			if largest == 0 {
				t.Fatalf("memcached has no pages of %d-byte chunks: %v", tc.chunkMax, want)
			}
			if got[strconv.Itoa(largest)+":chunk_size"] == "" {
				t.Errorf("class %d (slab_chunk_max) has no pages in corvid", largest)
			}
			for k, v := range got {
				id, f, ok := strings.Cut(k, ":")
				if !ok || f != "chunk_size" && f != "chunks_per_page" {
					continue
				}
				if w, ok := want[k]; ok && w != v {
					t.Errorf("%s = %s, memcached %s", k, v, w)
				}
				if n, _ := strconv.Atoi(id); n > largest {
					t.Errorf("class %s (%s %s) is past memcached's largest class %d", id, f, v, largest)
				}
			}
		})
	}
}

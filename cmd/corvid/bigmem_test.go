//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/storage"
)

// statMap parses the "STAT name value" lines of a stats reply.
func statMap(reply string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(reply, "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}

// rssBytes returns the resident memory of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestBinaryHundredGigabytes starts a 100 GB cache on a machine with less
// memory: it maps memory only as items need it, serves, and its snapshot
// loads into a small cache and back.
func TestBinaryHundredGigabytes(t *testing.T) {
	const maxRSS = 256 << 20 // the slab pages used, the runtime, the race detector
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	p := startServerProc(t, "-m", "102400", "-e", snap)
	if rss := rssBytes(t, p.cmd.Process.Pid); rss > maxRSS {
		t.Fatalf("RSS %d MiB after start", rss>>20)
	}
	var req strings.Builder
	for i := range 2000 {
		v := strings.Repeat(string(rune('a'+i%26)), i%3000)
		fmt.Fprintf(&req, "set key%d %d 0 %d noreply\r\n%s\r\n", i, i, len(v), v)
	}
	req.WriteString("gets key7 key1999\r\n")
	before := roundTrip(t, p.addr, req.String(), "END")
	before = before[strings.Index(before, "VALUE"):]
	if !strings.HasPrefix(before, "VALUE key7 7 7 ") {
		t.Fatalf("gets after sets: %q", before)
	}
	st := statMap(roundTrip(t, p.addr, "stats\r\n", "END"))
	malloced, _ := strconv.ParseInt(statMap(roundTrip(t, p.addr, "stats slabs\r\n", "END"))["total_malloced"], 10, 64)
	if st["limit_maxbytes"] != "107374182400" || st["curr_items"] != "2000" || st["hash_power_level"] != "16" {
		t.Fatalf("limit_maxbytes %s curr_items %s hash_power_level %s", st["limit_maxbytes"], st["curr_items"], st["hash_power_level"])
	}
	if malloced <= 0 || malloced > 64<<20 {
		t.Fatalf("total_malloced %d after 2000 small sets", malloced)
	}
	if rss := rssBytes(t, p.cmd.Process.Pid); rss > maxRSS {
		t.Fatalf("RSS %d MiB after 2000 sets (%d MiB of pages)", rss>>20, malloced>>20)
	}
	// The snapshot records items, not refs: it loads into a cache of
	// either ref width.
	for _, m := range []string{"64", "102400"} {
		p.stop(t, syscall.SIGUSR1)
		p = startServerProc(t, "-m", m, "-e", snap)
		if got := roundTrip(t, p.addr, "gets key7 key1999\r\n", "END"); got != before {
			t.Fatalf("-m %s after restart gets answers\n%.200q\nwant (same CAS)\n%.200q", m, got, before)
		}
		if st := statMap(roundTrip(t, p.addr, "stats\r\n", "END")); st["curr_items"] != "2000" {
			t.Fatalf("-m %s after restart: curr_items %s, want 2000", m, st["curr_items"])
		}
	}
}

// TestBinaryInitialMallocMatchesMemcached runs memcached's t/64bit.t
// against corvid and memcached: with T_MEMD_INITIAL_MALLOC just over 4 GiB,
// a 4098 MB -M cache has room for one page, then refuses stores.
func TestBinaryInitialMallocMatchesMemcached(t *testing.T) {
	env := []string{"T_MEMD_INITIAL_MALLOC=4294967328"}
	args := []string{"-m", "4098", "-M"}
	mcAddr := testutil.StartMemcachedEnv(t, env, args...)
	p := startServerProcWith(t, procOptions{env: env}, args...)
	run := func(addr string) []string {
		stats := func() []string {
			slabs := statMap(roundTrip(t, addr, "stats slabs\r\n", "END"))
			return []string{"limit_maxbytes " + statMap(roundTrip(t, addr, "stats\r\n", "END"))["limit_maxbytes"],
				"total_malloced " + slabs["total_malloced"], "active_slabs " + slabs["active_slabs"]}
		}
		out := stats()
		nc := testutil.Dial(t, addr)
		defer nc.Close()
		data := strings.Repeat("a", 400<<10)
		for i := 1; i <= 5; i++ {
			nc.Send([]byte(fmt.Sprintf("set big%d 0 0 %d\r\n%s\r\n", i, len(data), data)))
			out = append(out, fmt.Sprintf("set big%d: %s", i, strings.TrimSpace(string(nc.ReadReply(testutil.LineReply)))))
		}
		// A class without pages gets one past the limit, as in
		// memcached's do_slabs_newslab; then it is full too.
		for i := 1; i <= 12; i++ {
			nc.Send([]byte(fmt.Sprintf("set small%d 0 0 %d\r\n%s\r\n", i, 100<<10, strings.Repeat("s", 100<<10))))
			out = append(out, fmt.Sprintf("set small%d: %s", i, strings.TrimSpace(string(nc.ReadReply(testutil.LineReply)))))
		}
		nc.Send([]byte("get big1 big2 big3 big4 big5\r\n"))
		for _, line := range strings.Split(string(nc.ReadReply(testutil.ValuesReply)), "\r\n") {
			if strings.HasPrefix(line, "VALUE ") || line == "END" {
				out = append(out, line)
			}
		}
		return append(out, stats()...)
	}
	want, got := run(mcAddr), run(p.addr)
	t.Logf("memcached: %q", want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("corvid answers\n%s\nmemcached\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestInitialMalloced(t *testing.T) {
	for in, want := range map[string]int64{
		"":                     0,
		"4294967328":           4294967328,
		" 42\n":                42,
		"+7":                   7,
		"42x":                  0,
		"x":                    0,
		"1e9":                  0,
		"99999999999999999999": 0,
		"-1":                   storage.MaxMemoryLimit,
	} {
		if got := initialMalloced(in); got != want {
			t.Errorf("initialMalloced(%q) = %d, want %d", in, got, want)
		}
	}
}

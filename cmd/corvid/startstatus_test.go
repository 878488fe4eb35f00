//go:build unix

package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestStartupListenFailureStatus checks that a server that cannot open a
// listener (its port taken, an -l entry it cannot read) exits with
// memcached's EX_OSERR, 71, as memcached does, naming the listener; when
// memcached is installed, its status for the same command line is checked
// to be that one too.
func TestStartupListenFailureStatus(t *testing.T) {
	bin := corvidBinary(t)
	port := takenPort(t)
	for _, tc := range []struct {
		args []string
		want string // in corvid's message
	}{
		{[]string{"-l", "127.0.0.1", "-p", port, "-U", "0"}, "127.0.0.1:" + port},
		{[]string{"-l", "127.0.0.1:abc", "-U", "0"}, `Invalid port number: "abc"`},
		{[]string{"-l", "[::1", "-U", "0"}, `Invalid IPV6 address: "[::1"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, msg := exitOf(t, bin, append([]string{"server"}, tc.args...)...)
			if code != exOSErr || !strings.Contains(msg, tc.want) {
				t.Errorf("corvid: exit %d, %q; want %d and %q", code, msg, exOSErr, tc.want)
			}
			if mcode, mmsg, ok := memcachedExitOf(t, tc.args...); ok && mcode != code {
				t.Errorf("memcached: exit %d (%q), corvid %d", mcode, mmsg, code)
			}
		})
	}
}

// TestStartupManyThreadsWarning checks that -t above 64 prints memcached's
// warning before anything else, as memcached does while it reads its
// options (here followed by the refusal of -c 0, so that neither serves).
func TestStartupManyThreadsWarning(t *testing.T) {
	bin := corvidBinary(t)
	args := []string{"-t", "65", "-c", "0", "-l", "127.0.0.1", "-U", "0"}
	code, msg := exitOf(t, bin, append([]string{"server"}, args...)...)
	want := "WARNING: Setting a high number of workerthreads is not recommended.\n" +
		" Set this value to the number of cores in your machine or less.\n" +
		"Maximum connections must be greater than 0"
	if code != 1 || !strings.HasSuffix(msg, want) {
		t.Errorf("corvid: exit %d, %q; want 1 and %q", code, msg, want)
	}
	if mcode, mmsg, ok := memcachedExitOf(t, args...); ok && (mcode != code || mmsg != want) {
		t.Errorf("memcached: exit %d, %q; corvid %d, %q", mcode, mmsg, code, msg)
	}
	code, msg = exitOf(t, bin, "server", "-t", "64", "-c", "0")
	if code != 1 || strings.Contains(msg, "WARNING") {
		t.Errorf("-t 64: exit %d, %q; want no warning", code, msg)
	}
}

// TestStartupClassTableBeforeListen checks that -vv prints the slab class
// table before the listeners open, as memcached prints it while it makes
// its classes: a server whose port is taken has printed it when it exits.
func TestStartupClassTableBeforeListen(t *testing.T) {
	bin := corvidBinary(t)
	args := []string{"-vv", "-l", "127.0.0.1", "-p", takenPort(t), "-U", "0", "-o", "slab_sizes=100-200"}
	const table = "slab class   1: chunk size       104 perslab   10082\n" +
		"slab class   2: chunk size       200 perslab    5242\n" +
		"slab class   3: chunk size    524288 perslab       2\n"
	code, msg := exitOf(t, bin, append([]string{"server"}, args...)...)
	if code != exOSErr || !strings.Contains(msg, table) {
		t.Errorf("corvid: exit %d, %q; want %d and the class table", code, msg, exOSErr)
	}
	if mcode, mmsg, ok := memcachedExitOf(t, args...); ok && (mcode != code || !strings.HasPrefix(mmsg, table)) {
		t.Errorf("memcached: exit %d, %q", mcode, mmsg)
	}
}

// TestSuboptionsKnownAsMemcached checks -o suboptions against memcached
// 1.6.18's parser: those it takes (whether corvid acts on them or only
// reports them) start, and those it does not know (built without NAPI or
// its proxy, or added after 1.6.18) are refused as illegal. Each runs
// with LRU shares over 80 %, refused once the options are read, so that
// neither server stays up.
func TestSuboptionsKnownAsMemcached(t *testing.T) {
	bin := corvidBinary(t)
	for _, tc := range []struct {
		opt     string
		illegal bool
	}{
		{"num_napi_ids=2", true},
		{"proxy_config=x.lua", true},
		{"proxy_uring", true},
		{"slab_automove_version=1", true},
		{"resp_obj_mem_limit=5", false},
		{"drop_privileges", false},
		{"sock_cookie_id=1", false},
		{"ext_path=/nonexistent/file:64m", false},
		{"tail_repair_time=30", false},
		{"no_hashexpand", false},
		{"slab_sizes=100-200", false},
	} {
		args := []string{"-o", tc.opt, "-o", "hot_lru_pct=50,warm_lru_pct=40", "-l", "127.0.0.1", "-U", "0"}
		want, wantCode := "hot_lru_pct + warm_lru_pct cannot be more than 80% combined", exUsage
		if tc.illegal {
			want, wantCode = `Illegal suboption "`+tc.opt+`"`, 1
		}
		code, msg := exitOf(t, bin, append([]string{"server"}, args...)...)
		if code != wantCode || !strings.HasSuffix(msg, want) {
			t.Errorf("corvid -o %s: exit %d, %q; want %d and %q", tc.opt, code, msg, wantCode, want)
		}
		if mcode, mmsg, ok := memcachedExitOf(t, args...); ok && (mcode != wantCode || !strings.HasSuffix(mmsg, want)) {
			t.Errorf("memcached -o %s: exit %d, %q; want %d and %q", tc.opt, mcode, mmsg, wantCode, want)
		}
	}
}

// TestSuboptionDeprecatedLine checks that -o resp_obj_mem_limit prints
// memcached's deprecation line as it is read, before the refusal that
// follows here, and is otherwise ignored.
func TestSuboptionDeprecatedLine(t *testing.T) {
	bin := corvidBinary(t)
	args := []string{"-o", "resp_obj_mem_limit=5", "-o", "hot_lru_pct=50,warm_lru_pct=40", "-l", "127.0.0.1", "-U", "0"}
	const want = "DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,\n" +
		"hot_lru_pct + warm_lru_pct cannot be more than 80% combined"
	code, msg := exitOf(t, bin, append([]string{"server"}, args...)...)
	if code != exUsage || !strings.HasSuffix(msg, want) || strings.Contains(msg, "not supported") {
		t.Errorf("corvid: exit %d, %q; want %d and %q", code, msg, exUsage, want)
	}
	if mcode, mmsg, ok := memcachedExitOf(t, args...); ok && (mcode != code || !strings.HasSuffix(mmsg, want)) {
		t.Errorf("memcached: exit %d, %q; corvid %d, %q", mcode, mmsg, code, msg)
	}
}

// takenPort returns a loopback port a listener holds until the test ends.
func takenPort(t *testing.T) string {
	t.Helper()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	return strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
}

// memcachedExitOf runs the installed memcached with args (as nobody when
// the test runs as root, which memcached refuses) and returns its exit
// status and standard error; ok is false when memcached is not installed.
func memcachedExitOf(t *testing.T, args ...string) (code int, msg string, ok bool) {
	t.Helper()
	mc := testutil.MemcachedPath()
	if mc == "" {
		return 0, "", false
	}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	code, msg = exitOf(t, mc, args...)
	return code, msg, true
}

// TestStartupChecksInMemcachedsOrder checks refusals memcached makes once
// it runs, after its options are read, in its order: the descriptor limit
// for -c, then (with -L) a page of the memory limit for every slab class,
// then the hash table against the item locks of -t; each with memcached's
// message and status, and memcached's own when it is installed.
func TestStartupChecksInMemcachedsOrder(t *testing.T) {
	bin := corvidBinary(t)
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"-t", "11", "-c", "2000000", "-o", "hashpower=12"},
			"failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.", exOSErr},
		{[]string{"-L", "-m", "2", "-o", "hashpower=12"},
			"Error while preallocating slab memory!\nIf using -L or other prealloc options, max memory must be at least 39 megabytes.", 1},
		{[]string{"-L", "-m", "64", "-o", "hashpower=12"},
			"Hash table power size (12) cannot be equal to or less than item lock table (12)", 1},
		{[]string{"-L", "-m", "38", "-o", "slab_chunk_max=524288,slab_sizes=100-200"},
			"", 0}, // three classes fit
	} {
		args := append([]string{"-l", "127.0.0.1", "-p", takenPort(t), "-U", "0"}, tc.args...)
		if tc.code == 0 {
			// Starts, then finds its port taken.
			tc.want, tc.code = "", exOSErr
		}
		code, msg := exitOf(t, bin, append([]string{"server"}, args...)...)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("corvid %q: exit %d, %q; want %d and %q", tc.args, code, msg, tc.code, tc.want)
		}
		if mcode, mmsg, ok := memcachedExitOf(t, args...); ok && (mcode != tc.code || !strings.HasPrefix(mmsg, tc.want)) {
			t.Errorf("memcached %q: exit %d, %q; want %d and %q", tc.args, mcode, mmsg, tc.code, tc.want)
		}
	}
}

package server_test

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// memccapableTimeout bounds a memccapable run; it takes about three seconds
// against a working server.
const memccapableTimeout = 60 * time.Second

// memccapableTests is how many tests memccapable (libmemcached 1.x) runs
// without -a or -b: 27 in the ASCII protocol and 27 in the binary one.
const memccapableTests = 54

// memccapable prints each test's name, padded, then its status:
// "ascii cas noreply                       [pass]", "binary getkq   [pass]". With -v a failed test's
// status follows on a later line, and its assertion message, which may
// quote the reply, runs into the next test's name.
var (
	memccapableName   = regexp.MustCompile(`(?:ascii|binary) [a-z]+(?: [a-z]+)*`)
	memccapableStatus = regexp.MustCompile(`\[(pass|FAIL|skip)\]`)
)

// memccapableResults returns each test's name and status, "" when it
// printed none.
func memccapableResults(out []byte) (names, statuses []string) {
	at := memccapableName.FindAllIndex(out, -1)
	for i, m := range at {
		end := len(out)
		if i+1 < len(at) {
			end = at[i+1][0]
		}
		status := ""
		if s := memccapableStatus.FindSubmatch(out[m[1]:end]); s != nil {
			status = string(s[1])
		}
		names = append(names, string(out[m[0]:m[1]]))
		statuses = append(statuses, status)
	}
	return names, statuses
}

// TestMemccapable runs libmemcached's protocol checker, memccapable, in
// both protocols against corvid and requires all its tests to run and pass.
func TestMemccapable(t *testing.T) {
	requireAllPass(t, "corvid", runMemccapable(t, startCorvid(t)))
}

// memccapableRun is what one memccapable run printed and how it ended.
type memccapableRun struct {
	names, statuses []string
	out             []byte
	err             error
}

// passed returns the names of the tests that passed.
func (r memccapableRun) passed() map[string]bool {
	p := map[string]bool{}
	for i, name := range r.names {
		if r.statuses[i] == "pass" {
			p[name] = true
		}
	}
	return p
}

// runMemccapable runs memccapable against addr, skipping the test when it
// is not installed.
func runMemccapable(t *testing.T, addr string) memccapableRun {
	t.Helper()
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		t.Skip("memccapable is not installed (Debian: libmemcached-tools)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), memccapableTimeout)
	defer cancel()
	// Neither -a nor -b: ASCII and binary tests; -t: seconds to wait for
	// each reply; -v: print the failed assertion.
	cmd := exec.CommandContext(ctx, bin, "-v", "-t", "5", "-h", host, "-p", port)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("memccapable did not finish within %v; output:\n%s", memccapableTimeout, out)
	}
	names, statuses := memccapableResults(out)
	return memccapableRun{names: names, statuses: statuses, out: out, err: err}
}

// requireAllPass fails the test unless all of memccapable's tests ran and
// passed.
func requireAllPass(t *testing.T, server string, r memccapableRun) {
	t.Helper()
	var failed []string
	for i, name := range r.names {
		if r.statuses[i] != "pass" {
			failed = append(failed, name)
		}
	}
	if passed := len(r.names) - len(failed); passed != memccapableTests || len(failed) > 0 || r.err != nil {
		t.Fatalf("memccapable against %s: %d of %d tests passed, want %d (%v); not passed: %s\noutput:\n%s",
			server, passed, len(r.names), memccapableTests, r.err, strings.Join(failed, ", "), r.out)
	}
}

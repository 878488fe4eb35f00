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

// memccapable prints each test's name, padded, then its status:
// "ascii cas noreply                       [pass]". With -v a failed test's
// status follows on a later line, and its assertion message, which may
// quote the reply, runs into the next test's name.
var (
	memccapableName   = regexp.MustCompile(`ascii [a-z]+(?: [a-z]+)*`)
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
// ASCII mode against corvid and requires every test to pass.
func TestMemccapable(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		t.Skip("memccapable is not installed (Debian: libmemcached-tools)")
	}
	host, port, err := net.SplitHostPort(startCorvid(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), memccapableTimeout)
	defer cancel()
	// -a: ASCII protocol only; -t: seconds to wait for each reply;
	// -v: print the failed assertion.
	cmd := exec.CommandContext(ctx, bin, "-a", "-v", "-t", "5", "-h", host, "-p", port)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("memccapable did not finish within %v; output:\n%s", memccapableTimeout, out)
	}
	names, statuses := memccapableResults(out)
	if len(names) == 0 {
		t.Fatalf("memccapable reported no ASCII tests (%v); output:\n%s", err, out)
	}
	var failed []string
	for i, name := range names {
		if statuses[i] != "pass" {
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 || err != nil {
		t.Fatalf("memccapable: %d of %d ASCII tests did not pass (%v): %s\noutput:\n%s",
			len(failed), len(names), err, strings.Join(failed, ", "), out)
	}
}

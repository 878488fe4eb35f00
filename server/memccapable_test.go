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

// memccapableTimeout bounds a memccapable run; it takes well under a
// second against a working server.
const memccapableTimeout = 60 * time.Second

// memccapableResult matches a result line such as
// "ascii cas noreply                       [pass]".
var memccapableResult = regexp.MustCompile(`(?m)^(ascii .*?)\s+\[(\w+)\]\s*$`)

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
	results := memccapableResult.FindAllSubmatch(out, -1)
	if len(results) == 0 {
		t.Fatalf("memccapable reported no ASCII tests (%v); output:\n%s", err, out)
	}
	var failed []string
	for _, r := range results {
		if string(r[2]) != "pass" {
			failed = append(failed, string(r[1])+" ["+string(r[2])+"]")
		}
	}
	if len(failed) > 0 || err != nil {
		t.Fatalf("memccapable: %d of %d ASCII tests did not pass (%v): %s\noutput:\n%s",
			len(failed), len(results), err, strings.Join(failed, ", "), out)
	}
}

package proxy

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// memccapable prints each test's name, padded, then its status; with -v
// a failed test's status follows on a later line.
var (
	memccapableName   = regexp.MustCompile(`ascii [a-z]+(?: [a-z]+)*`)
	memccapableStatus = regexp.MustCompile(`\[(pass|FAIL|skip)\]`)
)

// memccapableNotThroughProxy are the ASCII tests that cannot pass through
// the proxy, and why.
var memccapableNotThroughProxy = map[string]string{
	// "verbosity 1" sets one server's log level; no single server owns
	// it, so the proxy answers SERVER_ERROR where the test wants OK.
	"ascii verbosity": "verbosity has no single owner",
}

// TestMemccapableASCII runs libmemcached's protocol checker's ASCII tests
// through the proxy in front of three corvid servers: all pass but those
// that need one server's state.
func TestMemccapableASCII(t *testing.T) {
	bin, err := exec.LookPath("memccapable")
	if err != nil {
		t.Skip("memccapable is not installed (Debian: libmemcached-tools)")
	}
	_, addr := proxyFor(t, startCorvids(t, 3))
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-a", "-v", "-t", "5", "-h", host, "-p", port)
	cmd.WaitDelay = time.Second
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("memccapable did not finish within %v; output:\n%s", timeout, out)
	}
	at := memccapableName.FindAllIndex(out, -1)
	if len(at) < 27 {
		t.Fatalf("memccapable ran %d ASCII tests, want 27; output:\n%s", len(at), out)
	}
	for i, m := range at {
		end := len(out)
		if i+1 < len(at) {
			end = at[i+1][0]
		}
		name := string(out[m[0]:m[1]])
		status := ""
		if s := memccapableStatus.FindSubmatch(out[m[1]:end]); s != nil {
			status = string(s[1])
		}
		_, excused := memccapableNotThroughProxy[name]
		if status != "pass" && !excused {
			t.Errorf("memccapable %q: %q; output:\n%s", name, status, strings.TrimSpace(string(out[m[0]:end])))
		}
	}
}

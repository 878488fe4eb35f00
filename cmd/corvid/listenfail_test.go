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
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
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
			mc := testutil.MemcachedPath()
			if mc == "" {
				return
			}
			margs := tc.args
			if os.Geteuid() == 0 {
				margs = append([]string{"-u", "nobody"}, margs...)
			}
			if mcode, mmsg := exitOf(t, mc, margs...); mcode != code {
				t.Errorf("memcached: exit %d (%q), corvid %d", mcode, mmsg, code)
			}
		})
	}
}

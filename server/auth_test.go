package server_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// authFileText is the auth file of the authentication tests.
const authFileText = "alice:secret\nbob:pw:with:colon\r\ncarol:p\n"

// writeAuthFile writes text to a file that memcached, which runs as
// "nobody" when the tests run as root, can read too.
func writeAuthFile(t *testing.T, text string) string {
	t.Helper()
	f, err := os.CreateTemp("", "corvid-auth-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// authServers starts corvid and, when installed, memcached with the auth
// file path, and returns their addresses by name.
func authServers(t *testing.T, path string) map[string]string {
	t.Helper()
	addrs := map[string]string{
		"corvid": testutil.StartCorvid(t, server.Config{AuthFile: path, Protocol: server.ProtoASCII}),
	}
	if testutil.MemcachedPath() != "" {
		addrs["memcached"] = testutil.StartMemcached(t, "-Y", path)
	}
	return addrs
}

// Special replies of an authStep.
const (
	noReply = "-"      // nothing is read
	closed  = "closed" // the server closes the connection
)

// authStep sends send and reads one reply, which must be want.
type authStep struct{ send, want string }

// authTranscripts are sent one step at a time (each reply read before the
// next request), on a new connection each, to corvid and to memcached.
var authTranscripts = []struct {
	name  string
	steps []authStep
}{
	{"unauthenticated", []authStep{
		{"get foo\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"version\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"stats\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set k 0 0 1\r\n", noReply},
		{"x\r\n", "CLIENT_ERROR bad authentication token format\r\n"},
	}},
	{"success", []authStep{
		{"set any 1 2 12\r\nalice secret\r\n", "STORED\r\n"},
		{"set k 0 0 1\r\nv\r\n", "STORED\r\n"},
		{"get k any\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n"},
		{"version\r\n", "VERSION 1.6.18\r\n"},
	}},
	{"failure then success", []authStep{
		{"set x 0 0 12\r\nalice wrong!\r\n", "CLIENT_ERROR authentication failure\r\n"},
		{"get x\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set x 0 0 12\r\nalicesecret \r\n", "CLIENT_ERROR bad authentication token format\r\n"},
		{"set x 0 0 12\r\nalice secret\r\n", "STORED\r\n"},
		{"get x\r\n", "END\r\n"},
	}},
	{"unknown user", []authStep{
		{"set x 0 0 10\r\nmallory pw\r\n", "CLIENT_ERROR authentication failure\r\n"},
	}},
	{"password with colons", []authStep{
		{"set x 0 0 17\r\nbob pw:with:colon\r\n", "STORED\r\n"},
	}},
	{"prefix of password", []authStep{
		{"set x 0 0 9\r\nbob pw:wi\r\n", "CLIENT_ERROR authentication failure\r\n"},
	}},
	{"extra tokens and spaces", []authStep{
		{"set  x 0 0 22 noreply\r\n  alice   secret extra\r\n", "STORED\r\n"},
	}},
	{"split across writes", []authStep{
		{"set x 0 ", noReply},
		{"0 12\r\nali", noReply},
		{"ce secret\r", noReply},
		{"\n", "STORED\r\n"},
	}},
	{"newline only line ending", []authStep{
		{"set x 0 0 7\ncarol p\r\n", "STORED\r\n"},
	}},
	{"tab is not a separator", []authStep{
		{"set x 0 0 12\r\nalice\tsecret\r\n", "CLIENT_ERROR bad authentication token format\r\n"},
		{"set\tx 0 0 12\r\n", "CLIENT_ERROR unauthenticated\r\n"},
	}},
	{"NUL ends the token", []authStep{
		{"set x 0 0 12\r\nalice\x00secret\r\n", "CLIENT_ERROR bad authentication token format\r\n"},
		{"set x 0 0 13\r\nalice secret\x00\r\n", "STORED\r\n"},
	}},
	{"bad data terminator", []authStep{
		{"set x 0 0 12\r\nalice secretXY", "CLIENT_ERROR bad command line termination\r\n"},
		{"set x 0 0 12\r\nalice secret\n\n", "CLIENT_ERROR bad command line termination\r\n"},
	}},
	{"not a set", []authStep{
		{"SET x 0 0 1\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"add x 0 0 1\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set x 0 0\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set x 0 0 abc\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set x 0 0 12x\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set x 0 0 -1\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"set x 0 0 18446744073709551616\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		{"\r\n", "CLIENT_ERROR unauthenticated\r\n"},
	}},
	{"size with a sign", []authStep{
		{"set x 0 0 +7\r\r\ncarol p\r\n", "STORED\r\n"},
	}},
	{"size after a tab", []authStep{
		{"set x 0 0 \t7\r\ncarol p\r\n", "STORED\r\n"},
	}},
	{"size wraps at 32 bits", []authStep{
		{"set x 0 0 4294967308\r\n", noReply},
		{"alice secret\r\n", "STORED\r\n"},
	}},
	{"size wraps to less than the terminator", []authStep{
		{"set x 0 0 4294967294\r\n", "CLIENT_ERROR bad command line termination\r\n"},
		{"version\r\n", "CLIENT_ERROR unauthenticated\r\n"},
	}},
	{"long line", []authStep{
		{strings.Repeat("a", 2048), noReply},
		{"\r\n", "CLIENT_ERROR unauthenticated\r\n"},
	}},
	{"junk without newline", []authStep{
		{strings.Repeat("a", 2049), closed},
	}},
	{"data block too large", []authStep{
		{"set x 0 0 16383\r\n" + strings.Repeat("a", 16385), closed},
	}},
	{"largest data block", []authStep{
		{"set x 0 0 16382\r\nalice secret" + strings.Repeat(" ", 16370) + "\r\n", "STORED\r\n"},
	}},
}

func TestASCIIAuth(t *testing.T) {
	path := writeAuthFile(t, authFileText)
	for name, addr := range authServers(t, path) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range authTranscripts {
				c := testutil.Dial(t, addr)
				c.Timeout = 2 * time.Second
				for i, s := range tc.steps {
					c.Send([]byte(s.send))
					if s.want == noReply {
						continue
					}
					got, err := c.TryReadReply(testutil.AnyReply)
					if s.want == closed {
						if err == nil || isTimeout(err) {
							t.Errorf("%s: step %d: got %q, %v; want the connection closed", tc.name, i, got, err)
						}
						break
					}
					if err != nil || string(got) != s.want {
						t.Errorf("%s: step %d: %s: got %q, %v; want %q", tc.name, i,
							testutil.Quote([]byte(s.send), 60), got, err, s.want)
						break
					}
				}
				c.Close()
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestASCIIAuthStats checks auth_cmds and auth_errors, which count
// well-formed authentication attempts and the failed ones, and
// auth_enabled_ascii, which names the auth file.
func TestASCIIAuthStats(t *testing.T) {
	path := writeAuthFile(t, authFileText)
	for name, addr := range authServers(t, path) {
		t.Run(name, func(t *testing.T) {
			c := testutil.Dial(t, addr)
			for _, s := range []authStep{
				{"set x 0 0 1\r\nx\r\n", "CLIENT_ERROR bad authentication token format\r\n"},
				{"set x 0 0 8\r\nalice pw\r\n", "CLIENT_ERROR authentication failure\r\n"},
				{"set x 0 0 12\r\nalice secret\r\n", "STORED\r\n"},
			} {
				c.Send([]byte(s.send))
				if got := c.ReadReply(testutil.LineReply); string(got) != s.want {
					t.Fatalf("%q: got %q, want %q", s.send, got, s.want)
				}
			}
			stats := readStats(t, c, "stats\r\n")
			if stats["auth_cmds"] != "2" || stats["auth_errors"] != "1" {
				t.Errorf("auth_cmds %q, auth_errors %q; want 2 and 1", stats["auth_cmds"], stats["auth_errors"])
			}
			if got := readStats(t, c, "stats settings\r\n")["auth_enabled_ascii"]; got != path {
				t.Errorf("auth_enabled_ascii = %q, want %q", got, path)
			}
			readStats(t, c, "stats reset\r\n")
			stats = readStats(t, c, "stats\r\n")
			if stats["auth_cmds"] != "0" || stats["auth_errors"] != "0" {
				t.Errorf("after stats reset: auth_cmds %q, auth_errors %q; want 0", stats["auth_cmds"], stats["auth_errors"])
			}
		})
	}
}

// readStats sends a stats request and returns its values by name.
func readStats(t *testing.T, c *testutil.Conn, req string) map[string]string {
	t.Helper()
	c.Send([]byte(req))
	m := map[string]string{}
	for _, l := range strings.Split(string(c.ReadReply(testutil.AnyReply)), "\r\n") {
		if f := strings.SplitN(l, " ", 3); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}

// TestASCIIAuthPipelined checks that corvid answers each of several
// requests that arrive together before and after authentication.
// (memcached 1.6.18 writes only the last reply of those it handled before
// authenticating in one read, so this is not compared with it.)
func TestASCIIAuthPipelined(t *testing.T) {
	path := writeAuthFile(t, authFileText)
	addr := testutil.StartCorvid(t, server.Config{AuthFile: path})
	c := testutil.Dial(t, addr)
	c.Send([]byte("get a\r\nset x 0 0 8\r\nalice no\r\nset x 0 0 12\r\nalice secret\r\nset a 0 0 1\r\n1\r\nget a\r\n"))
	for _, want := range []string{
		"CLIENT_ERROR unauthenticated\r\n",
		"CLIENT_ERROR authentication failure\r\n",
		"STORED\r\n",
		"STORED\r\n",
		"VALUE a 0 1\r\n1\r\nEND\r\n",
	} {
		if got := c.ReadReply(testutil.AnyReply); string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestAuthFileErrors checks that New refuses an auth file memcached
// refuses at start-up, and accepts an empty one (then no client can
// authenticate).
func TestAuthFileErrors(t *testing.T) {
	for _, text := range []string{"nocolon\n", "a:b\n\nc:d\n", "a:b\n" + strings.Repeat("x", 255) + ":p\n", "\x00:p\n"} {
		path := writeAuthFile(t, text)
		s, err := server.New(server.Config{AuthFile: path, TCPAddrs: []string{"127.0.0.1:0"}})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, server.ErrAuthFileMalformed) {
			t.Errorf("auth file %q: New error %v, want ErrAuthFileMalformed", text, err)
		}
	}
	if _, err := server.New(server.Config{AuthFile: "/nonexistent/auth", TCPAddrs: []string{"127.0.0.1:0"}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing auth file: New error %v, want os.ErrNotExist", err)
	}
	addr := testutil.StartCorvid(t, server.Config{AuthFile: writeAuthFile(t, "")})
	c := testutil.Dial(t, addr)
	c.Send([]byte("set x 0 0 1\r\n\x00\r\nset x 0 0 3\r\n: :\r\n"))
	for _, want := range []string{"CLIENT_ERROR bad authentication token format\r\n", "CLIENT_ERROR authentication failure\r\n"} {
		if got := c.ReadReply(testutil.LineReply); string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

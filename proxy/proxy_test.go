package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

func TestBasicCommands(t *testing.T) {
	backends := startCorvids(t, 3)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	defer c.Close()
	steps := []struct {
		req, want string
		kind      testutil.ReplyKind
	}{
		{"set a 0 0 1\r\nx\r\n", "STORED\r\n", testutil.LineReply},
		{"get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n", testutil.ValuesReply},
		{"version\r\n", "VERSION 1.6.18\r\n", testutil.LineReply},
		{"set n 0 0 1 noreply\r\n5\r\nincr n 3\r\n", "8\r\n", testutil.LineReply},
		{"delete a\r\n", "DELETED\r\n", testutil.LineReply},
		{"get a\r\n", "END\r\n", testutil.ValuesReply},
		{"verbosity 1\r\n", "SERVER_ERROR verbosity is not supported by the proxy\r\n", testutil.LineReply},
		{"flush_all\r\n", "OK\r\n", testutil.LineReply},
		{"get n\r\n", "END\r\n", testutil.ValuesReply},
		{"bogus\r\n", "ERROR\r\n", testutil.LineReply},
		{"ms m 2 q\r\nhi\r\nmg m v\r\n", "VA 2\r\nhi\r\n", testutil.AnyReply},
		{"mg zz v q\r\nmn\r\n", "MN\r\n", testutil.LineReply},
	}
	for _, s := range steps {
		if got := roundTrip(c, s.req, s.kind); got != s.want {
			t.Errorf("%q: got %q, want %q", s.req, got, s.want)
		}
	}
}

func TestMultiGetOrder(t *testing.T) {
	backends := startCorvids(t, 3)
	_, addr := proxyFor(t, backends)
	c := testutil.Dial(t, addr)
	defer c.Close()
	var keys []string
	var want strings.Builder
	for i := range 200 {
		k := fmt.Sprintf("key%d", i)
		keys = append(keys, k)
		if i%3 != 0 {
			if got := roundTrip(c, fmt.Sprintf("set %s %d 0 %d\r\n%s\r\n", k, i, len(k), k), testutil.LineReply); got != "STORED\r\n" {
				t.Fatalf("set: %q", got)
			}
			fmt.Fprintf(&want, "VALUE %s %d %d\r\n%s\r\n", k, i, len(k), k)
		}
	}
	want.WriteString("END\r\n")
	got := roundTrip(c, "get "+strings.Join(keys, " ")+"\r\n", testutil.ValuesReply)
	if got != want.String() {
		t.Fatalf("multi-get:\n got %q\nwant %q", testutil.Quote([]byte(got), 300), testutil.Quote([]byte(want.String()), 300))
	}
}

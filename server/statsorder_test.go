package server_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/corvidcache/corvid/server"
)

// A command's counters are in "stats" once its reply has arrived, as in
// memcached, whose workers count a command before they send its reply: a
// client that asks another connection for stats right after a reply finds
// its command counted, in both serving modes.
func TestStatsCountBeforeReply(t *testing.T) {
	for _, loops := range []int{0, 2} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			_, addr := startServer(t, server.Config{EventLoops: loops})
			c, a := dialAdmin(t, addr), dialAdmin(t, addr)
			for i := 1; i <= 200; i++ {
				if r := c.do("get k\r\n"); r != "END\r\n" {
					t.Fatalf("get: %q", r)
				}
				if got := stat(a, "stats\r\n", "cmd_get"); got != strconv.Itoa(i) {
					t.Fatalf("after %d gets answered, cmd_get %s", i, got)
				}
				if r := c.do("flush_all\r\n"); r != "OK\r\n" {
					t.Fatalf("flush_all: %q", r)
				}
				if got := stat(a, "stats\r\n", "cmd_flush"); got != strconv.Itoa(i) {
					t.Fatalf("after %d flush_all answered, cmd_flush %s", i, got)
				}
			}
		})
	}
}

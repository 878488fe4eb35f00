package proxy

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// A request written while an older one still awaits its reply times out
// once it is the oldest and its own deadline has passed, though that
// deadline is earlier than the older request's (a reload shortened
// timeout:) or the older request has none (a reload added timeout:): the
// read deadline armed for the older request must not stand in for the
// newer one's, whether the older one is answered before the newer one is
// due or after.
func TestServerTimeoutAfterReloadWithRequestInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		// late: the first request is answered after the second's
		// deadline has passed.
		late bool
	}{
		{"shortened", []string{"timeout: 60000"}, false},
		{"added", nil, false},
		{"shortened late", []string{"timeout: 60000"}, true},
		{"added late", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 2)
			// The server answers the first request only once the second
			// has come, then never answers again.
			srv := testutil.FakeServer(t, func(nc net.Conn) {
				sc := bufio.NewScanner(nc)
				for sc.Scan() {
					got <- sc.Text()
					if sc.Text() == "get second" {
						if tc.late {
							time.Sleep(600 * time.Millisecond)
						}
						if _, err := nc.Write([]byte("END\r\n")); err != nil {
							return
						}
					}
				}
			})
			p, addr := proxyFor(t, []string{srv}, tc.extra...)
			c := testutil.Dial(t, addr)
			defer c.Close()
			c.Send([]byte("get first\r\n"))
			if r := <-got; r != "get first" {
				t.Fatalf("server read %q", r)
			}
			const timeout = 200 * time.Millisecond
			if err := p.Reload(parseConf(t, poolYAML("127.0.0.1:0", []string{srv}, "timeout: 200"))); err != nil {
				t.Fatal(err)
			}
			c.Send([]byte("get second\r\n"))
			if r := string(c.ReadReply(testutil.LineReply)); r != "END\r\n" {
				t.Fatalf("first reply %q", r)
			}
			start := time.Now()
			if r, err := c.TryReadReply(testutil.LineReply); err != nil || string(r) != "SERVER_ERROR Connection timed out\r\n" {
				t.Fatalf("second request, %v after the first was answered: reply %q, %v (want a timeout after about %v)",
					time.Since(start), r, err, timeout)
			}
			if s := p.Stats().Pools[0].Servers[0]; s.ServerTimedout != 1 {
				t.Errorf("server_timedout %d, want 1", s.ServerTimedout)
			}
		})
	}
}

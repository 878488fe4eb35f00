package proxy

import (
	"fmt"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestStatsShowEjected checks that a snapshot marks the server
// auto_eject_hosts took out of the continuum, and only that one.
func TestStatsShowEjected(t *testing.T) {
	dead := testutil.RefusedAddr(t)
	live := startCorvids(t, 1)[0]
	addrs := []string{dead, live}
	p, addr := proxyFor(t, addrs, "auto_eject_hosts: true", "server_failure_limit: 1", "server_retry_timeout: 600000")
	for _, s := range p.Stats().Pools[0].Servers {
		if s.Ejected {
			t.Fatalf("%s ejected before any request", s.Name)
		}
	}
	placement := testRing(t, addrs)
	deadKey := ""
	for i := 0; deadKey == "" && i < 1000; i++ {
		if k := fmt.Sprintf("k%d", i); placement.PickString(k) == 0 {
			deadKey = k
		}
	}
	c := testutil.Dial(t, addr)
	defer c.Close()
	roundTrip(c, "get "+deadKey+"\r\n", testutil.LineReply)
	testutil.WaitFor(t, func() bool { return p.Stats().Pools[0].Servers[0].Ejected })
	if s := p.Stats().Pools[0]; s.Servers[1].Ejected || s.ServerEjects != 1 {
		t.Errorf("after ejecting %s: %+v", dead, s)
	}
}

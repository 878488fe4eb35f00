package testutil

import (
	"fmt"
	"net"
	"testing"
)

// A port taken between picking it and nutcracker binding it costs a retry
// with new ports, not the test.
func TestStartNutcrackerPicksPortsAgain(t *testing.T) {
	if NutcrackerPath() == "" {
		t.Skip("nutcracker is not installed")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	listen := StartNutcracker(t, 1, func(listen []string) string {
		calls++
		addr := listen[0]
		if calls == 1 {
			addr = taken.Addr().String() // as if another process got there first
		}
		return fmt.Sprintf("pool:\n  listen: %s\n  servers:\n   - 127.0.0.1:1:1\n", addr)
	})
	if calls != 2 {
		t.Fatalf("conf asked for %d times, want 2", calls)
	}
	c, err := net.Dial("tcp", listen[0])
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// TestStatsConnsWatcherLeftLoop checks that a watcher an event loop hands
// to a goroutine is listed under the descriptor it has then, not under
// the number it had in the loop, which the next accepted connection may
// take. The server runs in this process, so each listed descriptor must
// be a socket whose peer is the address listed with it.
func TestStatsConnsWatcherLeftLoop(t *testing.T) {
	srv := testutil.ServeCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}, EventLoops: 1})
	addr := srv.Addrs()[0].String()
	dial := func() net.Conn {
		nc, err := net.DialTimeout("tcp", addr, replyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		return nc
	}
	watcher := dial()
	io.WriteString(watcher, "watch fetchers\r\n")
	if l, err := bufio.NewReader(watcher).ReadString('\n'); l != "OK\r\n" {
		t.Fatalf("watch: %q %v", l, err)
	}
	other := dial()
	io.WriteString(other, "version\r\n")
	bufio.NewReader(other).ReadString('\n')
	// The watcher leaves the loop after its OK: until then it may be
	// listed under the number it is giving up.
	var problems []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		problems = checkConnsDescriptors(statsConns(t, dial))
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// checkConnsDescriptors checks each client listed in "stats conns" lines
// against its descriptor in this process.
func checkConnsDescriptors(lines []string) (problems []string) {
	listed := 0
	for _, l := range lines {
		m := statsConnRE.FindStringSubmatch(l)
		if m == nil || m[2] != "addr" || !strings.HasPrefix(m[3], "tcp:") {
			continue
		}
		fd, _ := strconv.Atoi(m[1])
		sa, err := syscall.Getpeername(fd)
		if err != nil {
			if errors.Is(err, syscall.ENOTCONN) {
				continue // the listener
			}
			problems = append(problems, fmt.Sprintf("descriptor %d listed for %s: %v", fd, m[3], err))
			continue
		}
		in4, ok := sa.(*syscall.SockaddrInet4)
		if !ok {
			problems = append(problems, fmt.Sprintf("descriptor %d listed for %s: peer %v", fd, m[3], sa))
			continue
		}
		peer := netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)).String()
		if "tcp:"+peer != m[3] {
			problems = append(problems, fmt.Sprintf("descriptor %d listed for %s is the socket of %s", fd, m[3], peer))
		}
		listed++
	}
	if listed < 3 {
		problems = append(problems, fmt.Sprintf("%d clients listed, want 3", listed))
	}
	return problems
}

package testutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeServer listens on a loopback port and runs handle for each
// connection it accepts, on a goroutine of its own; the connection is
// closed when handle returns. When the test ends the listener and every
// open connection are closed and the goroutines waited for. It returns
// the address.
func FakeServer(t testing.TB, handle func(nc net.Conn)) string {
	t.Helper()
	return FakeServerOn(t, "tcp", "127.0.0.1:0", handle)
}

// FakeServerOn is FakeServer listening on network and address: a Unix
// socket path, or a TCP address. It returns the address it listens on.
func FakeServerOn(t testing.TB, network, address string, handle func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				handle(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// FakeMetadump starts a FakeServer that answers "lru_crawler metadump"
// with a key line (k0, k1, ...) every interval, n lines then END (n 0:
// forever, until the connection or the test ends), and every "mg" line
// with mg's reply for it (the request line, without its CRLF). Other
// requests get no answer.
func FakeMetadump(t testing.TB, interval time.Duration, n int, mg func(req string) string) string {
	t.Helper()
	return FakeServer(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		for {
			req, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(req, "mg "):
				io.WriteString(nc, mg(strings.TrimRight(req, "\r\n")))
			case strings.HasPrefix(req, "lru_crawler metadump"):
				if !fakeDump(nc, interval, n) {
					return
				}
			}
		}
	})
}

// fakeDump writes FakeMetadump's key lines; false when the connection
// failed.
func fakeDump(nc net.Conn, interval time.Duration, n int) bool {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; n == 0 || i < n; i++ {
		<-tick.C
		if _, err := fmt.Fprintf(nc, "key=k%d exp=-1 la=0 cas=%d fetch=no cls=1 size=60\n", i, i+1); err != nil {
			return false
		}
	}
	_, err := io.WriteString(nc, "END\r\n")
	return err == nil
}

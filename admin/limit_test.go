package admin

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestConnectionLimit checks that the admin port holds at most
// Config.MaxConns connections: a client beyond them is closed at once,
// so peers that open connections and never finish a request cannot use
// up the process's descriptors, which the cache's clients need too.
func TestConnectionLimit(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Listen("127.0.0.1:0", Config{MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr().String()
	var held []net.Conn
	defer func() {
		for _, nc := range held {
			nc.Close()
		}
	}()
	for range 3 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, nc)
		if _, err := nc.Write([]byte("GET /metrics HTTP/1.1\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	// Requests of held connections are not complete: a fourth client is
	// closed without an answer. Its request is sent complete.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(nc)
	nc.Close()
	// Closed with the request unread, the socket may be reset: only a
	// reply or no close at all is wrong.
	var ne net.Error
	if len(got) > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("client beyond MaxConns: got %q (%d bytes), %v; want it closed without a reply", got[:min(len(got), 40)], len(got), err)
	}
	// Once a held connection closes, clients are served again.
	held[0].Close()
	held = held[1:]
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; ; i++ {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			break
		}
		if i == 50 {
			t.Fatalf("not served after a held connection closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

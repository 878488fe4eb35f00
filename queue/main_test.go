package queue_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corvidcache/corvid/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a queue server on 127.0.0.1, stopped by the test's cleanup.
type testServer struct {
	*queue.Server
	addr    string
	backend queue.Backend
	stop    func()
}

func startServer(t *testing.T, cfg queue.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backend == nil {
		cfg.Backend = &queue.MemBackend{}
	}
	cfg.Listener = ln
	s, err := queue.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	ts := &testServer{Server: s, addr: ln.Addr().String(), backend: cfg.Backend}
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

func configYAML(t *testing.T, y string) *queue.FileConfig {
	t.Helper()
	fc, err := queue.ParseConfig([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return fc
}

// client is a raw text-protocol connection.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line per want.
func (c *client) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		if got := c.line(); got != w {
			c.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// do sends a command and checks the reply lines.
func (c *client) do(cmd string, want ...string) {
	c.t.Helper()
	c.send(cmd + "\r\n")
	c.expect(want...)
}

func (c *client) set(q, data string) {
	c.t.Helper()
	c.do(fmt.Sprintf("set %s 0 0 %d\r\n%s", q, len(data), data), "STORED")
}

// get sends a get and returns the item's data, or "" with false at END.
func (c *client) get(key string) (string, bool) {
	c.t.Helper()
	c.send("get " + key + "\r\n")
	l := c.line()
	if l == "END" {
		return "", false
	}
	f := strings.Fields(l)
	if len(f) != 4 || f[0] != "VALUE" {
		c.t.Fatalf("get %s: got %q", key, l)
	}
	n, _ := strconv.Atoi(f[3])
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		c.t.Fatal(err)
	}
	c.expect("END")
	return string(buf[:n]), true
}

func (c *client) mustGet(key, want string) {
	c.t.Helper()
	got, ok := c.get(key)
	if !ok || got != want {
		c.t.Fatalf("get %s = %q, %v; want %q", key, got, ok, want)
	}
}

func (c *client) mustMiss(key string) {
	c.t.Helper()
	if got, ok := c.get(key); ok {
		c.t.Fatalf("get %s = %q; want END", key, got)
	}
}

// closed reports whether the server closed the connection.
func (c *client) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.r.ReadByte()
	return err != nil
}

// stat returns one stat of the server.
func (s *testServer) stat(name string) string {
	for _, kv := range s.Stats() {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

package testutil

import (
	"net"
	"testing"
	"time"
)

// serveOnce accepts one connection on a loopback listener and writes out to
// it; the returned Conn is connected to it.
func serveOnce(t *testing.T, out string) *Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(out))
		c.Close()
	}()
	t.Cleanup(func() { <-done })
	c := Dial(t, ln.Addr().String())
	c.Timeout = time.Second
	return c
}

func TestReadReply(t *testing.T) {
	const stream = "STORED\r\n" +
		"VALUE k 0 5\r\na\r\nbc\r\nVALUE j 1 0 7\r\n\r\nEND\r\n" +
		"END\r\n" +
		"VALUE k 0 1\r\na\r\nCLIENT_ERROR bad command line format\r\n" +
		"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n" +
		"ERROR\r\n" +
		"VALUE k 0 1\r\nb\r\nEND\r\n"
	c := serveOnce(t, stream)
	for _, tc := range []struct {
		kind ReplyKind
		want string
	}{
		{LineReply, "STORED\r\n"},
		{ValuesReply, "VALUE k 0 5\r\na\r\nbc\r\nVALUE j 1 0 7\r\n\r\nEND\r\n"},
		{ValuesReply, "END\r\n"},
		{ValuesReply, "VALUE k 0 1\r\na\r\nCLIENT_ERROR bad command line format\r\n"},
		{StatsReply, "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n"},
		{AnyReply, "ERROR\r\n"},
		{AnyReply, "VALUE k 0 1\r\nb\r\nEND\r\n"},
	} {
		if got := c.ReadReply(tc.kind); string(got) != tc.want {
			t.Errorf("ReadReply(%d) = %q, want %q", tc.kind, got, tc.want)
		}
	}
	if got, err := c.TryReadReply(LineReply); err == nil {
		t.Errorf("read %q after the end of the stream, want an error", got)
	}
}

func TestReadReplyIncomplete(t *testing.T) {
	c := serveOnce(t, "VALUE k 0 10\r\nabc")
	got, err := c.TryReadReply(ValuesReply)
	if err == nil {
		t.Fatalf("TryReadReply = %q, want an error for a truncated value", got)
	}
}

// TestReadReplyOddKeys reads replies whose keys hold white space other than
// spaces, which servers allow in keys: a key is one field however it looks.
func TestReadReplyOddKeys(t *testing.T) {
	const stream = "VALUE a\tb 0 3 7\r\nx y\r\nVALUE \xc2\xa0 1 1\r\nz\r\nVALUE k\r 0 2\r\nab\r\nEND\r\n" +
		"VA 2 ka\vb\r\ncd\r\n"
	c := serveOnce(t, stream)
	for _, want := range []string{
		"VALUE a\tb 0 3 7\r\nx y\r\nVALUE \xc2\xa0 1 1\r\nz\r\nVALUE k\r 0 2\r\nab\r\nEND\r\n",
		"VA 2 ka\vb\r\ncd\r\n",
	} {
		if got, err := c.TryReadReply(AnyReply); string(got) != want || err != nil {
			t.Errorf("TryReadReply = %q, %v; want %q", got, err, want)
		}
	}
}

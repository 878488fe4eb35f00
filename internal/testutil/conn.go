package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// ReplyKind says which reply Conn.ReadReply waits for.
type ReplyKind int

const (
	// LineReply is one line, such as "STORED" or "CLIENT_ERROR ...".
	LineReply ReplyKind = iota
	// ValuesReply is the reply to a retrieval command: any number of
	// "VALUE key flags bytes [cas]" lines, each followed by its data block,
	// ending with "END". Any other line also ends it (an error after a
	// partial reply, or an error instead of it).
	ValuesReply
	// StatsReply is "STAT name value" lines ending with "END"; any other
	// line also ends it.
	StatsReply
	// AnyReply decides from the first line: a ValuesReply if it starts with
	// "VALUE ", a StatsReply if it starts with "STAT ", a MetaValueReply if
	// it starts with "VA ", else a LineReply.
	AnyReply
	// MetaValueReply is a meta command's "VA <bytes> <flags>*" line and
	// its data block.
	MetaValueReply
)

const (
	// DefaultTimeout is how long a Conn waits for one reply or one write.
	DefaultTimeout = 5 * time.Second
	// maxLine bounds a reply line, so that a server writing garbage fails
	// the test instead of exhausting memory.
	maxLine = 64 << 10
	// maxValue bounds the data block a VALUE line may announce.
	maxValue = 64 << 20
)

// Conn is a raw text-protocol connection for tests: it writes bytes as given
// and reads replies whole. It is not safe for concurrent use.
type Conn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
	// Timeout bounds each Send and each ReadReply; DefaultTimeout unless
	// changed.
	Timeout time.Duration
}

// Dial connects to addr. The connection is closed when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, DefaultTimeout)
	if err != nil {
		t.Fatalf("cannot dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, r: bufio.NewReaderSize(nc, 64<<10), Timeout: DefaultTimeout}
}

// NewConn wraps a connection the test made itself (a TLS one, say). It is
// closed when the test ends.
func NewConn(t testing.TB, nc net.Conn) *Conn {
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, r: bufio.NewReaderSize(nc, 64<<10), Timeout: DefaultTimeout}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Send writes b, failing the test on error.
func (c *Conn) Send(b []byte) {
	c.t.Helper()
	if err := c.TrySend(b); err != nil {
		c.t.Fatalf("cannot send %s: %v", Quote(b, 200), err)
	}
}

// TrySend writes b and returns the error instead of failing the test.
func (c *Conn) TrySend(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.Timeout))
	_, err := c.nc.Write(b)
	return err
}

// ReadReply reads exactly one complete reply of the given kind, failing the
// test when none arrives within Timeout.
func (c *Conn) ReadReply(kind ReplyKind) []byte {
	c.t.Helper()
	reply, err := c.TryReadReply(kind)
	if err != nil {
		c.t.Fatalf("cannot read reply: %v (read so far: %s)", err, Quote(reply, 200))
	}
	return reply
}

// TryReadReply reads one reply like ReadReply but returns the error, with
// whatever part of the reply was read.
func (c *Conn) TryReadReply(kind ReplyKind) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.Timeout))
	var reply []byte
	line, err := c.readLine()
	reply = append(reply, line...)
	if err != nil {
		return reply, err
	}
	if kind == AnyReply {
		switch {
		case bytes.HasPrefix(line, []byte("VALUE ")):
			kind = ValuesReply
		case bytes.HasPrefix(line, []byte("STAT ")):
			kind = StatsReply
		case bytes.HasPrefix(line, []byte("VA ")):
			kind = MetaValueReply
		default:
			kind = LineReply
		}
	}
	for {
		switch {
		case kind == LineReply:
			return reply, nil
		case kind == MetaValueReply:
			n, err := metaValueLen(line)
			if err != nil {
				return reply, err
			}
			data := make([]byte, n+2)
			_, err = io.ReadFull(c.r, data)
			return append(reply, data...), err
		case kind == ValuesReply && bytes.HasPrefix(line, []byte("VALUE ")):
			n, err := valueLen(line)
			if err != nil {
				return reply, err
			}
			data := make([]byte, n+2)
			if _, err := io.ReadFull(c.r, data); err != nil {
				return append(reply, data...), err
			}
			reply = append(reply, data...)
		case kind == StatsReply && bytes.HasPrefix(line, []byte("STAT ")):
		default: // "END", or an error line ending the block
			return reply, nil
		}
		line, err = c.readLine()
		reply = append(reply, line...)
		if err != nil {
			return reply, err
		}
	}
}

// readLine reads through the next "\n", which it includes.
func (c *Conn) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
		if len(line) > maxLine {
			return line, fmt.Errorf("reply line longer than %d bytes", maxLine)
		}
	}
}

// valueLen returns the bytes field of a "VALUE key flags bytes [cas]" line.
func valueLen(line []byte) (int, error) {
	f := replyFields(line)
	if len(f) != 4 && len(f) != 5 {
		return 0, fmt.Errorf("malformed VALUE line %q", line)
	}
	n, err := strconv.Atoi(string(f[3]))
	if err != nil || n < 0 || n > maxValue {
		return 0, fmt.Errorf("bad length in VALUE line %q", line)
	}
	return n, nil
}

// metaValueLen returns the bytes field of a "VA <bytes> <flags>*" line.
func metaValueLen(line []byte) (int, error) {
	f := replyFields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed VA line %q", line)
	}
	n, err := strconv.Atoi(string(f[1]))
	if err != nil || n < 0 || n > maxValue {
		return 0, fmt.Errorf("bad length in VA line %q", line)
	}
	return n, nil
}

// replyFields splits a reply line, without its line end, at single spaces,
// as servers separate its fields: a key in it may hold other white space
// (a tab, a carriage return).
func replyFields(line []byte) [][]byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return bytes.Split(line, []byte(" "))
}

// Quote formats b for a failure message: Go-quoted, cut to limit bytes with
// the total length noted when longer.
func Quote(b []byte, limit int) string {
	if len(b) <= limit {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%s...(%d bytes)", strconv.Quote(string(b[:limit])), len(b))
}

package mctool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPort is the port ParseAddr adds to a bare host, as memcached-tool
// does.
const DefaultPort = "11211"

// DefaultTimeout bounds a connect and each wait for a reply when a Conn is
// dialed with no timeout.
const DefaultTimeout = 5 * time.Second

// maxLine bounds a reply line; memcached's longest (a stats value, a
// metadump line) are far shorter.
const maxLine = 64 << 10

// Error is an error about one server (or one address that names none).
// Its text names the address; errors.Is matches ErrAddress,
// ErrNotMemcached, ErrTimeout or the cause of a failed connect.
type Error struct {
	Addr   string
	Detail string // what went wrong, without the address
	Err    error
}

func (e *Error) Error() string { return e.Addr + ": " + e.Detail }

// Unwrap returns the sentinel or the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// ParseAddr checks a server address and returns it as host:port. A bare
// host gets DefaultPort.
func ParseAddr(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", &Error{Addr: strconv.Quote(s), Detail: "malformed address: " + why, Err: ErrAddress}
	}
	if s == "" {
		return bad("empty (want host:port)")
	}
	if strings.ContainsAny(s, " \t\r\n/") {
		return bad("want host:port")
	}
	if !strings.Contains(s, ":") {
		s += ":" + DefaultPort
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return bad("want host:port")
	}
	if host == "" {
		return bad("no host (want host:port)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
	}
	return net.JoinHostPort(host, port), nil
}

// Conn is one connection to a memcached-protocol server. Every wait for
// the server (connect, each reply line or data block) is bounded by the
// timeout it was dialed with, and by its context; a context that reaches
// its deadline makes the Conn's methods return an *Error naming the
// server and the context's cause (see context.WithTimeoutCause). A Conn
// is not safe for concurrent use.
type Conn struct {
	ctx     context.Context
	addr    string
	nc      net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	stop    func() bool // ends the context watch
	// replyBy, when set, bounds every wait until the whole reply is in
	// (for short replies such as stats), so that a server trickling
	// lines cannot hold the Conn past its timeout.
	replyBy time.Time
	bin     *Conn // for binary requests, dialed on first use
}

// Dial connects to addr (host:port, see ParseAddr) within timeout
// (DefaultTimeout when 0). Cancelling ctx interrupts any wait of the Conn.
func Dial(ctx context.Context, addr string, timeout time.Duration) (*Conn, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", a)
	if err != nil {
		if ctx.Err() != nil {
			return nil, stopped(ctx, a)
		}
		return nil, &Error{Addr: a, Detail: "cannot connect: " + dialReason(err, timeout), Err: err}
	}
	c := &Conn{ctx: ctx, addr: a, nc: nc, r: bufio.NewReaderSize(nc, maxLine), w: bufio.NewWriterSize(nc, 64<<10), timeout: timeout}
	c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	return c, nil
}

// dialReason says briefly why a connect failed.
func dialReason(err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer within " + timeout.String()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sc *os.SyscallError
		if errors.As(op.Err, &sc) {
			return sc.Err.Error()
		}
		return op.Err.Error()
	}
	return err.Error()
}

// stopped returns the error of a wait for addr that ctx ended: a
// deadline (a tool's --deadline) becomes an *Error naming the server and
// the context's cause; a cancel is returned as it is.
func stopped(ctx context.Context, addr string) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Addr: addr, Detail: "stopped: " + context.Cause(ctx).Error(), Err: err}
	}
	return err
}

// Addr returns the server's host:port.
func (c *Conn) Addr() string { return c.addr }

// Close closes the connection.
func (c *Conn) Close() error {
	if c.bin != nil {
		c.bin.Close()
	}
	c.stop()
	return c.nc.Close()
}

// fail turns an I/O error into one that names the server.
func (c *Conn) fail(err error) error {
	if c.ctx.Err() != nil {
		return stopped(c.ctx, c.addr)
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return &Error{Addr: c.addr, Detail: "no reply within " + c.timeout.String() + " (is it a memcached server?)", Err: ErrTimeout}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &Error{Addr: c.addr, Detail: "the server closed the connection (is it a memcached server?)", Err: ErrNotMemcached}
	case errors.Is(err, bufio.ErrBufferFull):
		return &Error{Addr: c.addr, Detail: "not a memcached server: it sent a line longer than 64 KB", Err: ErrNotMemcached}
	}
	return &Error{Addr: c.addr, Detail: err.Error(), Err: err}
}

// garbage reports a reply that memcached would not send.
func (c *Conn) garbage(what string, line []byte) error {
	if len(line) > 60 {
		line = append(line[:60:60], "..."...)
	}
	return &Error{Addr: c.addr, Detail: fmt.Sprintf("not a memcached server: %s answered %q", what, line), Err: ErrNotMemcached}
}

// refused reports a memcached error line answering a command.
func (c *Conn) refused(what string, line []byte) error {
	return &Error{Addr: c.addr, Detail: fmt.Sprintf("%s: the server answered %q", what, line)}
}

// isErrorLine reports whether line is one of memcached's error replies.
func isErrorLine(line []byte) bool {
	s := string(line)
	return s == "ERROR" || strings.HasPrefix(s, "ERROR ") || strings.HasPrefix(s, "CLIENT_ERROR") || strings.HasPrefix(s, "SERVER_ERROR")
}

// arm sets the deadline of the next wait. The context's watch sets a
// deadline in the past when it is cancelled; arm must not undo that, so
// it checks the context after setting its own.
func (c *Conn) arm() error {
	if c.ctx.Err() != nil {
		return stopped(c.ctx, c.addr)
	}
	deadline := time.Now().Add(c.timeout)
	if !c.replyBy.IsZero() {
		deadline = c.replyBy
	}
	c.nc.SetDeadline(deadline)
	if c.ctx.Err() != nil {
		c.nc.SetDeadline(time.Now())
		return stopped(c.ctx, c.addr)
	}
	return nil
}

// send writes a request and flushes it.
func (c *Conn) send(req string) error {
	if err := c.arm(); err != nil {
		return err
	}
	c.w.WriteString(req) // an error stays in c.w for Flush
	return c.flush()
}

// sendBytes is send for a request in a []byte, which it does not copy.
func (c *Conn) sendBytes(req []byte) error {
	if err := c.arm(); err != nil {
		return err
	}
	c.w.Write(req) // an error stays in c.w for Flush
	return c.flush()
}

func (c *Conn) flush() error {
	if err := c.w.Flush(); err != nil {
		return c.fail(err)
	}
	return nil
}

// line reads one reply line without its line end. The slice is valid
// until the next read.
func (c *Conn) line() ([]byte, error) {
	if err := c.arm(); err != nil {
		return nil, err
	}
	b, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, c.fail(err)
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, nil
}

// data reads an n-byte data block and its \r\n.
func (c *Conn) data(n int) ([]byte, error) {
	if err := c.arm(); err != nil {
		return nil, err
	}
	buf, _, err := readN(c.r, n+2)
	if err != nil {
		return nil, c.fail(err)
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return nil, c.garbage("a data block", buf[n:])
	}
	return buf[:n], nil
}

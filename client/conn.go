package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// conn is one connection to a server.
type conn struct {
	s  *node
	tc *trackedConn
	nc net.Conn // tc, as a net.Conn
	pk *peeker  // checks the connection when it leaves the pool
	r  *bufio.Reader
	w  []byte

	// reused is set when the connection came from the pool.
	reused bool
	// idleSince is when the connection went back to the pool.
	idleSince time.Time
	// callerDeadline is set by begin when the caller's context, not
	// Config.Timeout, set the deadline of the operation in progress.
	callerDeadline bool
	// opaque is the last opaque a meta request on the connection carried.
	opaque uint64
	// once is set by an operation whose request, though of a read op, may
	// change what the server answers next (an mg that can hand out a win
	// token): it is sent again only as a write is (see retryable).
	once bool
}

// trackedConn notes, for the operation in progress, whether any byte of a
// reply arrived and whether a write failed: what decides if a request may
// be sent again (see conn.retryable).
type trackedConn struct {
	net.Conn
	read        int64
	writeFailed bool
}

func (t *trackedConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.read += int64(n)
	return n, err
}

func (t *trackedConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	if err != nil {
		t.writeFailed = true
	}
	return n, err
}

// do runs fn on a connection to s and returns the connection to the pool.
// A request that failed on a pooled connection the server had closed is
// sent once more on a fresh connection when conn.retryable allows it.
func (c *Client) do(ctx context.Context, s *node, op string, fn func(cn *conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cn, err := s.getConn(ctx)
	if err != nil {
		return err
	}
	stop := cn.begin(ctx)
	err = fn(cn)
	if cn.retryable(op, err) && ctx.Err() == nil {
		if stop != nil && !stop() {
			cn.nc.Close()
			return ctx.Err()
		}
		cn.nc.Close() // the server closed it: not a failure
		if cn, err = s.dial(ctx); err != nil {
			return err
		}
		stop = cn.begin(ctx)
		err = fn(cn)
	}
	return c.finish(ctx, cn, stop, op, err)
}

// retryable reports whether a request that failed with err on cn may be
// sent again on a fresh connection. That is so only when the server had
// closed a pooled connection without being asked (it restarted, or
// expired the connection): cn came from the pool, the failure is the
// connection found closed (end of file, reset, broken pipe) and not one
// byte of a reply arrived. Even then a request the server may have
// executed before closing is not sent twice: only reads (op "gets",
// "gats", "mg", "mn", "version", "stats") are retried after the request
// was written; a write (set, delete, incr, append, ms ...), or an mg that
// can hand out a win token (cn.once), only when writing it failed, so
// that its end, which completes it, never reached the server.
func (cn *conn) retryable(op string, err error) bool {
	if err == nil || !cn.reused || cn.tc.read != 0 || !closedConn(err) {
		return false
	}
	if cn.tc.writeFailed {
		return true
	}
	if cn.once {
		return false
	}
	switch op {
	case "gets", "gats", "mg", "mn", "version", "stats":
		return true
	}
	return false
}

// closedConn reports whether err means the peer closed the connection.
func closedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// getConn returns an idle connection to s or dials one.
func (s *node) getConn(ctx context.Context) (*conn, error) {
	if s.c.closed.Load() {
		return nil, ErrClosed
	}
	if cn := s.idleConn(); cn != nil {
		return cn, nil
	}
	return s.dial(ctx)
}

// idleConn takes the most recently used idle connection that is neither
// past Config.IdleTimeout nor closed by the server, closing those that
// are; nil when none is left. A connection the server closed is dropped
// without counting a failure: servers close idle connections, and a
// restarted one closed all of them.
func (s *node) idleConn() *conn {
	var expired []*conn
	defer func() {
		for _, cn := range expired {
			cn.nc.Close()
		}
	}()
	s.mu.Lock()
	if t := s.c.cfg.IdleTimeout; t > 0 && len(s.free) > 0 {
		// The pool is in the order connections were returned: the
		// expired ones are at its start.
		now, i := s.c.now(), 0
		for i < len(s.free) && now.Sub(s.free[i].idleSince) >= t {
			i++
		}
		expired = append(expired, s.free[:i]...)
		n := copy(s.free, s.free[i:])
		clear(s.free[n:])
		s.free = s.free[:n]
	}
	for {
		n := len(s.free)
		if n == 0 {
			s.mu.Unlock()
			return nil
		}
		cn := s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		s.mu.Unlock()
		if cn.r.Buffered() == 0 && cn.pk.open(cn.tc.Conn) {
			cn.reused = true
			return cn
		}
		expired = append(expired, cn)
		s.mu.Lock()
	}
}

// dial makes a new connection to s.
func (s *node) dial(ctx context.Context) (*conn, error) {
	network := "tcp"
	if strings.HasPrefix(s.addr, "/") {
		network = "unix"
	}
	start := time.Now()
	dctx, cancel := context.WithDeadline(ctx, start.Add(s.c.cfg.DialTimeout))
	defer cancel()
	dial := s.c.cfg.DialContext
	switch {
	case dial != nil:
	case s.c.cfg.TLS != nil && network == "tcp":
		d := &tls.Dialer{Config: s.c.cfg.TLS}
		dial = d.DialContext
	default:
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(dctx, network, s.addr)
	if err != nil {
		dl, ok := ctx.Deadline()
		if cerr := s.fault(ctx, ok && !dl.After(start.Add(s.c.cfg.DialTimeout)), err); cerr != nil {
			err = cerr
		}
		return nil, &ServerError{Addr: s.addr, Op: "dial", Err: err}
	}
	tc := &trackedConn{Conn: nc}
	return &conn{s: s, tc: tc, nc: tc, pk: newPeeker(nc), r: bufio.NewReaderSize(tc, defaultReadBufferSize), w: make([]byte, 0, 1024)}, nil
}

// maxKeptWriteBuffer bounds the write buffer a pooled connection keeps: one
// grown by a large value or a long meta pipeline is dropped, not held for
// as long as the connection lives. A get line of GetMulti fits.
const maxKeptWriteBuffer = 2 * maxGetsLine

// writeBuffer returns cn.w emptied, with room for n bytes: a request
// larger than the buffer a pooled connection keeps is allocated once.
func (cn *conn) writeBuffer(n int) []byte {
	if cap(cn.w) < n {
		cn.w = make([]byte, 0, n)
	}
	return cn.w[:0]
}

// release returns cn, whose last reply was read whole, to its pool, or
// closes it when the pool is full or the client closed.
func (cn *conn) release() {
	s := cn.s
	cn.idleSince = s.c.now()
	if cap(cn.w) > maxKeptWriteBuffer {
		cn.w = nil
	}
	s.mu.Lock()
	if len(s.free) < s.c.cfg.MaxIdleConns && !s.c.closed.Load() {
		s.free = append(s.free, cn)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	cn.nc.Close()
}

// begin sets the connection's deadline from the timeout and ctx, and
// arranges for a cancellation of ctx to interrupt the I/O. The returned
// function must be called when the operation ends.
func (cn *conn) begin(ctx context.Context) (end func() bool) {
	cn.setDeadline(ctx)
	cn.tc.read, cn.tc.writeFailed = 0, false
	cn.once = false
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
}

// setDeadline sets the connection's deadline to Config.Timeout from now,
// or to ctx's deadline when that is sooner.
func (cn *conn) setDeadline(ctx context.Context) {
	d := time.Now().Add(cn.s.c.cfg.Timeout)
	dl, ok := ctx.Deadline()
	cn.callerDeadline = ok && !dl.After(d)
	if cn.callerDeadline {
		d = dl
	}
	cn.nc.SetDeadline(d)
}

// rearm restarts, from now, the wait for the reply to a request that
// begin started a while ago: a multi-get reads its servers' replies in
// turn, and the time it spent waiting for the others is not this server's
// delay. A deadline that the cancellation of ctx moved into the past stays
// there: ctx.Err is set before begin's callback runs.
func (cn *conn) rearm(ctx context.Context) {
	cn.setDeadline(ctx)
	if ctx.Err() != nil {
		cn.nc.SetDeadline(time.Unix(1, 0))
	}
}

// finish ends an operation on cn: it returns the connection to the pool
// when err leaves it usable (resumable), else closes it and lets fault
// decide whether the server failed.
func (c *Client) finish(ctx context.Context, cn *conn, stop func() bool, op string, err error) error {
	if stop != nil && !stop() {
		// The context was cancelled and its callback has moved, or is about
		// to move, the connection's deadline into the past: the connection
		// cannot be reused.
		cn.nc.Close()
		if err != nil {
			return ctx.Err()
		}
		return nil
	}
	if resumable(err) {
		cn.release()
		return cn.s.wrap(op, err)
	}
	cn.nc.Close()
	if cerr := cn.s.fault(ctx, cn.callerDeadline, err); cerr != nil {
		return cerr
	}
	return cn.s.wrap(op, err)
}

// fault is the one place that counts failures of s. err ended a dial or
// closed a connection; callerDeadline says whether the caller's context,
// not the client's own DialTimeout or Timeout, set the deadline of the
// dial or operation. A failure is counted only when err is the server's
// fault (serverFault) and the caller did not end the wait. When the
// caller did, fault returns the context's error to report instead: a
// socket deadline that was the context's may fire a moment before the
// context's own timer sets ctx.Err, and is context.DeadlineExceeded.
func (s *node) fault(ctx context.Context, callerDeadline bool, err error) (callerErr error) {
	switch {
	case !serverFault(err):
	case ctx.Err() != nil:
		return ctx.Err()
	case callerDeadline && isTimeout(err):
		return context.DeadlineExceeded
	default:
		s.fail()
	}
	return nil
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// wrap names the server in an error that is not a cache answer.
func (s *node) wrap(op string, err error) error {
	if err == nil || isAnswer(err) || err == ErrNotSupported {
		return err
	}
	return &ServerError{Addr: s.addr, Op: op, Err: err}
}

// isAnswer reports whether err is the server's answer about the key.
func isAnswer(err error) bool {
	return err == ErrCacheMiss || err == ErrNotStored || err == ErrCASConflict
}

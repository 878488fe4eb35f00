package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"time"
)

// conn is one connection to a server.
type conn struct {
	s  *node
	nc net.Conn
	r  *bufio.Reader
	w  []byte

	// callerDeadline is set by begin when the caller's context, not
	// Config.Timeout, set the deadline of the operation in progress.
	callerDeadline bool
}

// getConn returns an idle connection to s or dials one.
func (s *node) getConn(ctx context.Context) (*conn, error) {
	if s.c.closed.Load() {
		return nil, ErrClosed
	}
	s.mu.Lock()
	if n := len(s.free); n > 0 {
		cn := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		return cn, nil
	}
	s.mu.Unlock()
	network := "tcp"
	if strings.HasPrefix(s.addr, "/") {
		network = "unix"
	}
	start := time.Now()
	dctx, cancel := context.WithDeadline(ctx, start.Add(s.c.cfg.DialTimeout))
	defer cancel()
	dial := s.c.cfg.DialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(dctx, network, s.addr)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if byCaller(ctx, start.Add(s.c.cfg.DialTimeout), err) {
			err = context.DeadlineExceeded
		} else {
			s.fail()
		}
		return nil, &ServerError{Addr: s.addr, Op: "dial", Err: err}
	}
	return &conn{s: s, nc: nc, r: bufio.NewReaderSize(nc, defaultReadBufferSize), w: make([]byte, 0, 1024)}, nil
}

// release returns cn to its pool when err leaves it usable, else closes it
// and, for network errors, counts a failure.
func (cn *conn) release(err error) {
	s := cn.s
	if errors.Is(err, ErrNotSupported) {
		// The server answered, but what else it made of the request (the
		// data block of an "ms", further pipelined lines) is unknown.
		cn.nc.Close()
		return
	}
	if err != nil && !resumable(err) {
		cn.nc.Close()
		s.fail()
		return
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
	d := time.Now().Add(cn.s.c.cfg.Timeout)
	dl, ok := ctx.Deadline()
	cn.callerDeadline = ok && !dl.After(d)
	if cn.callerDeadline {
		d = dl
	}
	cn.nc.SetDeadline(d)
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
}

// finish ends an operation on cn: it returns the connection to the pool
// when err leaves it usable, else closes it, counting a failure of the
// server only for errors that are the server's.
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
	if err != nil && !resumable(err) && !errors.Is(err, ErrNotSupported) {
		// Interrupted by the caller, not by the server: no failure
		// counted. A socket deadline that was the context's may fire a
		// moment before the context's own timer sets ctx.Err.
		if ctx.Err() != nil {
			cn.nc.Close()
			return ctx.Err()
		}
		if cn.callerDeadline && isTimeout(err) {
			cn.nc.Close()
			return context.DeadlineExceeded
		}
	}
	cn.release(err)
	return cn.s.wrap(op, err)
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// byCaller reports whether err, from an operation whose own time limit was
// limit, is the caller's context ending (its deadline came first) rather
// than the server's fault.
func byCaller(ctx context.Context, limit time.Time, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !dl.After(limit) && isTimeout(err)
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

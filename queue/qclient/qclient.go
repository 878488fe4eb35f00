// Package qclient is a Go client for corvid queue and Kestrel servers.
//
// A Client spreads its work over several independent servers the way
// Kestrel clients do: Put writes to one live server (rotating, skipping
// a server that failed for RetryAfter), Get and Open read round-robin, trying
// every server once without waiting before blocking on one. Reads are
// either plain (Get: the server forgets the item when it sends it) or
// reliable (Open, then Confirm or Abort on the returned Read: an item whose
// reader disconnects or aborts goes back to the head of its queue).
//
// A Client is safe for concurrent use by multiple goroutines.
package qclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	// ErrNotStored is returned by Put when the queue is full or the item
	// too large.
	ErrNotStored = errors.New("qclient: not stored")
	// ErrNoServers is returned when every server is down.
	ErrNoServers = errors.New("qclient: no server available")
	// ErrServer is wrapped around an error line from a server.
	ErrServer = errors.New("qclient: server error")
	// ErrDone is returned by Confirm or Abort on a Read already ended.
	ErrDone = errors.New("qclient: read already confirmed or aborted")
)

// Client talks to a set of queue servers.
type Client struct {
	// Timeout bounds each network operation, plus any wait asked for
	// (default 2s).
	Timeout time.Duration
	// RetryAfter is how long a server that failed is skipped (default 1s).
	RetryAfter time.Duration
	// MaxIdle is how many idle connections are kept per server (default 4).
	MaxIdle int

	servers []*server
	mu      sync.Mutex // guards next, closed
	next    int
	closed  bool
}

// server is one server's address, health and idle connections.
type server struct {
	addr string

	mu        sync.Mutex // guards idle, downUntil
	idle      []*conn
	downUntil time.Time
}

type conn struct {
	nc net.Conn
	rw *bufio.ReadWriter
}

// New returns a client of the servers (host:port).
func New(servers ...string) *Client {
	c := &Client{}
	for _, a := range servers {
		c.servers = append(c.servers, &server{addr: a})
	}
	return c
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 2 * time.Second
}

// order returns the servers to try, starting with the next in turn and
// putting those marked down last.
func (c *Client) order() []*server {
	c.mu.Lock()
	start := c.next
	c.next++
	c.mu.Unlock()
	now := time.Now()
	var up, down []*server
	for i := range c.servers {
		s := c.servers[(start+i)%len(c.servers)]
		s.mu.Lock()
		isDown := now.Before(s.downUntil)
		s.mu.Unlock()
		if isDown {
			down = append(down, s)
		} else {
			up = append(up, s)
		}
	}
	return append(up, down...)
}

func (c *Client) markDown(s *server) {
	d := c.RetryAfter
	if d <= 0 {
		d = time.Second
	}
	s.mu.Lock()
	s.downUntil = time.Now().Add(d)
	s.mu.Unlock()
}

func (c *Client) getConn(s *server) (*conn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, net.ErrClosed
	}
	for {
		s.mu.Lock()
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		cn := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		if cn.alive() {
			return cn, nil
		}
		cn.nc.Close()
	}
	nc, err := net.DialTimeout("tcp", s.addr, c.timeout())
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, rw: bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))}, nil
}

// alive reports whether an idle connection is still open: the server
// closed it if a read finds the end (or anything at all) at once.
func (cn *conn) alive() bool {
	cn.nc.SetReadDeadline(time.Now())
	_, err := cn.rw.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) putConn(s *server, cn *conn) {
	max := c.MaxIdle
	if max <= 0 {
		max = 4
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	s.mu.Lock()
	if !closed && len(s.idle) < max {
		s.idle = append(s.idle, cn)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	cn.nc.Close()
}

// Close closes the idle connections; a Read still open keeps its own
// until it is confirmed or aborted.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	for _, s := range c.servers {
		s.mu.Lock()
		idle := s.idle
		s.idle = nil
		s.mu.Unlock()
		for _, cn := range idle {
			cn.nc.Close()
		}
	}
	return nil
}

// checkName refuses what cannot be a queue name before it reaches a server.
func checkName(q string) error {
	if q == "" || len(q) > 250 || strings.ContainsAny(q, "/ \t\r\n") {
		return fmt.Errorf("qclient: bad queue name %q", q)
	}
	return nil
}

// relativeExptimeMax is the largest exptime a server reads as seconds
// from now (30 days, as memcached); beyond, it is a Unix time.
const relativeExptimeMax = 30 * 24 * 60 * 60

// Put enqueues data on queue with the given expiry (0: none) on one
// live server. A server that cannot be reached is skipped for the next;
// one that took the request and did not answer makes Put return an error
// without trying another, since it may have stored the item.
func (c *Client) Put(queue string, data []byte, expiry time.Duration) error {
	if err := checkName(queue); err != nil {
		return err
	}
	exp := int64(0)
	if expiry > 0 {
		exp = int64((expiry + time.Second - 1) / time.Second)
		if exp > relativeExptimeMax {
			// The server reads a larger exptime as a Unix time.
			exp = time.Now().Add(expiry).Unix() + 1
		}
	}
	var lastErr error = ErrNoServers
	for _, s := range c.order() {
		cn, err := c.getConn(s)
		if err != nil {
			c.markDown(s)
			lastErr = err
			continue
		}
		cn.nc.SetDeadline(time.Now().Add(c.timeout()))
		fmt.Fprintf(cn.rw, "set %s 0 %d %d\r\n", queue, exp, len(data))
		cn.rw.Write(data)
		cn.rw.WriteString("\r\n")
		if err := cn.rw.Flush(); err != nil {
			// Not sent whole: the server cannot have stored it.
			cn.nc.Close()
			c.markDown(s)
			lastErr = err
			continue
		}
		line, err := cn.readLine()
		if err != nil {
			// Sent, and no answer: the server may have stored it, so it
			// is not put on another server too.
			cn.nc.Close()
			c.markDown(s)
			return fmt.Errorf("qclient: put on %s, which did not answer (the item may be stored): %w", s.addr, err)
		}
		c.putConn(s, cn)
		switch line {
		case "STORED":
			return nil
		case "NOT_STORED":
			return ErrNotStored
		default:
			return fmt.Errorf("%w: %s", ErrServer, line)
		}
	}
	return lastErr
}

func (cn *conn) roundTrip() (string, error) {
	if err := cn.rw.Flush(); err != nil {
		return "", err
	}
	return cn.readLine()
}

func (cn *conn) readLine() (string, error) {
	l, err := cn.rw.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// get sends one get and reads its reply: the item, or ok false at END.
func (cn *conn) get(key string) (data []byte, ok bool, err error) {
	cn.rw.WriteString("get " + key + "\r\n")
	line, err := cn.roundTrip()
	if err != nil {
		return nil, false, err
	}
	if line == "END" {
		return nil, false, nil
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "VALUE" {
		return nil, false, fmt.Errorf("%w: %s", ErrServer, line)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 {
		return nil, false, fmt.Errorf("%w: %s", ErrServer, line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(cn.rw, buf); err != nil {
		return nil, false, err
	}
	if end, err := cn.readLine(); err != nil || end != "END" {
		return nil, false, fmt.Errorf("%w: no END after the item", ErrServer)
	}
	return buf[:n], true, nil
}

// Get dequeues an item from queue, waiting up to wait for one; ok is
// false when none came.
func (c *Client) Get(queue string, wait time.Duration) (data []byte, ok bool, err error) {
	data, _, ok, err = c.read(queue, wait, "")
	return data, ok, err
}

// Read is an item read reliably: it stays owned by this client until
// Confirm, and goes back to the head of its queue on Abort (or when the
// connection is lost). Read is not safe for concurrent use.
type Read struct {
	// Data is the item.
	Data []byte

	c     *Client
	s     *server
	cn    *conn
	queue string
}

// Open reads an item from queue reliably, waiting up to wait for one; it
// returns nil, nil when none came.
func (c *Client) Open(queue string, wait time.Duration) (*Read, error) {
	data, r, ok, err := c.read(queue, wait, "/open")
	if !ok || err != nil {
		return nil, err
	}
	r.Data = data
	return r, nil
}

// read tries each server once without waiting, then waits on the first.
func (c *Client) read(queue string, wait time.Duration, opts string) ([]byte, *Read, bool, error) {
	if err := checkName(queue); err != nil {
		return nil, nil, false, err
	}
	order := c.order()
	var lastErr error
	tried := 0
	for pass := 0; pass < 2; pass++ {
		for i, s := range order {
			key := queue + opts
			deadline := c.timeout()
			if pass == 1 {
				if i > 0 || wait <= 0 {
					break
				}
				key = queue + "/t=" + strconv.FormatInt(wait.Milliseconds(), 10) + opts
				deadline += wait
			}
			cn, err := c.getConn(s)
			if err != nil {
				c.markDown(s)
				lastErr = err
				continue
			}
			tried++
			cn.nc.SetDeadline(time.Now().Add(deadline))
			data, ok, err := cn.get(key)
			if err != nil {
				cn.nc.Close()
				c.markDown(s)
				lastErr = err
				continue
			}
			if ok && opts != "" {
				return data, &Read{c: c, s: s, cn: cn, queue: queue}, true, nil
			}
			c.putConn(s, cn)
			if ok {
				return data, nil, true, nil
			}
		}
	}
	if tried == 0 && lastErr != nil {
		return nil, nil, false, fmt.Errorf("%w: %v", ErrNoServers, lastErr)
	}
	return nil, nil, false, nil
}

// Confirm tells the server the item was handled: it is gone for good.
func (r *Read) Confirm() error { return r.end("/close") }

// Abort puts the item back at the head of its queue.
func (r *Read) Abort() error { return r.end("/abort") }

func (r *Read) end(opt string) error {
	if r.cn == nil {
		return ErrDone
	}
	cn := r.cn
	r.cn = nil
	cn.nc.SetDeadline(time.Now().Add(r.c.timeout()))
	cn.rw.WriteString("get " + r.queue + opt + "\r\n")
	line, err := cn.roundTrip()
	if err != nil {
		cn.nc.Close()
		return err
	}
	if line != "END" {
		cn.nc.Close()
		return fmt.Errorf("%w: %s", ErrServer, line)
	}
	r.c.putConn(r.s, cn)
	return nil
}

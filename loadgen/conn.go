package loadgen

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

func splitHostPort(s string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(s)
	if err == nil && port == "" {
		err = fmt.Errorf("missing port")
	}
	return host, port, err
}

// Reply kinds a connection waits for, oldest first.
const (
	kindGet uint8 = iota
	kindSet
	kindVersion
	kindNoop // meta "mn"
)

// pending is one request written and not yet answered.
type pending struct {
	start    int64 // ns since the run's base time, taken before the write
	kind     uint8
	measured bool // issued while the run was measuring
}

// counters are one connection's totals. They are atomic so the progress
// line can read them while the connection runs; only the connection's own
// goroutine writes them.
type counters struct {
	done    atomic.Int64 // replies of any phase, for the progress line
	gets    atomic.Int64 // measured get requests answered
	sets    atomic.Int64
	getKeys atomic.Int64 // keys asked for by measured gets
	hits    atomic.Int64
	errors  atomic.Int64 // error replies to measured requests
	_       [64]byte     // keep connections' counters on separate cache lines
}

// conn is one client connection and its request pipeline. It is used by
// one goroutine.
type conn struct {
	r    *run
	nc   net.Conn
	rbuf []byte
	rpos int // start of unparsed input
	rend int // end of input
	wbuf []byte

	queue      []pending // ring of requests in flight
	head, n    int
	maxN       int
	now        int64 // time of the last read, ns since base
	deadline   int64 // read deadline, ns since base
	rng        *rand.Rand
	key        func() uint64
	hist       *Histogram
	c          counters
	prefillErr int64
}

func (r *run) dial(addr string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, r.cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	if r.cfg.TLS != nil {
		tc := tls.Client(nc, r.cfg.TLS)
		tc.SetDeadline(time.Now().Add(r.cfg.Timeout))
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("cannot make a TLS connection to %s: %w", addr, err)
		}
		tc.SetDeadline(time.Time{})
		return tc, nil
	}
	return nc, nil
}

func newConn(r *run, nc net.Conn, seed uint64) *conn {
	c := &conn{
		r:     r,
		nc:    nc,
		rbuf:  make([]byte, 64<<10),
		queue: make([]pending, r.cfg.Pipeline),
		rng:   rand.New(rand.NewPCG(r.cfg.Seed, seed)),
		hist:  NewHistogram(),
	}
	c.key = r.keys.sampler(c.rng)
	return c
}

// newIdleConn returns a connection that only checks the server with
// "version": small buffers and no histogram, for thousands of them.
func newIdleConn(r *run, nc net.Conn) *conn {
	return &conn{r: r, nc: nc, rbuf: make([]byte, 256), queue: make([]pending, 1)}
}

func (c *conn) push(p pending) {
	c.queue[(c.head+c.n)%len(c.queue)] = p
	c.n++
	c.maxN = max(c.maxN, c.n)
}

func (c *conn) pop() pending {
	p := c.queue[c.head]
	c.head = (c.head + 1) % len(c.queue)
	c.n--
	return p
}

// pump keeps up to len(c.queue) requests in flight: it asks issue for
// requests until the pipeline is full or issue declines, writes them in one
// write, then reads until at least one reply is complete and parses every
// complete reply. It returns when nothing is in flight and issue declines.
func (c *conn) pump(issue func() (kind uint8, measured, ok bool)) error {
	for {
		c.wbuf = c.wbuf[:0]
		first := c.n
		for c.n < len(c.queue) {
			kind, measured, ok := issue()
			if !ok {
				break
			}
			c.push(pending{kind: kind, measured: measured})
		}
		if c.n > first {
			now := c.r.since()
			for i := first; i < c.n; i++ {
				c.queue[(c.head+i)%len(c.queue)].start = now
			}
			if _, err := c.nc.Write(c.wbuf); err != nil {
				return fmt.Errorf("cannot write to %s: %w", c.nc.RemoteAddr(), err)
			}
		}
		if c.n == 0 {
			return nil
		}
		if err := c.readReplies(); err != nil {
			return err
		}
	}
}

// readReplies blocks until at least one reply is complete, then consumes
// every complete reply in the buffer.
func (c *conn) readReplies() error {
	got := 0
	for {
		for c.n > 0 {
			ok, err := c.parseOne()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			got++
		}
		if got > 0 || c.n == 0 {
			return nil
		}
		if err := c.fill(); err != nil {
			return err
		}
	}
}

// fill reads more input, growing the buffer when a reply does not fit.
func (c *conn) fill() error {
	if c.rpos > 0 {
		c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
	}
	if c.rend == len(c.rbuf) {
		c.rbuf = append(c.rbuf, make([]byte, len(c.rbuf))...)
	}
	// Moving the deadline costs a timer update; do it only once half the
	// timeout has passed, so a reply still never waits more than Timeout
	// and no less than half of it.
	if t := c.r.cfg.Timeout; c.now > c.deadline-int64(t/2) {
		c.deadline = c.r.since() + int64(t)
		c.nc.SetReadDeadline(c.r.base.Add(time.Duration(c.deadline)))
	}
	n, err := c.nc.Read(c.rbuf[c.rend:])
	c.rend += n
	c.now = c.r.since()
	if n > 0 {
		return nil
	}
	return fmt.Errorf("cannot read from %s: %w", c.nc.RemoteAddr(), err)
}

// line returns the line starting at off (without "\r\n") and the offset
// after it, or ok=false when it is not complete yet.
func (c *conn) line(off int) (line []byte, next int, ok bool) {
	i := bytes.IndexByte(c.rbuf[off:c.rend], '\n')
	if i < 0 {
		return nil, 0, false
	}
	line = c.rbuf[off : off+i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, off + i + 1, true
}

func isError(line []byte) bool {
	return bytes.Equal(line, []byte("ERROR")) ||
		bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR"))
}

// parseOne parses the reply to the oldest request in flight if it is
// complete, consumes it and counts it.
func (c *conn) parseOne() (bool, error) {
	p := c.queue[c.head]
	off := c.rpos
	var hits, errs int64
	var line []byte
	var ok bool
	switch p.kind {
	case kindVersion:
		if line, off, ok = c.line(off); !ok {
			return false, nil
		}
		if !bytes.HasPrefix(line, []byte("VERSION ")) {
			return false, c.malformed(line)
		}
	case kindNoop:
		if line, off, ok = c.line(off); !ok {
			return false, nil
		}
		if !bytes.Equal(line, []byte("MN")) {
			return false, fmt.Errorf("%w: %s answers %q to the meta no-op mn", ErrNoMeta, c.nc.RemoteAddr(), line)
		}
	case kindSet:
		if line, off, ok = c.line(off); !ok {
			return false, nil
		}
		switch {
		case bytes.Equal(line, []byte("STORED")), bytes.Equal(line, []byte("HD")):
		case isError(line), bytes.Equal(line, []byte("NOT_STORED")), bytes.Equal(line, []byte("NS")):
			errs++
		default:
			return false, c.malformed(line)
		}
	case kindGet:
		meta := c.r.cfg.Protocol == Meta
		multi := c.r.cfg.MultiGet > 1
		for done := false; !done; {
			if line, off, ok = c.line(off); !ok {
				return false, nil
			}
			switch {
			case bytes.HasPrefix(line, []byte("VALUE ")), meta && bytes.HasPrefix(line, []byte("VA ")):
				n, err := valueLen(line, meta)
				if err != nil {
					return false, c.malformed(line)
				}
				if off+n+2 > c.rend {
					return false, nil
				}
				off += n + 2
				hits++
				done = meta && !multi
			case !meta && bytes.Equal(line, []byte("END")),
				meta && multi && bytes.Equal(line, []byte("MN")),
				meta && !multi && bytes.Equal(line, []byte("EN")):
				done = true
			case isError(line):
				errs++
				// A meta multi-get ends at MN, or at its last error when
				// every mg and the mn were refused.
				done = !(meta && multi) || errs == int64(c.r.cfg.MultiGet)+1
			default:
				return false, c.malformed(line)
			}
		}
	}
	c.rpos = off
	c.pop()
	c.c.done.Add(1)
	if !p.measured {
		c.prefillErr += errs
		return true, nil
	}
	c.hist.Record(uint64(max(c.now-p.start, 0)))
	if errs > 0 {
		c.c.errors.Add(errs)
	}
	if p.kind == kindGet {
		c.c.gets.Add(1)
		c.c.getKeys.Add(int64(c.r.cfg.MultiGet))
		c.c.hits.Add(hits)
	} else {
		c.c.sets.Add(1)
	}
	return true, nil
}

func (c *conn) malformed(line []byte) error {
	if len(line) > 80 {
		line = line[:80]
	}
	return fmt.Errorf("%w from %s: %q", ErrProtocol, c.nc.RemoteAddr(), line)
}

// valueLen returns the data length of "VALUE key flags bytes [cas]" or
// "VA bytes flags...".
func valueLen(line []byte, meta bool) (int, error) {
	field := 3
	if meta && bytes.HasPrefix(line, []byte("VA ")) {
		field = 1
	}
	for i := 0; i < field; i++ {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return 0, ErrProtocol
		}
		line = line[sp+1:]
	}
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		line = line[:sp]
	}
	n, err := strconv.Atoi(string(line))
	if err != nil || n < 0 {
		return 0, ErrProtocol
	}
	return n, nil
}

// appendKey appends key number k.
func (c *conn) appendKey(k uint64) {
	c.wbuf = append(c.wbuf, c.r.cfg.KeyPrefix...)
	c.wbuf = strconv.AppendUint(c.wbuf, k, 10)
}

// appendGet appends a get of MultiGet keys drawn from the key distribution.
func (c *conn) appendGet() {
	if c.r.cfg.Protocol == Meta {
		m := c.r.cfg.MultiGet
		for range m {
			c.wbuf = append(c.wbuf, "mg "...)
			c.appendKey(c.key())
			if m > 1 {
				c.wbuf = append(c.wbuf, " v q\r\n"...)
			} else {
				c.wbuf = append(c.wbuf, " v\r\n"...)
			}
		}
		if m > 1 {
			c.wbuf = append(c.wbuf, "mn\r\n"...)
		}
		return
	}
	c.wbuf = append(c.wbuf, "get"...)
	for range c.r.cfg.MultiGet {
		c.wbuf = append(c.wbuf, ' ')
		c.appendKey(c.key())
	}
	c.wbuf = append(c.wbuf, "\r\n"...)
}

// appendSet appends a set of key k with a value of random size.
func (c *conn) appendSet(k uint64) {
	cfg := &c.r.cfg
	n := cfg.ValueMin
	if cfg.ValueMax > cfg.ValueMin {
		n += c.rng.IntN(cfg.ValueMax - cfg.ValueMin + 1)
	}
	if cfg.Protocol == Meta {
		c.wbuf = append(c.wbuf, "ms "...)
		c.appendKey(k)
		c.wbuf = append(c.wbuf, ' ')
	} else {
		c.wbuf = append(c.wbuf, "set "...)
		c.appendKey(k)
		c.wbuf = append(c.wbuf, " 0 0 "...)
	}
	c.wbuf = strconv.AppendInt(c.wbuf, int64(n), 10)
	c.wbuf = append(c.wbuf, "\r\n"...)
	c.wbuf = append(c.wbuf, c.r.value[:n]...)
	c.wbuf = append(c.wbuf, "\r\n"...)
}

package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
)

// Item is a cached value.
type Item struct {
	// Key is the key without the namespace.
	Key   string
	Value []byte
	// Flags are the client flags stored with the value.
	Flags uint32
	// Expiration is the time to live in seconds (up to 30 days), or a Unix
	// time; 0 means never. It is not filled in by reads.
	Expiration int32
	// CAS is the compare-and-swap unique the server returned.
	CAS uint64
}

var (
	crlf        = []byte("\r\n")
	endLine     = []byte("END\r\n")
	valuePrefix = []byte("VALUE ")
)

// flush writes the connection's write buffer.
func (cn *conn) flush() error {
	_, err := cn.nc.Write(cn.w)
	return err
}

// readLine returns the next reply line including its "\r\n"; it is valid
// until the next read.
func (cn *conn) readLine() ([]byte, error) {
	line, err := cn.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &ProtocolError{Reason: "reply line longer than " + strconv.Itoa(len(line)) + " bytes"}
		}
		return nil, err
	}
	return line, nil
}

// pending says what may follow an error line on the connection, which
// decides whether the connection is still in step after it.
type pending int

const (
	// nothingPending: the request was one line (or a pipeline of one) and
	// an error line is its whole reply.
	nothingPending pending = iota
	// dataPending: the request carried a data block. The server skips it
	// after a SERVER_ERROR, but after a CLIENT_ERROR it may have read it as
	// a command whose reply is still to come.
	dataPending
	// morePending: the error line came in the middle of a reply, or of a
	// pipeline whose other replies are still to come.
	morePending
)

// replyError turns an error line into an error: a ReplyError when the
// connection is still in step after it, a ProtocolError (which closes the
// connection) when it is not or when line is not an error line at all.
func replyError(line []byte, after pending) error {
	text := string(bytes.TrimRight(line, "\r\n"))
	switch {
	case !isErrorLine(line):
		return &ProtocolError{Line: text, Reason: "unexpected reply"}
	case after == nothingPending,
		after == dataPending && bytes.HasPrefix(line, []byte("SERVER_ERROR")):
		return &ReplyError{Line: text}
	}
	return &ProtocolError{Line: text, Reason: "error reply out of turn"}
}

// isErrorLine reports whether line is one of the error replies, after
// which the connection is still in step.
func isErrorLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("ERROR")) || bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR"))
}

// parseUint parses a decimal number without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		if n > (math.MaxUint64-uint64(d-'0'))/10 {
			return 0, false // n*10 + d would wrap
		}
		n = n*10 + uint64(d-'0')
	}
	return n, true
}

// nextField splits the first space-separated field off b.
func nextField(b []byte) (field, rest []byte) {
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+1:]
}

// parseValueLine parses "VALUE key flags bytes [cas]\r\n".
func parseValueLine(line []byte) (key []byte, flags uint32, n int, cas uint64, err error) {
	rest := bytes.TrimSuffix(line[len(valuePrefix):], crlf)
	var f, fb []byte
	key, rest = nextField(rest)
	f, rest = nextField(rest)
	fv, ok1 := parseUint(f)
	fb, rest = nextField(rest)
	nv, ok2 := parseUint(fb)
	if !ok1 || !ok2 || fv > 1<<32-1 || nv > 1<<30 || len(key) == 0 {
		return nil, 0, 0, 0, badValueLine(line)
	}
	if len(rest) > 0 {
		c, ok := parseUint(rest)
		if !ok {
			return nil, 0, 0, 0, badValueLine(line)
		}
		cas = c
	}
	return key, uint32(fv), int(nv), cas, nil
}

func badValueLine(line []byte) error {
	return &ProtocolError{Line: string(bytes.TrimRight(line, "\r\n")), Reason: "malformed VALUE line"}
}

// readValue reads a value block of len(dst) bytes and its "\r\n" into dst.
func (cn *conn) readValue(dst []byte) error {
	n := len(dst)
	if cn.r.Buffered() >= n+2 {
		b, _ := cn.r.Peek(n + 2)
		copy(dst, b)
		if b[n] != '\r' || b[n+1] != '\n' {
			return errBadBlock
		}
		cn.r.Discard(n + 2)
		return nil
	}
	if _, err := io.ReadFull(cn.r, dst); err != nil {
		return err
	}
	return cn.readBlockEnd()
}

// readBlockEnd reads the "\r\n" that ends a value block.
func (cn *conn) readBlockEnd() error {
	b, err := cn.r.Peek(2)
	if err != nil {
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errBadBlock
	}
	cn.r.Discard(2)
	return nil
}

// valueAllocAhead is how much of a value's declared length is allocated
// before its bytes arrive: memcached's default item size limit, so that
// most values are allocated once.
const valueAllocAhead = 1 << 20

// readNewValue reads a value block of n bytes and its "\r\n" into a new
// slice. Beyond valueAllocAhead the slice grows with the bytes that
// arrive, so that a server declaring a huge length it does not send makes
// the client allocate no more than about twice what it sent.
func (cn *conn) readNewValue(n int) ([]byte, error) {
	if n <= valueAllocAhead {
		v := make([]byte, n)
		if err := cn.readValue(v); err != nil {
			return nil, err
		}
		return v, nil
	}
	v := make([]byte, valueAllocAhead)
	for got := 0; got < n; {
		if got == len(v) {
			w := make([]byte, min(n, 2*len(v)))
			copy(w, v)
			v = w
		}
		m, err := io.ReadFull(cn.r, v[got:])
		got += m
		if err != nil {
			return nil, err
		}
	}
	if err := cn.readBlockEnd(); err != nil {
		return nil, err
	}
	return v, nil
}

var errBadBlock = &ProtocolError{Reason: "value not terminated by \\r\\n"}

// nextValue reads the next line of a retrieval reply: a VALUE header, or
// END (done is true). The caller then reads the value with readValue.
// first says whether this is the reply's first line, the only place an
// error line can stand for the whole reply.
func (cn *conn) nextValue(first bool) (key []byte, flags uint32, n int, cas uint64, done bool, err error) {
	line, err := cn.readLine()
	if err != nil {
		return nil, 0, 0, 0, false, err
	}
	if bytes.Equal(line, endLine) {
		return nil, 0, 0, 0, true, nil
	}
	if !bytes.HasPrefix(line, valuePrefix) {
		after := morePending
		if first {
			after = nothingPending
		}
		return nil, 0, 0, 0, false, replyError(line, after)
	}
	key, flags, n, cas, err = parseValueLine(line)
	return key, flags, n, cas, false, err
}

// wrongKey is the error for a value the server sent for a key it was not
// asked for.
func wrongKey(got []byte, want string) error {
	return &ProtocolError{Reason: "reply for key " + strconv.Quote(string(got)) + " to a request for " + strconv.Quote(want)}
}

// Get returns the item for key, or ErrCacheMiss.
func (c *Client) Get(ctx context.Context, key string) (*Item, error) {
	return c.retrieve(ctx, "gets", "", key)
}

// GetAndTouch returns the item for key and sets its expiration, or
// ErrCacheMiss.
func (c *Client) GetAndTouch(ctx context.Context, key string, exp int32) (*Item, error) {
	return c.retrieve(ctx, "gats", strconv.FormatInt(int64(exp), 10), key)
}

// readServer picks the server a key is read from: one of its replicas at
// random for a replicated key.
func (c *Client) readServer(key, wire string) (*node, error) {
	if n := c.replicas(key); n > 1 {
		rs := c.replicaServers(wire, n)
		if len(rs) == 0 {
			return c.pick(wire)
		}
		return rs[rand.IntN(len(rs))], nil
	}
	return c.pick(wire)
}

func (c *Client) retrieve(ctx context.Context, verb, arg, key string) (*Item, error) {
	wire, err := c.wireKey(key)
	if err != nil {
		return nil, err
	}
	s, err := c.readServer(key, wire)
	if err != nil {
		return nil, err
	}
	var it *Item
	err = c.do(ctx, s, verb, func(cn *conn) error {
		cn.w = append(append(cn.w[:0], verb...), ' ')
		if arg != "" {
			cn.w = append(append(cn.w, arg...), ' ')
		}
		cn.w = append(append(cn.w, wire...), crlf...)
		if err := cn.flush(); err != nil {
			return err
		}
		for first := true; ; first = false {
			k, flags, n, cas, done, err := cn.nextValue(first)
			if err != nil || done {
				return err
			}
			// One value, for the key asked: anything else is a reply to
			// someone else's request.
			if it != nil || string(k) != wire {
				it = nil
				return wrongKey(k, wire)
			}
			v, err := cn.readNewValue(n)
			if err != nil {
				return err
			}
			it = &Item{Key: key, Value: v, Flags: flags, CAS: cas}
		}
	})
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, ErrCacheMiss
	}
	if err := c.decode(it); err != nil {
		return nil, err
	}
	return it, nil
}

// Set stores the item.
func (c *Client) Set(ctx context.Context, it *Item) error { return c.store(ctx, "set", it, 0) }

// Add stores the item only if its key is absent; ErrNotStored otherwise.
func (c *Client) Add(ctx context.Context, it *Item) error { return c.store(ctx, "add", it, 0) }

// Replace stores the item only if its key is present; ErrNotStored
// otherwise.
func (c *Client) Replace(ctx context.Context, it *Item) error {
	return c.store(ctx, "replace", it, 0)
}

// Append adds the item's value after the stored one; ErrNotStored when the
// key is absent. A client that compresses (positive CompressThreshold)
// refuses it with ErrAppendCompressed, since the stored value may be
// compressed.
func (c *Client) Append(ctx context.Context, it *Item) error { return c.store(ctx, "append", it, 0) }

// Prepend adds the item's value before the stored one; ErrNotStored when
// the key is absent. Like Append, it is refused when the client
// compresses.
func (c *Client) Prepend(ctx context.Context, it *Item) error {
	return c.store(ctx, "prepend", it, 0)
}

// CompareAndSwap stores the item only if it was not modified since it was
// read with the CAS value it.CAS: ErrCASConflict if it was, ErrCacheMiss if
// it is gone. A replicated key is refused with ErrReplicatedCAS.
func (c *Client) CompareAndSwap(ctx context.Context, it *Item) error {
	if c.replicas(it.Key) > 1 {
		return ErrReplicatedCAS
	}
	return c.store(ctx, "cas", it, it.CAS)
}

// writeServers returns the servers a write of key goes to.
func (c *Client) writeServers(key, wire string) ([]*node, error) {
	if n := c.replicas(key); n > 1 {
		if rs := c.replicaServers(wire, n); len(rs) > 0 {
			return rs, nil
		}
	}
	s, err := c.pick(wire)
	if err != nil {
		return nil, err
	}
	return []*node{s}, nil
}

// onWriteServers runs fn for key on every server the key is written to
// (several when the key is replicated), with i the server's position and
// wire the key as sent, and returns the first error.
func (c *Client) onWriteServers(ctx context.Context, op, key string, fn func(i int, cn *conn, wire string) error) error {
	wire, err := c.wireKey(key)
	if err != nil {
		return err
	}
	servers, err := c.writeServers(key, wire)
	if err != nil {
		return err
	}
	var first error
	for i, s := range servers {
		err := c.do(ctx, s, op, func(cn *conn) error { return fn(i, cn, wire) })
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (c *Client) store(ctx context.Context, verb string, it *Item, cas uint64) error {
	value, flags, err := c.encode(it.Value, it.Flags, verb)
	if err != nil {
		return err
	}
	return c.onWriteServers(ctx, verb, it.Key, func(_ int, cn *conn, wire string) error {
		w := append(append(append(cn.writeBuffer(len(wire)+len(value)+80), verb...), ' '), wire...)
		w = strconv.AppendUint(append(w, ' '), uint64(flags), 10)
		w = strconv.AppendInt(append(w, ' '), int64(it.Expiration), 10)
		w = strconv.AppendInt(append(w, ' '), int64(len(value)), 10)
		if verb == "cas" {
			w = strconv.AppendUint(append(w, ' '), cas, 10)
		}
		w = append(append(append(w, crlf...), value...), crlf...)
		cn.w = w
		if err := cn.flush(); err != nil {
			return err
		}
		line, err := cn.readLine()
		if err != nil {
			return err
		}
		switch string(line) {
		case "STORED\r\n":
			return nil
		case "NOT_STORED\r\n":
			return ErrNotStored
		case "EXISTS\r\n":
			return ErrCASConflict
		case "NOT_FOUND\r\n":
			return ErrCacheMiss
		}
		return replyError(line, dataPending)
	})
}

// simple sends one command line for key to its servers and reads a
// one-line reply, mapping ok to nil and NOT_FOUND to ErrCacheMiss. It
// returns the first server's reply line.
func (c *Client) simple(ctx context.Context, op, key string, build func(w []byte, wire string) []byte, ok string) (string, error) {
	var reply string
	err := c.onWriteServers(ctx, op, key, func(i int, cn *conn, wire string) error {
		cn.w = append(build(cn.w[:0], wire), crlf...)
		if err := cn.flush(); err != nil {
			return err
		}
		line, err := cn.readLine()
		if err != nil {
			return err
		}
		switch {
		case string(line) == "NOT_FOUND\r\n":
			return ErrCacheMiss
		case ok != "" && string(line) == ok:
		case ok == "" && len(line) > 2 && line[0] >= '0' && line[0] <= '9':
		default:
			return replyError(line, nothingPending)
		}
		if i == 0 {
			reply = string(bytes.TrimRight(line, "\r\n "))
		}
		return nil
	})
	return reply, err
}

// Delete removes key; ErrCacheMiss if it was absent.
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.simple(ctx, "delete", key, func(w []byte, wire string) []byte {
		return append(append(w, "delete "...), wire...)
	}, "DELETED\r\n")
	return err
}

// Touch sets the expiration of key; ErrCacheMiss if it is absent.
func (c *Client) Touch(ctx context.Context, key string, exp int32) error {
	_, err := c.simple(ctx, "touch", key, func(w []byte, wire string) []byte {
		return strconv.AppendInt(append(append(append(w, "touch "...), wire...), ' '), int64(exp), 10)
	}, "TOUCHED\r\n")
	return err
}

// Incr adds delta to the decimal number stored at key (wrapping at 2^64)
// and returns the new value; ErrCacheMiss if the key is absent.
func (c *Client) Incr(ctx context.Context, key string, delta uint64) (uint64, error) {
	return c.arith(ctx, "incr", key, delta)
}

// Decr subtracts delta from the number stored at key, stopping at 0, and
// returns the new value; ErrCacheMiss if the key is absent.
func (c *Client) Decr(ctx context.Context, key string, delta uint64) (uint64, error) {
	return c.arith(ctx, "decr", key, delta)
}

func (c *Client) arith(ctx context.Context, verb, key string, delta uint64) (uint64, error) {
	reply, err := c.simple(ctx, verb, key, func(w []byte, wire string) []byte {
		return strconv.AppendUint(append(append(append(append(w, verb...), ' '), wire...), ' '), delta, 10)
	}, "")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(reply, 10, 64)
}

// each runs fn on every server in parallel and returns the first error.
func (c *Client) each(ctx context.Context, op string, fn func(s *node, cn *conn) error) error {
	errs := make([]error, len(c.servers))
	done := make(chan struct{}, len(c.servers))
	for i, s := range c.servers {
		go func() {
			errs[i] = c.do(ctx, s, op, func(cn *conn) error { return fn(s, cn) })
			done <- struct{}{}
		}()
	}
	for range c.servers {
		<-done
	}
	return errors.Join(errs...)
}

// Flush invalidates every item on every server, after delay seconds when
// delay is positive.
func (c *Client) Flush(ctx context.Context, delay int) error {
	return c.each(ctx, "flush_all", func(_ *node, cn *conn) error {
		cn.w = append(cn.w[:0], "flush_all"...)
		if delay > 0 {
			cn.w = strconv.AppendInt(append(cn.w, ' '), int64(delay), 10)
		}
		cn.w = append(cn.w, crlf...)
		if err := cn.flush(); err != nil {
			return err
		}
		line, err := cn.readLine()
		if err != nil {
			return err
		}
		if string(line) != "OK\r\n" {
			return replyError(line, nothingPending)
		}
		return nil
	})
}

// maxStatsBytes bounds the memory one server's stats reply may take in
// Stats (its lines, and statOverhead per line for the map's entry): a
// server that streams STAT lines without end fails the call rather than
// grow it. memcached's largest reply, "stats conns", counts about 40 MiB
// of it with 100,000 connections open.
var maxStatsBytes = 256 << 20

const statOverhead = 64

// Stats returns each server's "stats" (or "stats ARG" when arg is given)
// by address. Servers that failed are missing and named in the error. An
// arg holding a control character, which could end the request and start
// another, fails with ErrMalformedKey.
func (c *Client) Stats(ctx context.Context, arg string) (map[string]map[string]string, error) {
	for i := 0; i < len(arg); i++ {
		if b := arg[i]; b < ' ' || b == 0x7f {
			return nil, fmt.Errorf("client: invalid stats argument %q: %w", arg, ErrMalformedKey)
		}
	}
	out := make(map[string]map[string]string, len(c.servers))
	results := make([]map[string]string, len(c.servers))
	idx := map[*node]int{}
	for i, s := range c.servers {
		idx[s] = i
	}
	err := c.each(ctx, "stats", func(s *node, cn *conn) error {
		cn.w = append(cn.w[:0], "stats"...)
		if arg != "" {
			cn.w = append(append(cn.w, ' '), arg...)
		}
		cn.w = append(cn.w, crlf...)
		if err := cn.flush(); err != nil {
			return err
		}
		m := map[string]string{}
		held := 0
		for first := true; ; first = false {
			line, err := cn.readLine()
			if err != nil {
				return err
			}
			if bytes.Equal(line, endLine) {
				break
			}
			if !bytes.HasPrefix(line, []byte("STAT ")) {
				// Arguments whose reply is not STAT lines ("cachedump"'s
				// ITEM lines) end here, and so does the connection.
				after := morePending
				if first {
					after = nothingPending
				}
				return replyError(line, after)
			}
			if held += len(line) + statOverhead; held > maxStatsBytes {
				return &ProtocolError{Reason: "stats reply past " + strconv.Itoa(maxStatsBytes>>20) + " MiB"}
			}
			k, v := nextField(bytes.TrimRight(line[5:], "\r\n"))
			m[string(k)] = string(v)
		}
		results[idx[s]] = m
		return nil
	})
	for i, s := range c.servers {
		if results[i] != nil {
			out[s.addr] = results[i]
		}
	}
	return out, err
}

// Version returns each server's version by address.
func (c *Client) Version(ctx context.Context) (map[string]string, error) {
	results := make([]string, len(c.servers))
	idx := map[*node]int{}
	for i, s := range c.servers {
		idx[s] = i
	}
	err := c.each(ctx, "version", func(s *node, cn *conn) error {
		cn.w = append(cn.w[:0], "version\r\n"...)
		if err := cn.flush(); err != nil {
			return err
		}
		line, err := cn.readLine()
		if err != nil {
			return err
		}
		v, ok := bytes.CutPrefix(line, []byte("VERSION "))
		if !ok {
			return replyError(line, nothingPending)
		}
		results[idx[s]] = string(bytes.TrimRight(v, "\r\n"))
		return nil
	})
	out := map[string]string{}
	for i, s := range c.servers {
		if results[i] != "" {
			out[s.addr] = results[i]
		}
	}
	return out, err
}

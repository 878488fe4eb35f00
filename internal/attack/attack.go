package attack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// sendTimeout bounds the write of an attack's first bytes on one
// connection: a server that stops reading a hostile client is doing its
// job, so a write that times out is counted, not fatal.
const sendTimeout = 2 * time.Second

// Attack is one kind of hostile traffic, sent on Conns connections.
type Attack struct {
	Name  string
	Conns int
	// HoldsInput is set for attacks that make the server hold what it
	// reads (declared values, half-sent lines), bounded by its read
	// buffer limit rather than by its write backpressure.
	HoldsInput bool
	// HoldsOutput is set for attacks that leave the replies of many
	// connections unread, bounded in total by the server's limit on
	// blocked write buffers (corvid's write_buf_mem_limit).
	HoldsOutput bool
	// Accepted makes Run hold the attack until the server counts all
	// its connections in curr_connections.
	Accepted bool
	// Items is how many small items the attack wants the data set to
	// hold (Data.Small), if more than the caller's.
	Items int
	// first returns the bytes sent on connection i when it opens.
	first func(i int) []byte
	// keep, if set, runs in a goroutine per connection after first was
	// sent, until stop is closed: trickling bytes, reading slowly.
	keep func(nc net.Conn, i int, stop <-chan struct{})
}

// Scale sets the sizes of the attacks.
type Scale struct {
	// Conns is the number of connections of each attack that makes the
	// server write.
	Conns int
	// BufConns is the number of connections of each attack that makes
	// the server hold what it reads: enough that, unbounded, they hold
	// more than the bound.
	BufConns int
	// DumpItems is the number of items a metadump attack wants stored.
	DumpItems int
	// Keys is the number of keys of the smaller unread multi-get; a
	// second one asks for ten times as many.
	Keys int
	// DeclaredSize is the value size the huge sets declare.
	DeclaredSize int
	// HugeLine adds an unread multi-get whose line is nearly 1 MiB.
	HugeLine bool
}

// Attacks returns the attacks on a server holding d, sized by sc, in the
// order they are meant to run.
func Attacks(d Data, sc Scale) []Attack {
	getLine := func(keys int) []byte {
		var b strings.Builder
		b.WriteString("get")
		for k := range keys {
			b.WriteString(" " + BigKey(k%d.Big))
		}
		b.WriteString("\r\n")
		return []byte(b.String())
	}
	unreadGet := func(keys int) Attack {
		line := getLine(keys)
		return Attack{
			Name:  fmt.Sprintf("unread-get-%d", keys),
			Conns: sc.Conns,
			first: func(int) []byte { return line },
		}
	}
	pipelined := func(n int) []byte {
		var b []byte
		for k := range n {
			b = fmt.Appendf(b, "get %s\r\n", BigKey(k%d.Big))
		}
		return b
	}
	as := []Attack{
		unreadGet(sc.Keys),
		unreadGet(10 * sc.Keys),
		{
			// A few values per connection (more than the socket
			// buffers take), on many connections: what a
			// connection's write buffer holds, summed.
			Name:        "unread-get-16-values",
			HoldsOutput: true,
			Conns:       sc.BufConns,
			first:       func(int) []byte { return getLine(16) },
		},
		{
			Name:  fmt.Sprintf("unread-pipelined-%d", sc.Keys),
			Conns: sc.Conns,
			first: func(int) []byte { return pipelined(sc.Keys) },
		},
		{
			Name:  "slow-readers",
			Conns: sc.Conns,
			first: func(int) []byte { return pipelined(sc.Keys) },
			keep:  readSlowly,
		},
		{
			Name:       fmt.Sprintf("huge-set-%d", sc.DeclaredSize),
			HoldsInput: true,
			Conns:      sc.BufConns,
			first: func(i int) []byte {
				return mostOfValue(i, fmt.Appendf(nil, "set huge%d 0 0 %d\r\n", i, sc.DeclaredSize), sc.DeclaredSize)
			},
			keep: trickle,
		},
		{
			Name:       "half-lines",
			HoldsInput: true,
			Conns:      sc.BufConns,
			first: func(i int) []byte {
				switch i % 3 {
				case 0:
					return []byte("get " + BigKey(0))
				case 1:
					return []byte("set half 0 0 10")
				default:
					return halfGetLine(d)
				}
			},
		},
		{
			Name:       "half-get-1MiB",
			HoldsInput: true,
			Conns:      sc.BufConns,
			first:      func(int) []byte { return halfGetLine(d) },
		},
		{
			Name:  "unread-metadump",
			Conns: sc.Conns,
			Items: sc.DumpItems,
			first: func(int) []byte { return []byte("lru_crawler metadump all\r\n") },
		},
		{
			Name:       fmt.Sprintf("binary-huge-set-%d", sc.DeclaredSize),
			HoldsInput: true,
			Conns:      sc.BufConns,
			first: func(i int) []byte {
				return mostOfValue(i, binarySetHeader(fmt.Sprintf("hugeb%d", i), sc.DeclaredSize), sc.DeclaredSize)
			},
			keep: trickle,
		},
		{
			Name:  fmt.Sprintf("binary-getq-flood-%d", sc.Keys),
			Conns: sc.Conns,
			first: func(int) []byte {
				var b []byte
				for k := range sc.Keys {
					b = appendBinary(b, 0x09, BigKey(k%d.Big), nil, 0) // getq
				}
				return appendBinary(b, 0x0a, "", nil, 0) // noop
			},
		},
	}
	if sc.HugeLine {
		b := []byte("get")
		for len(b) < 1<<20-64 {
			b = append(b, " a"...)
		}
		b = append(b, "\r\n"...)
		// A line is held whole until its newline arrives, as
		// half-get-1MiB's are: on many connections at once the lines
		// are input held up to the read buffer bound (a hundred 1 MiB
		// lines pass it), whatever the server then does with them.
		as = append(as, Attack{
			Name:       "get-1MiB-line-of-misses",
			HoldsInput: true,
			Conns:      sc.Conns,
			first:      func(int) []byte { return b },
			keep:       readAll,
		})
		keys := (1<<20 - 64) / (len(BigKey(0)) + 1)
		a := unreadGet(keys)
		a.Name = "unread-get-1MiB-line"
		// Its line is kept while its reply waits for the reader (the
		// keys are read from the line as the lookups go), and the
		// reply blocks as unread-get-16-values' do.
		a.HoldsInput, a.HoldsOutput = true, true
		as = append(as, a)
	}
	return as
}

// Idle returns the attack of n connections that send nothing.
func Idle(n int) Attack {
	return Attack{Name: fmt.Sprintf("idle-%d", n), Conns: n, Accepted: true, first: func(int) []byte { return nil }}
}

// halfGetLine is a get line of nearly 1 MiB (the longest a server accepts
// from memcached's family) without its newline.
func halfGetLine(d Data) []byte {
	b := []byte("get")
	for len(b) < 1<<20-512 {
		b = append(b, ' ')
		b = append(b, BigKey(len(b)%d.Big)...)
	}
	return b
}

// appendBinary appends a binary-protocol request header with body
// (extras, key, value) of bodyLen bytes, and the extras and key.
func appendBinary(b []byte, op byte, key string, extras []byte, value int) []byte {
	b = append(b, 0x80, op)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, byte(len(extras)), 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(extras)+len(key)+value))
	b = append(b, make([]byte, 12)...) // opaque, CAS
	b = append(b, extras...)
	return append(b, key...)
}

// binarySetHeader is a binary set of key declaring a value of size bytes,
// without the value.
func binarySetHeader(key string, size int) []byte {
	return appendBinary(nil, 0x01, key, make([]byte, 8), size)
}

// The connections of a huge set take turns by four: the first sends the
// request line (or header) and nothing more, the second trickles the
// value, the other two send all of it but its last kilobyte at once.

// mostOfValue returns head, followed on half the connections by all of a
// value of size bytes but its last kilobyte.
func mostOfValue(i int, head []byte, size int) []byte {
	if i%4 < 2 {
		return head
	}
	return append(head, make([]byte, max(0, size-1024))...)
}

// trickle sends one byte every 50 ms on every fourth connection.
func trickle(nc net.Conn, i int, stop <-chan struct{}) {
	if i%4 != 1 {
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			nc.SetWriteDeadline(time.Now().Add(sendTimeout))
			if _, err := nc.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// readSlowly reads 4 KB every 20 ms.
func readSlowly(nc net.Conn, _ int, stop <-chan struct{}) {
	buf := make([]byte, 4<<10)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			nc.SetReadDeadline(time.Now().Add(sendTimeout))
			if _, err := io.ReadFull(nc, buf); err != nil && !isTimeout(err) {
				return
			}
		}
	}
}

// readAll reads and drops whatever the server sends.
func readAll(nc net.Conn, _ int, stop <-chan struct{}) {
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			return
		default:
		}
		nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := nc.Read(buf); err != nil && !isTimeout(err) {
			return
		}
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// Swarm is the connections of a launched attack. Close must be called.
type Swarm struct {
	conns []net.Conn
	stop  chan struct{}
	wg    sync.WaitGroup
	// SendTimeouts counts connections whose first bytes the server did
	// not take within the send timeout.
	SendTimeouts int
	// SendErrors counts connections the server closed before taking
	// their first bytes.
	SendErrors int
}

// Launch opens a's connections to addr, sends each its first bytes and
// starts its keep goroutines. The connections stay open until Close.
func Launch(addr string, a Attack) (*Swarm, error) {
	s := &Swarm{stop: make(chan struct{})}
	for i := range a.Conns {
		nc, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: connection %d: %w", a.Name, i, err)
		}
		s.conns = append(s.conns, nc)
	}
	var mu sync.Mutex // guards SendTimeouts, SendErrors
	var sent sync.WaitGroup
	for i, nc := range s.conns {
		b := a.first(i)
		if len(b) == 0 {
			continue
		}
		sent.Add(1)
		go func() {
			defer sent.Done()
			nc.SetWriteDeadline(time.Now().Add(sendTimeout))
			_, err := nc.Write(b)
			if err != nil {
				mu.Lock()
				if isTimeout(err) {
					s.SendTimeouts++
				} else {
					s.SendErrors++
				}
				mu.Unlock()
			}
		}()
	}
	sent.Wait()
	if a.keep != nil {
		for i, nc := range s.conns {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				a.keep(nc, i, s.stop)
			}()
		}
	}
	return s, nil
}

// Close stops the swarm's goroutines and closes its connections.
func (s *Swarm) Close() {
	close(s.stop)
	s.wg.Wait()
	for _, nc := range s.conns {
		nc.Close()
	}
}

// Churn returns the attack of n connections that each, every 20 ms until
// the attack ends, send half of a request (a set's line and part of its
// value, a get line without its end, a set's line without its value, a
// small get followed by half of another) and disconnect, then connect
// again to addr: a proxy must not forward a request it has not received
// whole, nor leave a server connection out of step.
func Churn(addr string, d Data, n int) Attack {
	halves := [][]byte{
		[]byte("set churn 0 0 100\r\n" + strings.Repeat("x", 50)),
		[]byte("get " + BigKey(0) + " " + BigKey(1%max(d.Big, 1))),
		[]byte("set churn 0 0 10"),
		[]byte("get " + smallKey(1) + "\r\nget " + BigKey(0)),
	}
	return Attack{
		Name:  fmt.Sprintf("churn-%d", n),
		Conns: n,
		first: func(int) []byte { return nil },
		keep: func(nc net.Conn, i int, stop <-chan struct{}) {
			defer func() { nc.Close() }()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				nc.SetWriteDeadline(time.Now().Add(sendTimeout))
				nc.Write(halves[(i+j)%len(halves)])
				nc.Close()
				c, err := net.DialTimeout("tcp", addr, ioTimeout)
				if err != nil {
					return
				}
				nc = c
			}
		},
	}
}

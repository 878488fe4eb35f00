package server

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// The command log (klog) is twemcache's: one line per sampled command,
//
//	127.0.0.1:55438 - [09/Jul/2012:18:15:45 -0700] "set foo 0 0 3" 1 6
//
// the client's address, the local time, the command (for the get family,
// the command name and one key: a multi-get logs one line per key; for
// other commands, the command line as received), a status and the length
// of the reply. Status is twemcache's: for storage commands 0 NOT_STORED
// (also for a refused value), 1 STORED, 2 EXISTS, 3 NOT_FOUND; for incr
// and decr 0 done, 1 non-numeric, 2 out of memory, 3 NOT_FOUND; for a get
// 0 hit (the length is the VALUE reply's) and 1 miss (length 0); corvid
// adds delete and touch, 1 DELETED or TOUCHED and 3 NOT_FOUND.
//
// Connections format lines into one of klogShards buffers (picked per
// connection) under that buffer's lock; a writer goroutine moves them to
// the file every klogInterval, or sooner when a buffer is half full. A
// line that does not fit its buffer is dropped and counted
// (klog_discarded), so a slow disk never slows clients. When klog is off
// the server's klog is nil and connections only test that.
const (
	klogShards     = 16
	klogShardBytes = 256 << 10
	klogInterval   = 100 * time.Millisecond
	klogTimeFormat = "02/Jan/2006:15:04:05 -0700"
)

// twemcache's status codes.
const (
	klogNotStored = 0
	klogStored    = 1
	klogExists    = 2
	klogNotFound  = 3

	klogHit  = 0
	klogMiss = 1

	klogDeltaOK         = 0
	klogDeltaNonNumeric = 1
	klogDeltaNoMemory   = 2
)

type klogShard struct {
	mu  sync.Mutex // guards buf
	buf []byte
	_   [64 - 32]byte
}

// klog is the command logger of a server.
type klog struct {
	path   string
	sample uint32
	max    int // bytes a shard buffers; klogShardBytes

	shards [klogShards]klogShard

	logged, discarded, skipped atomic.Uint64

	wake   chan struct{}
	reopen chan chan error
	stop   chan struct{}
	done   chan struct{}
	f      *os.File // owned by the writer goroutine once started
}

// openKlog opens path for appending and starts the writer; sample is the
// one-in-N sampling rate (1 logs everything).
func openKlog(path string, sample int) (*klog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open command log: %w", err)
	}
	k := newKlog(path, sample)
	k.f = f
	go k.run()
	return k, nil
}

// newKlog returns a klog without file or writer.
func newKlog(path string, sample int) *klog {
	return &klog{
		path:   path,
		sample: uint32(max(sample, 1)),
		max:    klogShardBytes,
		wake:   make(chan struct{}, 1),
		reopen: make(chan chan error),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// add appends one formatted line to a shard, or drops it when the shard
// is full.
func (k *klog) add(shard uint32, line []byte) {
	s := &k.shards[shard%klogShards]
	s.mu.Lock()
	if len(s.buf)+len(line) > k.max {
		s.mu.Unlock()
		k.discarded.Add(1)
		return
	}
	s.buf = append(s.buf, line...)
	half := len(s.buf) > k.max/2
	s.mu.Unlock()
	k.logged.Add(1)
	if half {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
}

// drain moves every shard's lines to out and returns it.
func (k *klog) drain(out []byte) []byte {
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		out = append(out, s.buf...)
		s.buf = s.buf[:0]
		s.mu.Unlock()
	}
	return out
}

// run writes the buffered lines to the file until close.
func (k *klog) run() {
	defer close(k.done)
	t := time.NewTicker(klogInterval)
	defer t.Stop()
	var out []byte
	flush := func() {
		out = k.drain(out[:0])
		if len(out) > 0 && k.f != nil {
			k.f.Write(out) // a failed write loses these lines only
		}
		if cap(out) > 4*klogShardBytes {
			out = nil
		}
	}
	for {
		select {
		case <-k.stop:
			flush()
			if k.f != nil {
				k.f.Close()
			}
			return
		case <-t.C:
			flush()
		case <-k.wake:
			flush()
		case reply := <-k.reopen:
			flush()
			f, err := os.OpenFile(k.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				if k.f != nil {
					k.f.Close()
				}
				k.f = f
			}
			reply <- err
		}
	}
}

// reopenFile makes the writer close and reopen the file, after writing
// what is buffered.
func (k *klog) reopenFile() error {
	reply := make(chan error, 1)
	select {
	case k.reopen <- reply:
		return <-reply
	case <-k.done:
		return errKlogClosed
	}
}

var errKlogClosed = errors.New("server: command log closed")

// close writes what is buffered, closes the file and waits for the writer.
func (k *klog) close() {
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
}

// ReopenLogs reopens the command log file (Config.KlogFile) after writing
// what is buffered, so that a rotated log is continued in a new file; the
// corvid command calls it on SIGHUP. It does nothing when the command log
// is off.
func (s *Server) ReopenLogs() error {
	if s.klog == nil {
		return nil
	}
	if err := s.klog.reopenFile(); err != nil {
		return fmt.Errorf("cannot reopen %s: %w", s.cfg.KlogFile, err)
	}
	return nil
}

// klogSampled reports whether the connection's next command falls in the
// sample, counting the others as skipped.
func (c *conn) klogSampled() bool {
	k := c.srv.klog
	c.klogTick++
	if c.klogTick%k.sample != 0 {
		k.skipped.Add(1)
		return false
	}
	return true
}

// klogWrite logs one command: words are written in order, separated by a
// space, inside the quotes.
func (c *conn) klogWrite(cmd, key []byte, status, size int) {
	if !c.klogSampled() {
		return
	}
	if c.peer == "" {
		c.peer = c.nc.RemoteAddr().String()
	}
	b := c.klogBuf[:0]
	b = append(b, c.peer...)
	b = append(b, " - ["...)
	if now := time.Now(); now.Unix() != c.klogSec || c.klogTime == nil {
		// The time changes once a second: format it then only.
		c.klogSec = now.Unix()
		c.klogTime = now.AppendFormat(c.klogTime[:0], klogTimeFormat)
	}
	b = append(b, c.klogTime...)
	b = append(b, "] \""...)
	b = append(b, cmd...)
	if key != nil {
		b = append(b, ' ')
		b = append(b, key...)
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, '\n')
	c.klogBuf = b
	c.srv.klog.add(c.klogShard, b)
}

// klogLine logs the command line being handled (c.line) with its reply
// line, or no reply.
func (c *conn) klogLine(status int, reply string, noreply bool) {
	size := len(reply)
	if noreply {
		size = 0
	}
	c.klogWrite(c.line, nil, status, size)
}

// klogArith logs an incr or decr with twemcache's delta codes.
func (c *conn) klogArith(req *protocol.Request, v uint64, res storage.StoreResult, err error) {
	switch {
	case err != nil:
		c.klogLine(klogDeltaNoMemory, "SERVER_ERROR out of memory", req.NoReply)
	case res == storage.Stored:
		var num [20]byte
		c.klogLine(klogDeltaOK, string(strconv.AppendUint(num[:0], v, 10)), req.NoReply)
	case res == storage.NonNumeric:
		c.klogLine(klogDeltaNonNumeric, storeReplies[res], req.NoReply)
	default:
		c.klogLine(klogNotFound, "NOT_FOUND", req.NoReply)
	}
}

// trimLine returns a request line without its "\r\n" or "\n".
func trimLine(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

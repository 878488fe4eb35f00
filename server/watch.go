package server

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// Watchers: memcached's "watch" turns a connection into a stream of log
// lines about the events it asked for. Each event is formatted once and
// appended to the buffer of every watcher that wants it; a watcher's
// connection writes its buffer out from its own goroutine. A watcher that
// cannot keep up loses the lines that do not fit its buffer and is told
// how many with a "skipped=N" line, as memcached does. A watcher's lines,
// those being written to its socket included, stay within its buffer
// size, so a watcher that does not read holds that much memory and no
// more, and the connections it watches never wait for it: they only
// append to its buffer under a lock that no write holds. When nobody
// watches, the server's flags are 0 and an event costs one atomic load.
const (
	watchFetchers = 1 << iota
	watchMutations
	watchEvictions

	// maxWatchers is memcached's WATCHER_LIMIT.
	maxWatchers = 20
	// defaultWatcherBuf is memcached's watcher_logbuf_size default.
	defaultWatcherBuf = 256 << 10
	// defaultWorkerBuf is memcached's worker_logbuf_size default.
	defaultWorkerBuf = 64 << 10
	// skipReserve is the room beyond a line that a watcher's buffer
	// must have for the line to be taken, as memcached's logger asks
	// for: the "skipped=N" line that may go before it fits in it.
	skipReserve = 128
)

// watchTypes are the event types "watch" accepts; those corvid does not
// produce (connections, system events, the proxy) are accepted and stay
// silent.
var watchTypes = map[string]uint32{
	"fetchers": watchFetchers, "mutations": watchMutations, "evictions": watchEvictions,
	"rawcmds": 0, "connevents": 0, "sysevents": 0,
	"proxyreqs": 0, "proxyevents": 0, "proxyuser": 0,
}

// watchHub is the server's set of watchers.
type watchHub struct {
	flags atomic.Uint32 // union of the watchers' flags
	gid   atomic.Uint64 // memcached's global log entry id

	sent, skipped atomic.Uint64 // log_watcher_sent, log_watcher_skipped
	written       atomic.Uint64 // log_worker_written: lines published

	mu   sync.Mutex // guards list
	list []*watcher
}

// watcher is one watching connection's buffer.
type watcher struct {
	flags uint32
	max   int
	wake  chan struct{}

	mu  sync.Mutex // guards buf, sending, skipped
	buf []byte
	// sending is the bytes the writer has taken from buf and not yet
	// written: they count against max until they are.
	sending int
	skipped uint64
}

// add registers a watcher, or returns nil at the limit.
func (h *watchHub) add(flags uint32, size int) *watcher {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.list) >= maxWatchers {
		return nil
	}
	w := &watcher{flags: flags, max: size, wake: make(chan struct{}, 1)}
	h.list = append(h.list, w)
	h.flags.Or(flags)
	return w
}

// full reports whether the hub holds maxWatchers watchers.
func (h *watchHub) full() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.list) >= maxWatchers
}

// remove unregisters a watcher.
func (h *watchHub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var flags uint32
	list := h.list[:0]
	for _, x := range h.list {
		if x != w {
			list = append(list, x)
			flags |= x.flags
		}
	}
	clear(h.list[len(list):])
	h.list = list
	h.flags.Store(flags)
}

// count returns the number of watchers.
func (h *watchHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.list)
}

// publish hands one line to every watcher of the event type flag.
func (h *watchHub) publish(flag uint32, line []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.written.Add(1)
	for _, w := range h.list {
		if w.flags&flag == 0 {
			continue
		}
		if w.push(line) {
			h.sent.Add(1)
		} else {
			h.skipped.Add(1)
		}
	}
}

// push appends a line, preceded by the count of lines skipped before it,
// or counts it as skipped when the buffer has not room for it and
// skipReserve more.
func (w *watcher) push(line []byte) bool {
	w.mu.Lock()
	if len(w.buf)+w.sending+len(line)+skipReserve > w.max {
		w.skipped++
		w.mu.Unlock()
		return false
	}
	if w.skipped > 0 {
		w.buf = append(w.buf, "skipped="...)
		w.buf = strconv.AppendUint(w.buf, w.skipped, 10)
		w.buf = append(w.buf, '\n')
		w.skipped = 0
	}
	w.buf = append(w.buf, line...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// take moves the buffered lines to out, to be written; they count as
// buffered until done is called.
func (w *watcher) take(out []byte) []byte {
	w.mu.Lock()
	out = append(out, w.buf...)
	w.sending += len(w.buf)
	w.buf = w.buf[:0]
	w.mu.Unlock()
	return out
}

// done frees the room of n bytes taken by take.
func (w *watcher) done(n int) {
	w.mu.Lock()
	w.sending -= n
	w.mu.Unlock()
}

// watching reports whether anyone watches events of type flag.
func (s *Server) watching(flag uint32) bool { return s.watch.flags.Load()&flag != 0 }

// appendLogPrefix appends memcached's "ts=<sec>.<usec> gid=<n> " (the
// microseconds without padding, as memcached prints them).
func (s *Server) appendLogPrefix(b []byte) []byte {
	now := time.Now()
	b = append(b, "ts="...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(now.Nanosecond()/1000), 10)
	b = append(b, " gid="...)
	b = strconv.AppendUint(b, s.watch.gid.Add(1), 10)
	return append(b, ' ')
}

// watchCommand makes the connection a watcher: "OK", then the lines of
// the events asked for (fetchers when none is named) until it closes.
func (c *conn) watchCommand(req *protocol.Request) {
	if c.srv.cfg.DisableWatch {
		c.reply("CLIENT_ERROR watch commands not allowed")
		return
	}
	if len(c.wbuf) > 0 {
		// As memcached: the watcher's lines would follow replies still
		// waiting to be written.
		c.reply("ERROR cannot pipeline other commands before watch")
		return
	}
	var flags uint32
	for _, a := range req.Args {
		f, ok := watchTypes[string(a)]
		if !ok {
			c.reply("ERROR")
			return
		}
		flags |= f
	}
	if len(req.Args) == 0 {
		flags = watchFetchers
	}
	if c.isUDP() {
		c.watchUDP()
		return
	}
	size := c.srv.cfg.WatcherLogBufSize
	if size == 0 {
		size = defaultWatcherBuf
	}
	w := c.srv.watch.add(flags, size)
	if w == nil {
		c.reply("WATCHER_TOO_MANY log watcher limit reached")
		return
	}
	c.watch = w
	c.state.Store(connWatch)
	c.reply("OK")
	c.r = c.w // a watcher reads no more commands
}

// serveWatch streams the watcher's lines to the client until it closes
// the connection or the server stops it. The caller has flushed the "OK".
func (c *conn) serveWatch() {
	w := c.watch
	defer c.srv.watch.remove(w)
	nc := c.nc
	// A watcher is never idle, as in memcached: drop the idle timeout's
	// deadline left from reading the watch command. stop sets stopped
	// before its deadline, so checking stopped after clearing ours
	// cannot miss a stop.
	nc.SetReadDeadline(time.Time{})
	if c.stopped.Load() {
		return
	}
	done := make(chan struct{})
	go func() {
		// Input is ignored; the read ends when the client closes or
		// stop sets the deadline, and closing nc ends a blocked write.
		io.Copy(io.Discard, nc)
		nc.Close()
		close(done)
	}()
	var out []byte
	for {
		select {
		case <-done:
			return
		case <-w.wake:
		}
		out = w.take(out[:0])
		if len(out) == 0 {
			continue
		}
		n, err := nc.Write(out)
		w.done(len(out))
		c.stats.bytesWritten += uint64(n)
		if err != nil {
			nc.Close()
			<-done
			return
		}
		if cap(out) > 4*defaultWatcherBuf {
			out = nil
		}
	}
}

// fd returns the connection's socket descriptor, memcached's cfd, or -1.
func (c *conn) fd() int {
	if fd := c.sfd.Load(); fd != 0 {
		return int(fd)
	}
	fd := socketFD(c.nc)
	c.sfd.Store(int32(fd))
	return fd
}

// watchGet logs a lookup for watchers of fetchers: memcached's item_get
// line, with the class and value length of the item found.
func (c *conn) watchGet(key []byte, found bool) {
	var it storage.DumpItem
	if found {
		found = c.srv.cache.Inspect(key, &it)
	}
	b := c.srv.appendLogPrefix(c.watchBuf[:0])
	b = append(b, "type=item_get key="...)
	b = appendURIEncoded(b, key)
	if found {
		b = append(b, " status=found clsid="...)
		b = strconv.AppendInt(b, int64(it.Class), 10)
	} else {
		b = append(b, " status=not_found clsid=0"...)
	}
	b = append(b, " cfd="...)
	b = strconv.AppendInt(b, int64(c.fd()), 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(it.ValueLen), 10)
	b = append(b, '\n')
	c.watchBuf = b
	c.srv.watch.publish(watchFetchers, b)
}

// watchLookup logs the lookup memcached makes before a store, incr, decr
// or touch.
func (c *conn) watchLookup(key []byte) {
	if c.srv.watching(watchFetchers) {
		c.watchGet(key, true)
	}
}

// watchStoreNames are memcached's names of the store commands and results.
var (
	watchStoreCmds = [...]string{
		storage.ModeSet: "set", storage.ModeAdd: "add", storage.ModeReplace: "replace",
		storage.ModeAppend: "append", storage.ModePrepend: "prepend", storage.ModeCAS: "cas",
	}
	watchStoreStatus = [...]string{
		storage.Stored: "stored", storage.NotStored: "not_stored", storage.Exists: "exists",
		storage.NotFound: "not_found", storage.NonNumeric: "not_stored",
	}
)

// watchStore logs a store for watchers of mutations: memcached's
// item_store line. status is one of watchStoreStatus, "too_large" or
// "no_memory".
func (c *conn) watchStore(mode storage.StoreMode, key []byte, exptime int64, vlen int, status string) {
	var it storage.DumpItem
	cls := c.srv.cache.ClassOf(len(key), vlen)
	ttl := int64(0)
	now := c.srv.cache.CurrentTime()
	if status == "stored" && c.srv.cache.Inspect(key, &it) {
		cls, vlen = it.Class, it.ValueLen // append and prepend log the whole value
	}
	// The TTL as memcached prints it: seconds left, wrapped to 32 bits.
	switch {
	case exptime > 0 && exptime <= 60*60*24*30:
		ttl = exptime
	case exptime > 0:
		ttl = exptime - now
	case exptime < 0:
		ttl = -now
	}
	b := c.srv.appendLogPrefix(c.watchBuf[:0])
	b = append(b, "type=item_store key="...)
	b = appendURIEncoded(b, key)
	b = append(b, " status="...)
	b = append(b, status...)
	b = append(b, " cmd="...)
	b = append(b, watchStoreCmds[mode]...)
	b = append(b, " ttl="...)
	b = strconv.AppendUint(b, uint64(uint32(ttl)), 10)
	b = append(b, " clsid="...)
	b = strconv.AppendInt(b, int64(cls), 10)
	b = append(b, " cfd="...)
	b = strconv.AppendInt(b, int64(c.fd()), 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(vlen), 10)
	b = append(b, '\n')
	c.watchBuf = b
	c.srv.watch.publish(watchMutations, b)
}

// watchEviction is the cache's eviction hook: memcached's eviction line
// for watchers of evictions.
func (s *Server) watchEviction(ev storage.EvictedItem) {
	if !s.watching(watchEvictions) {
		return
	}
	b := s.appendLogPrefix(make([]byte, 0, 128+3*len(ev.Key)))
	b = append(b, "type=eviction key="...)
	b = appendURIEncoded(b, ev.Key)
	if ev.Fetched {
		b = append(b, " fetch=yes"...)
	} else {
		b = append(b, " fetch=no"...)
	}
	b = append(b, " ttl="...)
	b = strconv.AppendInt(b, ev.TTL, 10)
	b = append(b, " la="...)
	b = strconv.AppendInt(b, ev.Idle, 10)
	b = append(b, " clsid="...)
	b = strconv.AppendInt(b, int64(ev.Class), 10)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(ev.ValueSize), 10)
	b = append(b, '\n')
	s.watch.publish(watchEvictions, b)
}

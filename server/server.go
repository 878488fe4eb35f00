package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/internal/tcpnet"
	"github.com/corvidcache/corvid/storage"
)

// Server is a memcached-compatible cache server. Create one with New, run it
// with Serve, and stop it by cancelling Serve's context (or with the
// "shutdown" command when EnableShutdown is set). Its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	cache   *storage.Cache
	started time.Time

	listeners []net.Listener
	// tlsOn tells, for each of listeners, whether it serves TLS.
	tlsOn []bool
	// tls is the TLS state (Config.TLS); nil without TLS.
	tls *tlsServer
	// unixFile is the Unix socket file as listen created it, nil
	// without one.
	unixFile os.FileInfo
	// udp serves the sockets of Config.UDPAddrs, one goroutine each.
	udp []*udpConn
	// listenConns is startConns, set once the listeners are open.
	listenConns int

	mu    sync.Mutex // guards conns, closing, killed, listenOff, listenOffAt, listenOn
	conns map[*conn]struct{}
	// listenOff is set while the server accepts no connection because
	// it is full (memcached's accepting_conns 0), since listenOffAt;
	// listenOn is closed when a connection closes and listening
	// resumes.
	listenOff   bool
	listenOffAt time.Time
	listenOn    chan struct{}
	// closing is set once shutdown has begun; new connections are refused.
	closing bool
	// killed is set once closeStuck has closed the connections: one that
	// leaves its event loop afterwards is closed at once.
	killed bool

	// loops are the event loops serving connections when
	// Config.EventLoops > 0 (Linux only); nil otherwise.
	loops    []*loop
	nextLoop atomic.Uint32 // round-robin position in loops

	wg       sync.WaitGroup // connection, event loop and accept goroutines
	shutdown chan struct{}  // closed by the "shutdown" command
	stopOnce sync.Once
	closeErr error // set by stopOnce: why the snapshot was not saved
	// hurry is closed by CloseNow: stopping connections get no grace.
	hurry     chan struct{}
	hurryOnce sync.Once
	// stopping is closed when Close begins.
	stopping chan struct{}

	// authUsers holds the entries of Config.AuthFile when it is set
	// (possibly none); ReloadAuth replaces them.
	authUsers atomic.Pointer[[]authEntry]
	// saveOnClose makes Close save the cache to Config.SnapshotFile; it
	// is set once New has succeeded, so a server that failed to start
	// never overwrites a snapshot.
	saveOnClose bool

	verbosity atomic.Int32
	detail    prefixStats
	hot       *hotKeys // nil when hot-key tracking is off
	klog      *klog    // nil when the command log is off
	watch     watchHub
	stats     globalStats
	rbufs     readBufs
	wbufs     writeBufs
	// respOOM counts the get lines refused for Config.MaxGetKeys
	// (response_obj_oom).
	respOOM atomic.Uint64
	// dumping is set while a metadump runs: as memcached's crawler, the
	// server serves one at a time and answers the others BUSY, so that
	// the dumps' buffers and walks do not add up.
	dumping atomic.Bool

	// saslUsers is the SASL password database (Config.SASLPasswordDB),
	// nil without one; ReloadAuth replaces it.
	saslUsers atomic.Pointer[saslPasswordDB]
}

// New creates a Server, its cache, and binds its listeners. The caller must
// call Serve (which releases everything when it returns) or Close.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.SASL && cfg.Protocol == ProtoASCII {
		// ASCII clients would bypass SASL; memcached refuses this too.
		return nil, ErrSASLNeedsBinary
	}
	if cfg.AuthFile != "" && cfg.Protocol == ProtoBinary {
		// Binary clients would bypass the auth file; memcached refuses
		// this too.
		return nil, ErrAuthNeedsASCII
	}
	if cfg.SASL && len(cfg.UDPAddrs) > 0 {
		// The clients of a UDP socket share its conn: one client's
		// authentication would serve every sender. memcached refuses
		// this too.
		return nil, ErrSASLWithUDP
	}
	cache, err := storage.New(cfg.Storage)
	if err != nil {
		return nil, fmt.Errorf("cannot create cache: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		cache:    cache,
		started:  time.Now(),
		conns:    make(map[*conn]struct{}),
		shutdown: make(chan struct{}),
		hurry:    make(chan struct{}),
		stopping: make(chan struct{}),
	}
	s.rbufs.limit = max(cfg.ReadBufMemLimit, 0)
	s.wbufs.limit = max(cfg.WriteBufMemLimit, 0)
	// Room for two of the largest replies in flight past the limit.
	s.wbufs.over = max(s.wbufs.limit/8, 2*int64(bufSize(cfg.itemSizeMax()+1024)))
	s.wbufs.readerRoom = s.wbufs.over
	if cfg.AuthFile != "" {
		if len(cfg.UDPAddrs) > 0 {
			cache.Close()
			return nil, ErrAuthWithUDP
		}
		entries, err := loadAuthFile(cfg.AuthFile)
		if err != nil {
			cache.Close()
			return nil, err
		}
		s.authUsers.Store(&entries)
	}
	if cfg.SASL && cfg.SASLPasswordDB != "" {
		db, err := loadSASLPasswordDB(cfg.SASLPasswordDB)
		if err != nil {
			cache.Close()
			return nil, err
		}
		s.saslUsers.Store(&db)
	}
	if cfg.TLS != nil {
		if len(cfg.TCPAddrs) == 0 && cfg.UnixPath == "" {
			cache.Close()
			return nil, ErrTLSWithoutTCP
		}
		if s.tls, err = newTLSServer(*cfg.TLS, cache.CurrentTime()); err != nil {
			cache.Close()
			return nil, err
		}
	}
	s.verbosity.Store(int32(cfg.Verbosity))
	cache.SetEvictionHook(s.watchEviction)
	s.detail.enabled.Store(cfg.DetailEnabled)
	s.hot = newHotKeys(&s.cfg)
	s.detail.delim = cfg.PrefixDelimiter
	if cfg.KlogFile != "" {
		if s.klog, err = openKlog(cfg.KlogFile, cfg.KlogSample); err != nil {
			cache.Close()
			return nil, err
		}
	}
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	s.listenConns = s.countStartConns()
	s.stats.totalConns.Add(uint64(s.startConns()))
	if err := s.checkMaxConns(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startLoops(); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.SnapshotFile != "" {
		if err := checkSnapshotWritable(cfg.SnapshotFile); err != nil {
			s.Close()
			return nil, err
		}
		s.loadSnapshot()
		s.saveOnClose = true
	}
	return s, nil
}

// checkSnapshotWritable makes sure a snapshot can be saved at path, as
// memcached refuses to start when it cannot open its memory file: found
// only at stop, the failure would lose the whole cache.
func checkSnapshotWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("cannot save snapshots to %s: it is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot save snapshots to %s: %w", path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// loadSnapshot fills the cache from Config.SnapshotFile, which it
// consumes (see storage.Cache.LoadFile): until the next clean stop saves
// again, a crash restarts empty. A missing, damaged or foreign file is
// logged and the server starts empty; so does a snapshot that cannot be
// removed (a read-only directory), since the next crash would bring back
// its items, deleted or changed since.
func (s *Server) loadSnapshot() {
	path := s.cfg.SnapshotFile
	start := time.Now()
	st, err := s.cache.LoadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.cfg.Logger.Info("no snapshot; starting empty", "file", path)
	case errors.Is(err, storage.ErrSnapshotKept):
		s.cfg.Logger.Error("cannot remove the snapshot after reading it, so it is not loaded (a crash would bring back its items); starting empty", "err", err)
	case err != nil:
		s.cfg.Logger.Warn("cannot restore the cache; starting empty", "err", err)
	default:
		s.cfg.Logger.Info("cache restored", "file", path, "items", st.Items,
			"expired", st.Expired, "skipped", st.Skipped, "bytes", st.Bytes,
			"seconds", time.Since(start).Seconds())
	}
}

// saveSnapshot writes the cache to Config.SnapshotFile.
func (s *Server) saveSnapshot() error {
	start := time.Now()
	st, err := s.cache.SaveFile(s.cfg.SnapshotFile)
	if err != nil {
		s.cfg.Logger.Error("cannot save the cache", "err", err)
		return err
	}
	s.cfg.Logger.Info("cache saved", "file", s.cfg.SnapshotFile, "items", st.Items,
		"bytes", st.Bytes, "seconds", time.Since(start).Seconds())
	return nil
}

// testHookUnixListening, when set, runs once the Unix socket listens.
var testHookUnixListening func(path string)

func (s *Server) listen() error {
	lc := net.ListenConfig{}
	for _, addr := range s.cfg.TCPAddrs {
		ln, err := lc.Listen(context.Background(), tcpnet.Network(addr), addr)
		if err != nil {
			return listenError{fmt.Errorf("cannot listen on %s: %w", addr, err)}
		}
		s.listeners = append(s.listeners, ln)
		s.tlsOn = append(s.tlsOn, s.tls != nil && !s.tls.isPlainAddr(addr))
	}
	if p := s.cfg.UnixPath; p != "" {
		// A stale socket file from a previous run would make Listen fail.
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(p)
		}
		ln, err := tcpnet.ListenUnix(p, s.cfg.UnixMask)
		if err != nil {
			return listenError{fmt.Errorf("cannot listen on %s: %w", p, err)}
		}
		if testHookUnixListening != nil {
			testHookUnixListening(p)
		}
		if err := os.Chmod(p, s.cfg.UnixMask); err != nil {
			ln.Close()
			return fmt.Errorf("cannot set mode of %s: %w", p, err)
		}
		// The socket file is removed at the stop only while it is still
		// this server's: a server started on the same path meanwhile
		// has replaced it, and keeps it.
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		s.unixFile, _ = os.Lstat(p)
		s.listeners = append(s.listeners, ln)
		s.tlsOn = append(s.tlsOn, false) // as memcached: Unix sockets are plain
	}
	if err := s.listenUDP(); err != nil {
		return listenError{fmt.Errorf("cannot listen on UDP: %w", err)}
	}
	if len(s.listeners) == 0 && len(s.udp) == 0 {
		return errors.New("server: no listener configured")
	}
	return nil
}

// Addrs returns the addresses the server listens on, in the order of
// Config.TCPAddrs followed by the Unix socket (UDPAddrs returns the UDP
// ones).
func (s *Server) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		addrs[i] = ln.Addr()
	}
	return addrs
}

// Cache returns the server's storage engine.
func (s *Server) Cache() *storage.Cache { return s.cache }

// Serve accepts connections until ctx is cancelled, a "shutdown" command
// arrives or Close is called, then stops the server as Close does: every connection finishes
// the requests it has already received, within Config.ShutdownGrace, and
// the cache is saved and released. It returns nil after a clean stop, and
// Close's error when the snapshot could not be saved.
func (s *Server) Serve(ctx context.Context) error {
	// The loops are counted under mu, so a Close running meanwhile either
	// waits for them or has begun first and none starts: a WaitGroup's
	// Add from zero must happen before its Wait.
	s.mu.Lock()
	if !s.closing {
		for i, ln := range s.listeners {
			s.wg.Add(1)
			go s.acceptLoop(ln, s.tlsOn[i])
		}
		for _, u := range s.udp {
			s.wg.Add(1)
			go s.udpLoop(u)
		}
	}
	s.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-s.shutdown:
	case <-s.stopping: // Close was called
	}
	return s.Close()
}

// Close stops the server: it closes the listeners, lets every connection
// answer the requests it has already read and gives them
// Config.ShutdownGrace to write those replies, then closes the connections
// still writing (clients that do not read), saves the snapshot
// (Config.SnapshotFile) and releases the cache. It waits for every
// goroutine the server started. It returns an error when the snapshot
// could not be saved (every call does). Close is idempotent; CloseNow cuts
// its grace short.
func (s *Server) Close() error {
	s.stopOnce.Do(func() {
		close(s.stopping)
		s.mu.Lock()
		s.closing = true
		for _, ln := range s.listeners {
			ln.Close()
		}
		for _, u := range s.udp {
			u.pc.Close()
		}
		for c := range s.conns {
			c.stop()
		}
		s.stopLoops()
		s.mu.Unlock()
		s.removeUnixSocket()
		s.waitGrace()
		if s.klog != nil {
			s.klog.close()
		}
		if s.saveOnClose {
			s.closeErr = s.saveSnapshot()
		}
		s.cache.Close()
	})
	return s.closeErr
}

// removeUnixSocket removes the Unix socket file, unless another server
// has replaced it since this one created it.
func (s *Server) removeUnixSocket() {
	if s.unixFile == nil {
		return
	}
	if fi, err := os.Lstat(s.cfg.UnixPath); err == nil && os.SameFile(fi, s.unixFile) {
		os.Remove(s.cfg.UnixPath)
	}
}

// Stopping returns a channel that is closed once the server begins to
// stop, whatever asked it to (Close, Serve's context, the "shutdown"
// command): a caller that asks for a stop while this one is under way can
// then hurry it with CloseNow.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

// CloseNow stops the server as Close does, without the grace: connections
// still writing replies are closed at once; the snapshot is still saved.
// Called while Close (or Serve) is stopping the server, it ends the grace
// period there and returns once the server is released.
func (s *Server) CloseNow() error {
	s.hurryOnce.Do(func() { close(s.hurry) })
	return s.Close()
}

// waitGrace waits for every goroutine the server started. Connections that
// have not closed when Config.ShutdownGrace ends, or when CloseNow is
// called, are closed.
func (s *Server) waitGrace() {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(max(s.cfg.ShutdownGrace, 0))
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
		s.closeStuck("shutdown grace over")
	case <-s.hurry:
		s.closeStuck("closing connections without grace")
	}
	<-done
}

// closeStuck closes every connection still open while the server stops,
// ending the writes blocked on clients that do not read.
func (s *Server) closeStuck(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.conns); n > 0 {
		s.cfg.Logger.Warn(why+"; closing connections still open", "conns", n)
	}
	s.killed = true
	for c := range s.conns {
		c.kill()
	}
	s.killLoops()
}

// requestShutdown asks Serve to stop, as the "shutdown" command does.
func (s *Server) requestShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.shutdown:
	default:
		close(s.shutdown)
	}
}

// nextRetry returns the pause after a failed accept or read that followed
// a pause of d: 5 ms, then doubling up to 1 s.
func nextRetry(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// acceptLoop accepts connections on ln until it is closed; with useTLS
// they speak TLS. Temporary accept errors (such as running out of file
// descriptors) back off from 5 ms, doubling, to 1 s instead of spinning.
// While the server is full it accepts nothing more (see handle).
func (s *Server) acceptLoop(ln net.Listener, useTLS bool) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = nextRetry(delay)
			s.cfg.Logger.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		for wait := s.handle(nc, useTLS); wait != nil; wait = s.handle(nc, useTLS) {
			select {
			case <-wait:
			case <-s.stopping:
				nc.Close()
				return
			}
		}
	}
}

// tooManyConns is what memcached writes to a connection beyond -c before
// closing it.
const tooManyConns = "ERROR Too many open connections\r\n"

// fixedFDs is the number of descriptors memcached keeps open, on the same
// command line, besides those of its clients: stdin, stdout and stderr;
// its main event base (an epoll descriptor and a signal pipe); four for
// each worker thread (an eventfd, an epoll descriptor and a pipe); and one
// for each connection it makes at start (startConns).
//
// memcached's -c is its descriptor limit (it sets RLIMIT_NOFILE to it),
// and it refuses a client by the number of the descriptor accept gave it,
// the lowest free one, which is the count of descriptors open: counting
// them so, corvid refuses at the same count of clients.
func (s *Server) fixedFDs() int {
	return 6 + 4*s.cfg.Threads + s.startConns()
}

// checkMaxConns refuses a connection limit memcached would not start
// with: one its own descriptors do not fit in, or one its start-up check
// finds too low for the descriptors it reserves per thread.
func (s *Server) checkMaxConns() error {
	if s.cfg.MaxConns < s.fixedFDs() ||
		s.startConns()+reservedFDsPerThread*s.cfg.Threads >= s.cfg.MaxConns-1 {
		return ErrMaxConnsTooLow
	}
	return nil
}

// handle serves a new connection, over TLS when useTLS is set: the
// refusal of a connection beyond the limit is written in the clear before
// any handshake, as memcached does. A TLS connection is served by a
// goroutine of its own, which makes the handshake, even with event loops.
//
// The limit is memcached's (see fixedFDs): a connection that would take
// the last descriptor below Config.MaxConns is refused, unless
// NoMaxConnsFast is set; one that would take a descriptor past it, which
// memcached's accept fails to get, is not served: handle then stops
// listening (listen_disabled_num) and returns a channel closed when a
// connection closes, after which the caller hands nc to handle again.
func (s *Server) handle(nc net.Conn, useTLS bool) (wait <-chan struct{}) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	used := s.fixedFDs() + len(s.conns)
	if used >= s.cfg.MaxConns {
		if !s.listenOff {
			s.listenOff, s.listenOffAt = true, time.Now()
			s.listenOn = make(chan struct{})
			s.stats.listenDisabled.Add(1)
		}
		wait = s.listenOn
		s.mu.Unlock()
		return wait
	}
	if !s.cfg.NoMaxConnsFast && used >= s.cfg.MaxConns-1 {
		s.mu.Unlock()
		s.stats.rejectedConns.Add(1)
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		nc.Write([]byte(tooManyConns))
		nc.Close()
		return nil
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	var tc *tls.Conn
	if useTLS {
		tc = tls.Server(nc, s.tls.base)
		nc = tc
	}
	c := newConn(s, nc)
	c.stream = !testHookCopyValues
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.totalConns.Add(1)
	if tc == nil && len(s.loops) > 0 && s.poll(c) {
		return nil // an event loop owns the connection now
	}
	go func() {
		defer s.wg.Done()
		if tc == nil || s.tls.handshake(s, c, tc) {
			c.serve()
		} else {
			tc.Close()
		}
		s.dropConn(c)
	}()
	return nil
}

// dropConn forgets a closed connection. Its descriptor is free again: a
// server that stopped listening because it was full listens again, as
// memcached does when a connection closes.
func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.listenOff {
		s.listenOff = false
		s.stats.timeListenDisabled.Add(uint64(time.Since(s.listenOffAt).Microseconds()))
		close(s.listenOn)
		s.listenOn = nil
	}
}

// accepting reports whether the server accepts connections (memcached's
// accepting_conns).
func (s *Server) accepting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.listenOff
}

// monotonic returns the nanoseconds elapsed on the cache's monotonic clock
// (Config.Storage.Clock, else the system's), which a step of the wall
// clock does not move: memcached times its idle timeout on its monotonic
// current_time too.
func (s *Server) monotonic() int64 {
	if c := s.cfg.Storage.Clock; c != nil {
		return int64(c.Monotonic())
	}
	return int64(time.Since(s.started))
}

// currConns returns the number of open client connections.
func (s *Server) currConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

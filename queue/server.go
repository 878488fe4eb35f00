package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Version is what the version command and the version stat answer.
const Version = "corvid-queue-0.1.0"

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Listener is where clients connect; required.
	Listener net.Listener
	// Backend holds the queues' items; nil: a MemBackend.
	Backend Backend
	// Queues is the configuration file's contents; nil: defaults only.
	Queues *FileConfig
	// DefaultSync is the sync policy of queues whose configuration sets none.
	DefaultSync string
	// Reload re-reads the configuration file for the reload command and
	// Server.Reload; nil: reload keeps the configuration.
	Reload func() (*FileConfig, error)
	// MaxConns is the most connections served at once (default 4096);
	// one more is answered SERVER_ERROR and closed.
	MaxConns int
	// MaxQueues is the most queues at once (default DefaultMaxQueues): each
	// holds a journal file open and a goroutine, so a command naming a new
	// queue beyond it is answered "SERVER_ERROR too many queues". The
	// queues found in the data directory at start are all opened.
	MaxQueues int
	// MaxWaiters is the most clients blocked in get/t= at once over all
	// queues (default MaxConns); beyond it a get/t= answers at once.
	MaxWaiters int
	// ShutdownGrace is how long Serve waits, once its context is done,
	// for connections busy with a request (default 1s).
	ShutdownGrace time.Duration
	// StopTimeout bounds how long Serve then waits for the connections to
	// end and the queues' journals to be written, synced and closed
	// (default 10s): past it, with an fsync stalled on a failing disk,
	// Serve logs an error and returns without them, so that the process
	// stops. What the stalled fsyncs covered was not acknowledged.
	StopTimeout time.Duration
	// Logger receives the server's log; nil: discarded.
	Logger *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Server is a Kestrel-compatible queue server speaking the memcached text
// protocol. It is safe for concurrent use.
//
// Lock order: conn.mu, then queue.mu, then Server.mu (an expiry hook run
// by a waiter's take, with the queue's mu held, opens its
// expire_to_queue), then expMu; a Store's own lock is taken last.
// Nothing waits for a queue's mu while it holds Server.mu, nor while the
// queue's name is being deleted (deleteQueue).
type Server struct {
	cfg    Config
	ln     net.Listener
	log    *slog.Logger
	start  time.Time
	done   chan struct{} // closed when the server stops
	stopMu sync.Once
	wg     sync.WaitGroup // connection goroutines

	mu     sync.Mutex // guards queues, deleting, fc, conns, closed
	queues map[string]*queue
	// deleting holds the queues whose store is being deleted, each with a
	// channel closed when it is gone: the name is created again only then,
	// or the new store would replay the old journal and the delete would
	// then remove the new store's file.
	deleting map[string]chan struct{}
	fc       *FileConfig
	conns    map[*conn]struct{}
	closed   bool

	stopping     chan struct{} // closed by the shutdown command
	stoppingOnce sync.Once

	expMu sync.Mutex // guards moved
	// moved are the queues expired items were moved into since their
	// waiters were last served (dispatchMoved).
	moved map[*queue]struct{}

	waiters atomic.Int64
	stats   counters
}

// counters are the server's global stats. queueExpires is Kestrel's
// queue_expires: queues deleted by its max_queue_age (empty and older than
// that), not items; corvid queue has no max_queue_age, so it stays 0, and
// expired items are counted per queue (queue_<name>_expired_items).
type counters struct {
	totalItems, currConns, totalConns, cmdGet, cmdSet, cmdPeek atomic.Int64
	getHits, getMisses, bytesRead, bytesWritten                atomic.Int64
	queueCreates, queueDeletes, queueExpires                   atomic.Int64
}

// DefaultMaxQueues is Config.MaxQueues when unset.
const DefaultMaxQueues = 1024

// DefaultStopTimeout is Config.StopTimeout when unset.
const DefaultStopTimeout = 10 * time.Second

// New opens the backend's queues and returns a server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Listener == nil {
		return nil, errors.New("queue: no listener")
	}
	if cfg.Backend == nil {
		cfg.Backend = &MemBackend{}
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4096
	}
	if cfg.MaxQueues <= 0 {
		cfg.MaxQueues = DefaultMaxQueues
	}
	if cfg.MaxWaiters <= 0 {
		cfg.MaxWaiters = cfg.MaxConns
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Queues == nil {
		cfg.Queues = &FileConfig{}
	}
	s := &Server{
		cfg: cfg, ln: cfg.Listener, log: cfg.Logger, start: cfg.Now(),
		done: make(chan struct{}), stopping: make(chan struct{}),
		queues: make(map[string]*queue), fc: cfg.Queues, conns: make(map[*conn]struct{}),
		deleting: make(map[string]chan struct{}),
	}
	names, err := cfg.Backend.Names()
	if err != nil {
		return nil, fmt.Errorf("cannot list queues: %w", err)
	}
	for _, n := range names {
		if _, err := s.openQueue(n, false); err != nil {
			s.closeQueues()
			return nil, err
		}
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stopping is closed when a client sends shutdown.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

// Serve accepts connections until ctx is done or Close is called, then
// closes every connection (their open items return to their queues) and
// the queues' stores.
func (s *Server) Serve(ctx context.Context) error {
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-ctx.Done():
		case <-s.stopping:
		case <-stop:
		}
		s.ln.Close()
	}()
	delay := 5 * time.Millisecond
	var err error
	for {
		nc, aerr := s.ln.Accept()
		if aerr != nil {
			if s.isClosed() || ctx.Err() != nil || isStopping(s.stopping) || errors.Is(aerr, net.ErrClosed) {
				break
			}
			s.log.Warn("accept failed", "err", aerr)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		s.startConn(nc)
	}
	close(stop)
	watch.Wait()
	s.shutdown()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

func isStopping(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Close stops the server as Serve's context would.
func (s *Server) Close() error {
	s.ln.Close()
	s.stoppingOnce.Do(func() { close(s.stopping) })
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// shutdown ends every wait, gives busy connections the grace to finish,
// closes them (their open reads are aborted) and closes the stores.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.stopMu.Do(func() { close(s.done) })
	for _, c := range conns {
		c.closeIdle()
	}
	// A connection blocked in a Put whose fsync stalls, or a store whose
	// Close does, would keep the process from stopping: past StopTimeout
	// the rest of the stop is left to run in the background.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		finished := make(chan struct{})
		go func() { s.wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(s.cfg.ShutdownGrace):
			for _, c := range conns {
				c.nc.Close()
			}
			<-finished
		}
		s.dispatchMoved()
		s.closeQueues()
	}()
	limit := time.NewTimer(s.cfg.ShutdownGrace + s.cfg.StopTimeout)
	defer limit.Stop()
	select {
	case <-stopped:
	case <-limit.C:
		s.log.Error("stopping without the queues' journals: a write or fsync is stalled",
			"waited", (s.cfg.ShutdownGrace + s.cfg.StopTimeout).String())
	}
}

func (s *Server) closeQueues() {
	s.mu.Lock()
	qs := s.queues
	s.queues = map[string]*queue{}
	s.mu.Unlock()
	for _, q := range qs {
		if err := q.st.Close(); err != nil {
			s.log.Error("cannot close queue", "queue", q.name, "err", err)
		}
	}
}

func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.closed || len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("SERVER_ERROR too many open connections\r\n"))
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.currConns.Add(1)
	s.stats.totalConns.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.stats.currConns.Add(-1)
	}()
}

func (s *Server) addWaiter() bool {
	if s.waiters.Add(1) > int64(s.cfg.MaxWaiters) {
		s.waiters.Add(-1)
		return false
	}
	return true
}

func (s *Server) removeWaiter() { s.waiters.Add(-1) }

// queue returns the queue called name, creating it unless the server
// holds MaxQueues queues.
func (s *Server) queue(name string) (*queue, error) { return s.openQueue(name, true) }

func (s *Server) openQueue(name string, bounded bool) (*queue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if q, ok := s.queues[name]; ok {
			return q, nil
		}
		gone, ok := s.deleting[name]
		if !ok {
			break
		}
		s.mu.Unlock()
		<-gone
		s.mu.Lock()
	}
	if s.closed {
		return nil, ErrClosed
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if bounded && len(s.queues)+len(s.deleting) >= s.cfg.MaxQueues {
		return nil, ErrTooManyQueues
	}
	q := &queue{name: name, srv: s}
	q.settings = s.settingsLocked(name)
	st, err := s.cfg.Backend.Open(name, q.storeConfig(q.settings))
	if err != nil {
		s.log.Error("cannot open queue", "queue", name, "err", err)
		return nil, fmt.Errorf("cannot open queue %q: %w", name, err)
	}
	q.st = st
	s.queues[name] = q
	s.stats.queueCreates.Add(1)
	s.log.Info("queue created", "queue", name)
	return q, nil
}

// lookup returns the queue called name if it exists.
func (s *Server) lookup(name string) *queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[name]
}

func (s *Server) settingsLocked(name string) queueSettings {
	return s.fc.resolve(name, s.cfg.DefaultSync)
}

// storeConfig is the store's view of settings, with the expiry hook.
func (q *queue) storeConfig(set queueSettings) StoreConfig {
	sc := set.store
	if t := set.expireToQueue; t != "" && t != q.name {
		s, from := q.srv, q.name
		sc.Expired = func(it Item) { s.expireTo(from, t, it) }
	}
	return sc
}

// expireTo moves it, which expired on from, into to (from's
// expire_to_queue), with no expiry, as Kestrel adds an expired item to
// its expire queue at once: none is dropped, however many expire at
// one take (the store hands them over in batches). The store calls it
// outside its own lock, but maybe with a queue's mu held (a waiter's
// take), so it takes no queue's mu: the waiters of the queues it fills
// are served by dispatchMoved, once that mu is let go. A chain of
// expire_to_queue settings may lead back to from: a Put that expires
// items there calls its hook in turn, with no lock of this one held.
func (s *Server) expireTo(from, to string, it Item) {
	it.Expiry = time.Time{}
	it.Added = s.cfg.Now()
	if err := s.putItem(to, it, true); err != nil {
		s.log.Warn("cannot move an expired item", "from", from, "to", to, "err", err)
	}
}

// dispatchMoved serves the waiters of the queues expired items were
// moved into (expireTo), until no more were: serving them may move
// more. It runs after every command and wherever a take may have run
// the hooks outside one (queue.dispatch, queue.wait).
func (s *Server) dispatchMoved() {
	for {
		s.expMu.Lock()
		moved := s.moved
		s.moved = nil
		s.expMu.Unlock()
		if len(moved) == 0 {
			return
		}
		for q := range moved {
			q.dispatchWaiters()
		}
	}
}

// put enqueues it on name and a copy on each of its fanout children
// (whether or not name takes it, as Kestrel). A queue deleted while the
// item was on its way is created again for it, as a set just after the
// delete would.
func (s *Server) put(name string, it Item) error { return s.putItem(name, it, false) }

// putItem is put; with later, the waiters of the queues that take it are
// served by the next dispatchMoved instead of now.
func (s *Server) putItem(name string, it Item, later bool) error {
	took := func(q *queue) {
		s.stats.totalItems.Add(1)
		if !later {
			q.dispatch()
			return
		}
		s.expMu.Lock()
		if s.moved == nil {
			s.moved = make(map[*queue]struct{})
		}
		s.moved[q] = struct{}{}
		s.expMu.Unlock()
	}
	var err error
	for attempt := 0; ; attempt++ {
		var q *queue
		if q, err = s.queue(name); err != nil {
			return err
		}
		if err = q.st.Put(it); err == nil {
			took(q)
		} else if attempt < 3 && q.isDeleted() {
			continue
		}
		break
	}
	if !strings.Contains(name, "+") {
		for _, child := range s.children(name) {
			if err := child.st.Put(it); err != nil {
				s.log.Debug("fanout child refused an item", "queue", child.name, "err", err)
				continue
			}
			took(child)
		}
	}
	return err
}

func (q *queue) isDeleted() bool { return q.deleted.Load() }

// children are the fanout queues of parent (parent+child).
func (s *Server) children(parent string) []*queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*queue
	for n, q := range s.queues {
		if len(n) > len(parent) && n[len(parent)] == '+' && n[:len(parent)] == parent {
			out = append(out, q)
		}
	}
	return out
}

// deleteQueue drops a queue and its journal; its waiters get nothing.
func (s *Server) deleteQueue(name string) error {
	s.mu.Lock()
	q := s.queues[name]
	delete(s.queues, name)
	gone := make(chan struct{})
	if q != nil {
		s.deleting[name] = gone
	}
	s.mu.Unlock()
	if q == nil {
		return nil
	}
	// q's lock is taken only once the name is free again: an expiry
	// hook run by a take on q, with q's lock held, may be waiting for
	// that (it moves an item to a queue whose own expire_to_queue leads
	// back to q). A waiter that comes meanwhile finds q deleted; those
	// already there get nothing from the closed store, and are woken
	// below.
	q.deleted.Store(true)
	err := q.st.Delete()
	s.mu.Lock()
	delete(s.deleting, name)
	s.mu.Unlock()
	close(gone)
	q.mu.Lock()
	q.wakeAllLocked()
	q.mu.Unlock()
	s.stats.queueDeletes.Add(1)
	s.log.Info("queue deleted", "queue", name)
	return err
}

// Reload re-reads the configuration (Config.Reload) and applies it to
// every queue.
func (s *Server) Reload() error {
	if s.cfg.Reload == nil {
		return nil
	}
	fc, err := s.cfg.Reload()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.fc = fc
	qs := make([]*queue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	set := make([]queueSettings, len(qs))
	for i, q := range qs {
		set[i] = s.settingsLocked(q.name)
	}
	s.mu.Unlock()
	for i, q := range qs {
		q.mu.Lock()
		q.settings = set[i]
		q.mu.Unlock()
		q.st.SetConfig(q.storeConfig(set[i]))
	}
	s.log.Info("configuration reloaded", "queues", len(qs))
	return nil
}

func (s *Server) maxOpen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fc.MaxOpenTransactions > 0 {
		return s.fc.MaxOpenTransactions
	}
	return 1
}

// queueNames lists the queues, sorted.
func (s *Server) queueNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.queues))
	for n := range s.queues {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/tcpnet"
	"github.com/corvidcache/corvid/ring"
)

// Route picks the server that owns a key. Route trees (a pool, and later
// mcrouter-style routes composed over pools) implement it.
type Route interface {
	route(key []byte) (*backend, error)
}

// A tree is a pool's immutable routing state: its settings, the continuum
// over its live servers and the backends behind it. A request takes the
// pool's current tree once and uses it to the end, so that a new tree
// (after an ejection or a reload) can be swapped in atomically.
type tree struct {
	cfg  *nutcracker.Pool // the pool's settings; never modified
	ring *ring.Ring       // over live; nil when no server is live
	live []*backend       // ring index -> backend
	all  []*backend       // every server, in the order of cfg.Servers
	// epoch is the reload that made the tree's servers (ejections keep
	// it): a backend a reload removes is closed once no client holds a
	// tree of an earlier epoch.
	epoch uint64
	// retryAt is when the first ejected server may come back (zero when
	// none is ejected): the tree is rebuilt then.
	retryAt time.Time
}

func (t *tree) route(key []byte) (*backend, error) {
	if t.ring == nil {
		return nil, errNoServer
	}
	return t.live[t.ring.Pick(key)], nil
}

// pick is route returning the live index, for grouping keys by server.
func (t *tree) pick(key []byte) int {
	return t.ring.Pick(key)
}

// A pool is one pool of the configuration: its listener, its servers and
// its clients. A reload keeps the pool (and its counters and clients)
// when the new configuration has a pool of the same name.
type pool struct {
	name  string
	ctx   context.Context
	log   *slog.Logger
	proxy *Proxy
	ln    net.Listener // guarded by proxy.mu
	cur   atomic.Pointer[tree]
	// rt, when set, is the route tree the pool's clients take instead
	// of placement on its servers (a nutcracker.yml pool's route:, or a
	// corvid router listener).
	rt atomic.Pointer[routeTree]
	st poolCounters
	// closing is set, under proxy.mu, when a reload removes the pool:
	// it accepts no more clients.
	closing bool

	rebuildMu sync.Mutex // serialises rebuild and install
}

// config returns the pool's current settings.
func (p *pool) config() *nutcracker.Pool { return p.cur.Load().cfg }

var _ Route = (*tree)(nil)

// current returns the tree to route a request with, first rebuilding it
// when an ejected server's retry time has come.
func (p *pool) current() *tree {
	t := p.cur.Load()
	if !t.retryAt.IsZero() && !time.Now().Before(t.retryAt) {
		p.rebuild()
		t = p.cur.Load()
	}
	return t
}

// rebuild makes the tree over the servers not ejected now, with the
// current settings and servers.
func (p *pool) rebuild() {
	p.rebuildMu.Lock()
	defer p.rebuildMu.Unlock()
	old := p.cur.Load()
	t, err := newTree(old.cfg, old.all, old.epoch)
	if err != nil {
		p.log.Error("cannot build the continuum", "pool", p.name, "err", err)
	}
	p.cur.Store(t)
}

// install makes t, a reload's tree, the pool's: rebuilt under the lock, so
// that an ejection racing with the reload cannot put back the old servers.
func (p *pool) install(cfg *nutcracker.Pool, all []*backend, epoch uint64) {
	p.rebuildMu.Lock()
	defer p.rebuildMu.Unlock()
	t, err := newTree(cfg, all, epoch)
	if err != nil {
		p.log.Error("cannot build the continuum", "pool", p.name, "err", err)
	}
	p.cur.Store(t)
}

// newTree makes the tree over the servers of all not ejected now. The
// continuum is laid out over the live servers only, as twemproxy
// recomputes it, so placement matches nutcracker's after an ejection.
// On an error the tree has no continuum: every request fails.
func newTree(cfg *nutcracker.Pool, all []*backend, epoch uint64) (*tree, error) {
	now := time.Now()
	t := &tree{cfg: cfg, all: all, epoch: epoch}
	var live []ring.Server
	for i, b := range all {
		if out, till := b.ejected(now); out {
			if t.retryAt.IsZero() || till.Before(t.retryAt) {
				t.retryAt = till
			}
			continue
		}
		t.live = append(t.live, b)
		live = append(live, cfg.Servers[i])
	}
	if len(live) == 0 {
		return t, nil
	}
	r, err := ring.New(ring.Config{Servers: live, Hash: cfg.Hash,
		Distribution: ring.Distribution(cfg.Distribution), HashTag: cfg.HashTag})
	if err != nil {
		return t, err
	}
	t.ring = r
	return t, nil
}

// listen binds the pool's listener: TCP host:port, or a Unix socket path
// with its permission.
func listen(cfg *nutcracker.Pool) (net.Listener, error) {
	if len(cfg.Listen) > 0 && cfg.Listen[0] == '/' {
		if fi, err := os.Stat(cfg.Listen); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(cfg.Listen) // a stale socket of an earlier run
		}
		ln, err := tcpnet.ListenUnix(cfg.Listen, cfg.ListenPerm)
		if err != nil {
			return nil, err
		}
		if cfg.ListenPerm != 0 {
			if err := os.Chmod(cfg.Listen, cfg.ListenPerm); err != nil {
				ln.Close()
				return nil, err
			}
		}
		return ln, nil
	}
	return net.Listen(tcpnet.Network(cfg.Listen), cfg.Listen)
}

// serve accepts clients on ln until it closes, backing off on errors
// (5 ms doubling to 1 s).
func (p *pool) serve(ln net.Listener) {
	delay := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("accept failed", "pool", p.name, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if limit := p.config().ClientConnections; limit > 0 && p.st.clientConnections.Load() >= int64(limit) {
			p.st.clientErr.Add(1)
			nc.Close()
			continue
		}
		cl := p.proxy.track(nc, p)
		if cl == nil {
			nc.Close()
			return
		}
		// A new client is parked until it sends (or read by the event
		// loop): most send at once, and a pool's idle connections then
		// cost no goroutine.
		if !p.proxy.park(cl) {
			p.proxy.resume(cl)
		}
	}
}

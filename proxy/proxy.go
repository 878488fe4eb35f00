package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/route"
)

// DefaultVersion is what the proxy answers to "version" when
// Config.Version is empty: the memcached version corvid speaks, which is
// what a client behind nutcracker (which forwards "version") sees.
const DefaultVersion = "1.6.18"

// DefaultMaxValueLen is the largest value a storage command may carry
// when Config.MaxValueLen is 0: memcached's default item size limit.
const DefaultMaxValueLen = 1 << 20

// RouterOption is one of corvid router's startup options under
// mcrouter's name, with its value as mcrouter prints it.
type RouterOption struct{ Name, Value string }

// Config configures a Proxy. The zero value of each field but Pools is its
// documented default.
type Config struct {
	Pools *nutcracker.Config // parsed nutcracker.yml
	// Routes, when set instead of Pools, is an mcrouter configuration
	// (corvid router): its route tree serves every address of Listen.
	Routes *route.Config
	// Listen are the addresses (host:port) corvid router serves Routes
	// on.
	Listen []string
	Logger *slog.Logger // nil: discard
	// Version is answered to "version" ("VERSION <Version>"); empty means
	// DefaultVersion.
	Version string
	// RouterVersion is corvid router's answer to mcrouter's admin get
	// __mcrouter__.version; empty means "corvid <Version>".
	RouterVersion string
	// RouterOptions are the options corvid router lists for
	// __mcrouter__.options, in order.
	RouterOptions []RouterOption
	// MaxValueLen bounds the data of a storage command; a longer one is
	// refused at the proxy with memcached's "SERVER_ERROR object too
	// large for cache" and never buffered. 0 means DefaultMaxValueLen.
	MaxValueLen int
	// ReadBufMemLimit bounds the bytes of the read buffers clients hold
	// past the first 4 KiB each (a long get line, a large value being
	// read), all clients together; a request that would pass it is
	// answered "SERVER_ERROR out of memory reading request" and its
	// connection closed, as corvid server's read_buf_mem_limit. 0 means
	// DefaultReadBufMemLimit, or 8 × MaxValueLen when that is larger (as
	// the server's default); a negative value, no bound.
	ReadBufMemLimit int64
	// WriteBufMemLimit bounds the completed replies held for clients, not
	// yet written, all clients together, as corvid server's
	// write_buf_mem_limit: past it a client may take a reply only within
	// an allowance of max(WriteBufMemLimit/8, 2 × the largest reply), and
	// a client whose socket takes nothing for a second meanwhile is
	// closed (counted in write_buf_oom). 0 means DefaultWriteBufMemLimit,
	// or 8 × MaxValueLen when that is larger (as the server's default); a
	// negative value, no bound. The bytes of the detached requests of
	// route trees in flight (AllAsyncRoute's and AllInitialRoute's
	// copies, shadows, warm-up fills) have a bound of their own, of the
	// same size: past it such a copy is dropped and counted.
	WriteBufMemLimit int64
	// EventLoop (experimental, Linux only; ignored elsewhere) has one
	// goroutine read every client socket and every server connection
	// from one epoll set, as nutcracker's event loop does, in place of a
	// reader goroutine per connection: a client whose request must wait
	// for its replies to be read gets a reader goroutine of its own until
	// it is idle again. See loop_linux.go.
	EventLoop bool
}

// testEventLoop turns Config.EventLoop on for every proxy (the package's
// tests set it from CORVID_TEST_PROXY_LOOP).
var testEventLoop bool

// Proxy serves the pools of a nutcracker.yml. It is safe for concurrent
// use.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	st      proxyCounters
	replies *replyBufs   // completed replies not yet written to their clients
	async   *asyncBudget // detached requests of route trees in flight
	rbufs   *readBufs    // the clients' large read buffers
	ctx     context.Context
	cancel  context.CancelFunc

	wg        sync.WaitGroup // every goroutine the proxy starts
	idle      *idler         // watches parked clients; nil: none park
	loop      *loop          // Config.EventLoop's; nil: readers are goroutines
	serveOnce sync.Once
	closeOnce sync.Once
	reloadMu  sync.Mutex // serialises Reload; taken before mu

	mu      sync.Mutex // guards clients, closed, serving, pools, epoch, oldRoutes and each pool's ln and closing
	clients map[*client]struct{}
	closed  bool
	serving bool    // Serve has started the accept loops
	pools   []*pool // in the configuration's order (corvid router: its fronts first)
	epoch   uint64  // of the last reload
	// oldRoutes are the route trees reloads replaced that may still have
	// composed requests in flight (see retiredRoutesLocked).
	oldRoutes []*routeTree

	// router is set for corvid router (Config.Routes): fronts are its
	// listeners, pools without a listener of their own; the other pools
	// have none.
	router bool
	fronts []*pool
}

// New validates cfg, binds every pool's listener and starts the servers'
// connections (connecting at once for pools with preconnect). Clients are
// accepted once Serve runs.
func New(cfg Config) (*Proxy, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.MaxValueLen <= 0 {
		cfg.MaxValueLen = DefaultMaxValueLen
	}
	if cfg.ReadBufMemLimit == 0 {
		cfg.ReadBufMemLimit = max(DefaultReadBufMemLimit, 8*int64(cfg.MaxValueLen))
	}
	if cfg.WriteBufMemLimit == 0 {
		cfg.WriteBufMemLimit = max(DefaultWriteBufMemLimit, 8*int64(cfg.MaxValueLen))
	}
	if cfg.Routes != nil && cfg.Pools != nil {
		return nil, errors.New("proxy: Config has both Pools and Routes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{cfg: cfg, log: cfg.Logger, started: time.Now(), ctx: ctx, cancel: cancel,
		rbufs:   newReadBufs(cfg.ReadBufMemLimit),
		replies: newReplyBufs(cfg.WriteBufMemLimit, cfg.MaxValueLen+replyOverhead), clients: make(map[*client]struct{}),
		async: &asyncBudget{limit: max(cfg.WriteBufMemLimit, 0)}}
	if cfg.EventLoop || testEventLoop {
		// Before the servers connect (preconnect), so that they join it.
		lp, err := newLoop(p)
		if err != nil {
			p.log.Warn("no event loop: readers are goroutines", "err", err)
		}
		p.loop = lp
	}
	var err error
	if cfg.Routes != nil {
		err = p.newRouter(cfg.Routes, cfg.Listen)
	} else {
		err = p.Reload(cfg.Pools)
	}
	if err != nil {
		cancel()
		p.loop.close()
		return nil, err
	}
	p.cfg.Pools, p.cfg.Routes = nil, nil // the trees hold the configuration
	id, err := newIdler(p)
	if err != nil {
		p.log.Warn("idle clients keep a goroutine", "err", err)
	}
	p.idle = id
	return p, nil
}

// Serve accepts clients on every pool's listener until ctx is done or
// Close is called, then stops the proxy. It returns nil on a clean stop.
func (p *Proxy) Serve(ctx context.Context) error {
	started := false
	p.serveOnce.Do(func() {
		started = true
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return
		}
		p.serving = true
		p.idle.start()
		p.loop.start()
		for _, pl := range p.pools {
			if pl.ln != nil {
				p.acceptLocked(pl, pl.ln)
			}
		}
	})
	if !started {
		return fmt.Errorf("proxy: Serve called twice")
	}
	select {
	case <-ctx.Done():
	case <-p.ctx.Done():
	}
	return p.Close()
}

// acceptLocked starts pl's accept loop on ln; p.mu is held.
func (p *Proxy) acceptLocked(pl *pool, ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		pl.serve(ln)
	}()
}

// Close stops the proxy: it closes the listeners, the client and server
// connections (requests in flight fail), and waits for its goroutines.
// It is idempotent.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.mu.Lock()
		p.closed = true
		for _, pl := range p.pools {
			if pl.ln != nil {
				pl.ln.Close()
			}
		}
		for cl := range p.clients {
			cl.nc.Close()
		}
		p.idle.close() // parked clients are resumed, and end
		p.loop.close() // its clients end
		pools := p.pools
		p.mu.Unlock()
		// Backends a reload removed are closed by their retire goroutines.
		for _, pl := range pools {
			for _, b := range pl.cur.Load().all {
				b.close()
			}
		}
		p.wg.Wait()
		p.rbufs.drain()
	})
	return nil
}

// Addrs returns each pool's bound listener address by pool name.
func (p *Proxy) Addrs() map[string]net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]net.Addr, len(p.pools))
	for _, pl := range p.pools {
		if pl.ln != nil {
			m[pl.name] = pl.ln.Addr()
		}
	}
	return m
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	now := time.Now()
	s := Stats{
		Uptime:           int64(now.Sub(p.started) / time.Second),
		Timestamp:        now.Unix(),
		TotalConnections: p.st.totalConnections.Load(),
		CurrConnections:  p.st.currConnections.Load(),
		ReadBufBytes:     p.rbufs.bytes.Load(),
		ReadBufOOM:       p.rbufs.oom.Load(),
		WriteBufBytes:    p.replies.bytes.Load(),
		WriteBufOOM:      p.replies.oom.Load(),
	}
	p.mu.Lock()
	pools := p.pools
	p.mu.Unlock()
	var trees []*routeTree
	for _, pl := range pools {
		if rt := pl.rt.Load(); rt != nil && !slices.Contains(trees, rt) {
			trees = append(trees, rt)
			for _, n := range rt.nodes {
				s.Routes = append(s.Routes, n.st.snapshot(n))
			}
		}
	}
	for _, pl := range pools {
		ps := pl.st.snapshot(pl.name)
		t := pl.cur.Load()
		for _, b := range t.all {
			ss := b.st.snapshot(b.name)
			ss.Ejected = !slices.Contains(t.live, b)
			ps.Servers = append(ps.Servers, ss)
		}
		s.Pools = append(s.Pools, ps)
	}
	return s
}

// track registers a new client connection of pl; nil when the proxy is
// closed or a reload removed pl.
func (p *Proxy) track(nc net.Conn, pl *pool) *client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || pl.closing {
		return nil
	}
	cl := newClient(p, nc)
	cl.pool = pl
	p.clients[cl] = struct{}{}
	cl.conn = uint32(p.st.totalConnections.Add(1)) // spreads clients over server connections
	p.st.currConnections.Add(1)
	pl.st.clientConnections.Add(1)
	return cl
}

func (p *Proxy) untrack(cl *client) {
	p.mu.Lock()
	delete(p.clients, cl)
	p.mu.Unlock()
	p.st.currConnections.Add(-1)
	cl.pool.st.clientConnections.Add(-1)
}

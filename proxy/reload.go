package proxy

import (
	"fmt"
	"math"
	"net"
	"slices"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
)

// retirePoll is how often a reload's retire goroutine checks whether the
// clients and servers it waits for are done.
const retirePoll = 5 * time.Millisecond

// Reload makes cfg the proxy's configuration while it serves. Pools are
// matched by name: a pool in both keeps its counters, its clients and, when
// its listen address is unchanged, its listener; a server in both (same
// address, same name, same server_connections) keeps its connections and
// counters. New pools listen at once; new servers connect as their pool's
// preconnect says.
//
// Requests in flight finish on the configuration they started with: a
// server the new configuration removes is closed once no request can
// reach it any more and the requests it holds are answered. A pool the new
// configuration removes closes its listener at once; its clients are read
// no more, get the replies of the requests they sent, and are then
// disconnected.
//
// Reload checks the whole of cfg, and binds its new listeners, before it
// changes anything: on an error the proxy keeps serving the configuration
// it had.
func (p *Proxy) Reload(cfg *nutcracker.Config) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	if p.router {
		return errRouterMode
	}
	if cfg == nil || len(cfg.Pools) == 0 {
		return errNoPools
	}
	cfgs := make([]*nutcracker.Pool, len(cfg.Pools))
	seen := make(map[string]bool, len(cfg.Pools))
	for i := range cfg.Pools {
		pc, err := checkPool(&cfg.Pools[i])
		if err != nil {
			return err
		}
		if seen[pc.Name] {
			return fmt.Errorf("pool %s: %w", pc.Name, errDuplicatePool)
		}
		seen[pc.Name] = true
		cfgs[i] = pc
	}

	// Only Reload changes pools and listeners, and it holds reloadMu.
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed
	}
	old := make(map[string]*pool, len(p.pools))
	for _, pl := range p.pools {
		old[pl.name] = pl
	}
	epoch := p.epoch + 1
	p.mu.Unlock()

	// Bind the new listeners first: nothing has changed if one fails.
	lns := make([]net.Listener, len(cfgs))
	for i, pc := range cfgs {
		if pl := old[pc.Name]; pl != nil && sameListen(pl.config(), pc) {
			continue
		}
		ln, err := listen(pc)
		if err != nil {
			for _, l := range lns {
				if l != nil {
					l.Close()
				}
			}
			return fmt.Errorf("pool %s: cannot listen on %q: %w", pc.Name, pc.Listen, err)
		}
		lns[i] = ln
	}

	// Match servers: a pool's unchanged servers keep their backends.
	plans := make([]poolPlan, len(cfgs))
	var gone []*backend
	byName := make(map[string]*pool, len(cfgs))
	cfgOf := make(map[*pool]*nutcracker.Pool, len(cfgs))
	for i, pc := range cfgs {
		plans[i] = p.planPool(old[pc.Name], pc, &gone)
		byName[pc.Name] = plans[i].pl
		cfgOf[plans[i].pl] = pc
	}
	// Compile the pools' routes (over the new pools) before anything
	// changes.
	routes := make([]*routeTree, len(cfgs))
	for i, pc := range cfgs {
		if pc.Route == nil {
			continue
		}
		rt, err := compileRoutes(pc.Route, pc.Name+".route", byName, cfgOf, true, plans[i].pl.rt.Load())
		if err != nil {
			for _, l := range lns {
				if l != nil {
					l.Close()
				}
			}
			return fmt.Errorf("pool %s: route: %w", pc.Name, err)
		}
		rt.epoch, rt.replies, rt.async = epoch, p.replies, p.async
		routes[i] = rt
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, l := range lns {
			if l != nil {
				l.Close()
			}
		}
		return errClosed
	}
	p.epoch = epoch
	pools := make([]*pool, len(cfgs))
	kept := make(map[*pool]bool, len(cfgs))
	for i, pc := range cfgs {
		pn := plans[i]
		pl := pn.pl
		pools[i], kept[pl] = pl, true
		for _, b := range pn.fresh {
			b.start(&p.wg, pc.Preconnect)
		}
		pl.install(pc, pn.all, epoch)
		if ln := lns[i]; ln != nil {
			if pl.ln != nil {
				pl.ln.Close()
			}
			pl.ln = ln
			if p.serving {
				p.acceptLocked(pl, ln)
			}
		}
	}
	var oldTrees []*routeTree
	for i, pn := range plans {
		if routes[i] != nil {
			routes[i].fillAll()
		}
		if rt := pn.pl.rt.Swap(routes[i]); rt != nil {
			oldTrees = append(oldTrees, rt)
		}
	}
	var closing []*pool
	for _, pl := range p.pools {
		if kept[pl] {
			continue
		}
		pl.closing = true
		pl.ln.Close()
		closing = append(closing, pl)
		gone = append(gone, pl.cur.Load().all...)
		for cl := range p.clients {
			if cl.pool == pl {
				cl.stopping.Store(true)           // not a kick (idle.go)
				cl.nc.SetReadDeadline(time.Now()) // the reader stops
				p.idle.wake(cl)
				p.loop.kick(cl)
			}
		}
	}
	p.pools = pools
	if len(gone) > 0 || len(closing) > 0 {
		p.wg.Add(1)
		go p.retire(epoch, gone, closing, p.retiredRoutesLocked(oldTrees))
	} else {
		p.retiredRoutesLocked(oldTrees)
	}
	return nil
}

// A poolPlan is what a reload makes of one pool: the pool (kept or new),
// its servers in order, and those of them to start.
type poolPlan struct {
	pl    *pool
	all   []*backend
	fresh []*backend
}

// planPool matches the servers of pc with those of pl (nil for a new
// pool): an unchanged server keeps its backend. The backends pl had that
// pc does not keep are appended to gone.
func (p *Proxy) planPool(pl *pool, pc *nutcracker.Pool, gone *[]*backend) poolPlan {
	if pl == nil {
		pl = &pool{name: pc.Name, ctx: p.ctx, log: p.log, proxy: p}
	}
	spare := make(map[backendKey][]*backend)
	if t := pl.cur.Load(); t != nil {
		for _, b := range t.all {
			k := backendKey{b.addr, b.name, len(b.conns), 0}
			spare[k] = append(spare[k], b)
		}
	}
	pn := poolPlan{pl: pl}
	for _, s := range pc.Servers {
		k := backendKey{s.Addr, serverName(s), pc.ServerConnections, 0}
		var b *backend
		if bs := spare[k]; len(bs) > 0 {
			b, spare[k] = bs[0], bs[1:]
		} else {
			b = newBackend(pl, s, pc.ServerConnections)
			pn.fresh = append(pn.fresh, b)
		}
		pn.all = append(pn.all, b)
	}
	for _, bs := range spare {
		*gone = append(*gone, bs...)
	}
	return pn
}

// backendKey is what makes a server of a new configuration the same as
// one of the old: for corvid router (backendShare), its pool's timeout
// too.
type backendKey struct {
	addr, name string
	conns      int
	timeout    time.Duration
}

// checkPool returns a copy of pc, with its defaults filled in, or why the
// proxy cannot serve it.
func checkPool(pc *nutcracker.Pool) (*nutcracker.Pool, error) {
	if pc.Redis {
		return nil, fmt.Errorf("pool %s: %w", pc.Name, errRedis)
	}
	if len(pc.Servers) == 0 {
		return nil, fmt.Errorf("pool %s: no servers", pc.Name)
	}
	if _, err := pc.Ring(); err != nil {
		return nil, fmt.Errorf("pool %s: cannot build its continuum: %w", pc.Name, err)
	}
	c := *pc
	c.Servers = append(c.Servers[:0:0], pc.Servers...)
	c.ServerConnections = max(c.ServerConnections, 1)
	c.ServerFailureLimit = max(c.ServerFailureLimit, 1)
	return &c, nil
}

// sameListen reports whether a pool moving from a to b keeps its listener.
func sameListen(a, b *nutcracker.Pool) bool {
	return a.Listen == b.Listen && a.ListenPerm == b.ListenPerm
}

// retire closes what a reload removed, once nothing needs it: the servers
// in gone when no client may still send them a request (no client of a
// kept pool holds a tree older than epoch, and the clients of the pools in
// closing are gone) and each has answered what it holds. When the proxy
// closes first, it closes them at once.
// retiredRoutesLocked adds the trees a reload replaced to p.oldRoutes and
// returns them all: a composed request that started on a tree any number
// of reloads ago may still send to its servers (a failover's next
// child), so a reload's retire waits for all of them, not only for the
// trees it replaced. A tree is forgotten once it has no composed request
// in flight and no client holds it or an older one: no new one can then
// start on it. p.mu is held.
func (p *Proxy) retiredRoutesLocked(replaced []*routeTree) []*routeTree {
	oldest := uint64(math.MaxUint64) // the oldest tree a client holds
	for cl := range p.clients {
		if rt := cl.heldRoute.Load(); rt != nil {
			oldest = min(oldest, rt.epoch)
		}
	}
	var kept []*routeTree
	for _, rt := range slices.Concat(p.oldRoutes, replaced) {
		if rt.steps.Load() > 0 || rt.epoch >= oldest {
			kept = append(kept, rt)
		}
	}
	p.oldRoutes = kept
	return slices.Clone(kept)
}

func (p *Proxy) retire(epoch uint64, gone []*backend, closing []*pool, trees []*routeTree) {
	defer p.wg.Done()
	tick := time.NewTicker(retirePoll)
	defer tick.Stop()
	ok := true
	wait := func(done func() bool) {
		for ok && !done() {
			select {
			case <-p.ctx.Done():
				ok = false
			case <-tick.C:
			}
		}
	}
	wait(func() bool { return p.quiet(epoch, closing) })
	for _, rt := range trees {
		// Composed requests on an old tree finish on its servers.
		wait(func() bool { return rt.steps.Load() == 0 })
	}
	for _, b := range gone {
		wait(b.idle)
		b.close()
	}
}

// quiet reports whether no client of a kept pool holds a tree older than
// epoch and no client of the pools in closing is left.
func (p *Proxy) quiet(epoch uint64, closing []*pool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for cl := range p.clients {
		if cl.pool.closing {
			for _, pl := range closing {
				if cl.pool == pl {
					return false
				}
			}
			continue
		}
		if t := cl.held.Load(); t != nil && t.epoch < epoch {
			return false
		}
		if rt := cl.heldRoute.Load(); rt != nil && rt.epoch < epoch {
			return false
		}
	}
	return true
}

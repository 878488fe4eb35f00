package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/tcpnet"
	"github.com/corvidcache/corvid/ring"
	"github.com/corvidcache/corvid/route"
)

// DefaultRouteTimeout is how long a request of corvid router waits for a
// server's reply when its pool gives no timeout: mcrouter's
// server_timeout default (1 s).
const DefaultRouteTimeout = time.Second

// errRouterMode refuses a nutcracker.yml reload of corvid router, and a
// route reload of corvid proxy.
var errRouterMode = errors.New("proxy: the proxy was not started with this kind of configuration")

// newRouter binds corvid router's listeners (one front pool per address
// of cfg.Listen, named "router", "router1", ...) and installs the route
// configuration.
func (p *Proxy) newRouter(cfg *route.Config, listen []string) error {
	if len(listen) == 0 {
		return errors.New("proxy: corvid router needs an address to listen on")
	}
	p.router = true
	for i, addr := range listen {
		ln, err := net.Listen(tcpnet.Network(addr), addr)
		if err != nil {
			for _, f := range p.fronts {
				f.ln.Close()
			}
			return fmt.Errorf("cannot listen on %q: %w", addr, err)
		}
		name := "router"
		if i > 0 {
			name += strconv.Itoa(i)
		}
		f := &pool{name: name, ctx: p.ctx, log: p.log, proxy: p, ln: ln}
		f.cur.Store(&tree{cfg: &nutcracker.Pool{Name: name, Listen: addr}})
		p.fronts = append(p.fronts, f)
	}
	p.pools = append(p.pools, p.fronts...)
	if err := p.ReloadRoutes(cfg); err != nil {
		for _, f := range p.fronts {
			f.ln.Close()
		}
		return err
	}
	return nil
}

// ReloadRoutes makes cfg corvid router's route configuration while it
// serves, as Reload does for corvid proxy: pools are matched by name
// and unchanged servers keep their connections; new requests take the
// new tree, requests in flight finish on the old one (its servers that
// cfg removes are closed once they are done). On an error the old tree
// keeps serving.
func (p *Proxy) ReloadRoutes(cfg *route.Config) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	if !p.router {
		return errRouterMode
	}
	if cfg == nil || cfg.Root == nil {
		return errors.New("proxy: the route configuration has no route")
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed
	}
	old := make(map[string]*pool)
	for _, pl := range p.pools {
		if pl.ln == nil {
			old[pl.name] = pl
		}
	}
	epoch := p.epoch + 1
	p.mu.Unlock()

	share := newBackendShare(old)
	byName := make(map[string]*pool, len(cfg.Pools))
	cfgOf := make(map[*pool]*nutcracker.Pool, len(cfg.Pools))
	plans := make(map[*pool]poolPlan, len(cfg.Pools))
	var order []*pool
	names := slices.Sorted(maps.Keys(cfg.Pools))
	for _, name := range names {
		rp := cfg.Pools[name]
		pc, err := routePool(name, rp)
		if err != nil {
			return err
		}
		pn := share.plan(p, old[name], pc)
		byName[name], cfgOf[pn.pl], plans[pn.pl] = pn.pl, pc, pn
		order = append(order, pn.pl)
	}
	gone := share.unused()
	rt, err := compileRoutes(cfg.Root, "route", byName, cfgOf, false, p.fronts[0].rt.Load())
	if err != nil {
		return err
	}
	rt.epoch, rt.source, rt.replies, rt.async = epoch, cfg.Source, p.replies, p.async

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed
	}
	p.epoch = epoch
	for _, pl := range order {
		pn := plans[pl]
		for _, b := range pn.fresh {
			b.start(&p.wg, false)
		}
		pl.install(cfgOf[pl], pn.all, epoch)
	}
	rt.fillAll()
	var oldTrees []*routeTree
	for _, f := range p.fronts {
		if o := f.rt.Swap(rt); o != nil && (len(oldTrees) == 0 || oldTrees[0] != o) {
			oldTrees = append(oldTrees, o)
		}
	}
	p.pools = append(append(p.pools[:0:0], p.fronts...), order...)
	trees := p.retiredRoutesLocked(oldTrees)
	if len(gone) > 0 {
		p.wg.Add(1)
		go p.retire(epoch, gone, nil, trees)
	}
	return nil
}

// A backendShare matches the servers of corvid router's pools, as
// mcrouter shares one destination per server: pools that name the same
// address with the same timeout share its backend (its connections, and
// what it holds), whichever pool named it first owning it; a reload
// keeps a backend that any new pool names so, whichever old pools named
// it. mcrouter's pools have no ejection: a shared backend has no health
// of its own to share.
type backendShare struct {
	spare map[backendKey]*backend // the old pools' backends
	made  map[backendKey]*backend // the new pools' backends
	extra []*backend              // old backends of a key spare has
}

// newBackendShare returns the share over the backends of the old pools.
func newBackendShare(old map[string]*pool) *backendShare {
	bs := &backendShare{spare: make(map[backendKey]*backend), made: make(map[backendKey]*backend)}
	for _, pl := range old {
		t := pl.cur.Load()
		for _, b := range t.all {
			k := backendKey{b.addr, b.name, len(b.conns), t.cfg.Timeout}
			switch o := bs.spare[k]; {
			case o == nil:
				bs.spare[k] = b
			case o != b && !slices.Contains(bs.extra, b):
				bs.extra = append(bs.extra, b) // not shared before: it goes
			}
		}
	}
	return bs
}

// plan is planPool for corvid router: the servers of pc take the
// backends already made for them in this load, else an old pool's, else
// a new one (fresh).
func (bs *backendShare) plan(p *Proxy, pl *pool, pc *nutcracker.Pool) poolPlan {
	if pl == nil {
		pl = &pool{name: pc.Name, ctx: p.ctx, log: p.log, proxy: p}
	}
	pn := poolPlan{pl: pl}
	for _, s := range pc.Servers {
		k := backendKey{s.Addr, serverName(s), pc.ServerConnections, pc.Timeout}
		b := bs.made[k]
		if b == nil {
			if b = bs.spare[k]; b != nil {
				delete(bs.spare, k)
			} else {
				b = newBackend(pl, s, pc.ServerConnections)
				pn.fresh = append(pn.fresh, b)
			}
			bs.made[k] = b
			b.timeout.Store(int64(pc.Timeout)) // its owner may change it
		}
		pn.all = append(pn.all, b)
	}
	return pn
}

// unused returns the old backends no new pool took.
func (bs *backendShare) unused() []*backend {
	gone := bs.extra
	for _, b := range bs.spare {
		gone = append(gone, b)
	}
	return gone
}

// routePool makes the pool settings of an mcrouter pool.
func routePool(name string, rp *route.Pool) (*nutcracker.Pool, error) {
	if rp == nil || len(rp.Servers) == 0 {
		return nil, fmt.Errorf("pools.%s: no servers", name)
	}
	pc := &nutcracker.Pool{Name: name, Hash: nutcracker.DefaultHash,
		Distribution: nutcracker.DefaultDistribution, Timeout: rp.Timeout,
		ServerConnections: 1, ServerFailureLimit: 1}
	if pc.Timeout <= 0 {
		pc.Timeout = DefaultRouteTimeout
	}
	for _, s := range rp.Servers {
		w := int(s.Weight)
		pc.Servers = append(pc.Servers, ring.Server{Addr: s.Addr, Name: s.Name, Weight: max(w, 1)})
	}
	return pc, nil
}

// adminKey is the prefix of mcrouter's admin gets, which corvid router
// answers itself.
var adminKey = []byte("__mcrouter__.")

// adminGet answers a get of one of mcrouter's admin keys as mcrouter's
// service info does: a hit whose value is the answer (a trailing
// newline dropped), or "ERROR: <reason>" for a command it cannot
// answer. The commands are version, config_age (seconds since the tree
// was loaded), config_file (an error without a file), and options or
// options(<name>) (Config.RouterOptions, one "name value" per line).
func (cl *client) adminGet(key []byte) error {
	rt := cl.pool.rt.Load()
	cmd, args := string(key[len(adminKey):]), ""
	if i := strings.IndexByte(cmd, '('); i >= 0 && strings.HasSuffix(cmd, ")") {
		cmd, args = cmd[:i], cmd[i+1:len(cmd)-1]
	}
	var val string
	switch cmd {
	case "version":
		val = cl.p.cfg.RouterVersion
		if val == "" {
			val = "corvid " + cl.p.cfg.Version
		}
	case "config_age":
		val = strconv.FormatInt(int64(time.Since(rt.loaded)/time.Second), 10)
	case "config_file":
		val = rt.source
		if val == "" || val == route.InlineSource {
			val = "ERROR: no config file found!"
		}
	case "options":
		val = routerOptions(cl.p.cfg.RouterOptions, args)
	default:
		val = "ERROR: unknown command: " + cmd
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val)
	return cl.localRaw(b.Bytes())
}

// routerOptions answers __mcrouter__.options: every option, or the value
// of the one named by args.
func routerOptions(opts []RouterOption, args string) string {
	if strings.Contains(args, ",") {
		return "ERROR: options: 0 or 1 args expected"
	}
	var b strings.Builder
	for _, o := range opts {
		if args == "" {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(o.Name + " " + o.Value)
		} else if o.Name == args {
			return o.Value
		}
	}
	if args != "" {
		return "ERROR: options: option " + args + " not found"
	}
	return b.String()
}

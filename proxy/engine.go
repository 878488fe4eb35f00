package proxy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/ring"
	"github.com/corvidcache/corvid/route"
)

// A routeTree is a compiled route tree (see route.Handle), immutable
// once built: a request takes its front's current tree once and routes
// through it to the end, as a pool's tree. A reload builds a new one.
type routeTree struct {
	root  *rnode
	nodes []*rnode // every node, for stats
	// pools are those the tree names; all their backends, for
	// flush_all (set by fillAll once the pools are installed).
	pools []*pool
	all   []*backend
	// epoch is the reload that made it.
	epoch uint64
	// steps counts composed requests in flight (see rstep): the servers
	// a reload removes are closed only when the old tree has none.
	steps atomic.Int64
	// replies is the proxy's bound on held replies, which composed
	// requests' sub-call replies count against.
	replies *replyBufs
	// async is the proxy's budget for detached requests' bytes.
	async  *asyncBudget
	source string
	loaded time.Time
}

// rnode is one compiled route handle. Which fields are set depends on
// typ, as for route.Handle.
type rnode struct {
	typ  route.Type
	name string
	st   *routeCounters

	// PoolRoute: the pool and how a key picks its server: pick (an
	// mcrouter hash), hring (a ring hash over the pool's servers), or,
	// both nil, the pool's own continuum (its ejections included).
	pool    *pool
	pick    chooser
	hring   *ring.Ring
	shadows []rshadow

	children []*rnode
	hash     chooser // HashRoute

	prefixes []rprefix // PrefixSelectorRoute, longest first
	wildcard *rnode
	ops      [nROps]*rnode // OperationSelectorRoute (nil: def)
	def      *rnode

	cold, warm *rnode
	exptime    int32

	response string // ErrorRoute

	limits [3]*tokenBucket // RateLimitRoute: gets, sets, deletes
}

// mcrouterOnlyOps are mcrouter operations that no memcached text, meta or
// binary request becomes: an operation_policies entry for one is
// accepted and never taken.
var mcrouterOnlyOps = map[string]bool{"lease-get": true, "lease-set": true, "flushall": true,
	"flushre": true, "version": true, "stats": true, "exec": true, "shutdown": true, "quit": true,
	"metaget": true, "metaset": true}

type rprefix struct {
	prefix string
	to     *rnode
}

// rshadow is one shadow of a PoolRoute: requests whose server's index
// is in [lo, hi] (none when hi < lo: mcrouter's default) and whose
// routing key's hash is in frac are copied to it.
type rshadow struct {
	to     *rnode
	lo, hi int
	frac   ring.KeyFractionRange
}

// compileRoutes builds the tree of h over pools (by name); base is where
// the config defines h, for a node without a Path. ringDefault
// makes a PoolRoute without a hash use its pool's own continuum
// (nutcracker.yml), else mcrouter's default hash.
func compileRoutes(h *route.Handle, base string, pools map[string]*pool, cfgs map[*pool]*nutcracker.Pool, ringDefault bool, old *routeTree) (*routeTree, error) {
	c := &compiler{pools: pools, cfgs: cfgs, ringDefault: ringDefault, seen: make(map[*route.Handle]*rnode),
		busy: make(map[*route.Handle]bool), inPool: make(map[*pool]bool), counters: make(map[string]*routeCounters)}
	if old != nil {
		for _, n := range old.nodes {
			c.counters[string(n.typ)+" "+n.name] = n.st
		}
	}
	root, err := c.node(h, base)
	if err != nil {
		return nil, err
	}
	return &routeTree{root: root, nodes: c.nodes, pools: c.order, loaded: time.Now()}, nil
}

// fillAll lists the backends of rt's pools, once they are installed,
// each once (pools of corvid router share a server's backend).
func (rt *routeTree) fillAll() {
	rt.all = nil
	for _, pl := range rt.pools {
		for _, b := range pl.cur.Load().all {
			if !slices.Contains(rt.all, b) {
				rt.all = append(rt.all, b)
			}
		}
	}
}

type compiler struct {
	pools       map[string]*pool
	cfgs        map[*pool]*nutcracker.Pool
	ringDefault bool
	seen        map[*route.Handle]*rnode
	busy        map[*route.Handle]bool // on the path from the root: a cycle
	nodes       []*rnode
	inPool      map[*pool]bool
	order       []*pool
	counters    map[string]*routeCounters // an old tree's, kept by node
}

func (c *compiler) node(h *route.Handle, path string) (*rnode, error) {
	if h == nil {
		return nil, fmt.Errorf("%s: missing route", path)
	}
	if h.Path != "" {
		path = h.Path
	}
	if n := c.seen[h]; n != nil {
		return n, nil
	}
	if c.busy[h] {
		return nil, fmt.Errorf("%s: the route refers to itself", path)
	}
	c.busy[h] = true
	defer delete(c.busy, h)
	name := h.Name
	if name == "" {
		name = path
	}
	key := string(h.Type) + " " + name
	st := c.counters[key]
	if st == nil {
		st = new(routeCounters)
		c.counters[key] = st
	}
	n := &rnode{typ: h.Type, name: name, st: st}
	children := func() error {
		for i, ch := range h.Children {
			cn, err := c.node(ch, fmt.Sprintf("%s.children[%d]", path, i))
			if err != nil {
				return err
			}
			n.children = append(n.children, cn)
		}
		if len(n.children) == 0 {
			return fmt.Errorf("%s: %s has no children", path, h.Type)
		}
		return nil
	}
	var err error
	switch h.Type {
	case route.PoolRoute:
		err = c.poolRoute(n, h, path)
	case route.HashRoute:
		err = children()
		n.hash = newChooser(h.Hash.Func, h.Hash.Salt, h.Hash.Weights)
	case route.PrefixSelectorRoute:
		for p, ph := range h.Policies {
			to, err := c.node(ph, path+".policies."+p)
			if err != nil {
				return nil, err
			}
			n.prefixes = append(n.prefixes, rprefix{p, to})
		}
		slices.SortFunc(n.prefixes, func(a, b rprefix) int {
			if d := len(b.prefix) - len(a.prefix); d != 0 {
				return d
			}
			return strings.Compare(a.prefix, b.prefix)
		})
		if h.Wildcard != nil {
			n.wildcard, err = c.node(h.Wildcard, path+".wildcard")
		}
	case route.OperationSelectorRoute:
		if h.Default != nil {
			if n.def, err = c.node(h.Default, path+".default_policy"); err != nil {
				return nil, err
			}
		}
		for opName, oh := range h.Policies {
			op, ok := ropByName(opName)
			if !ok {
				if mcrouterOnlyOps[opName] {
					continue // corvid's clients cannot send it
				}
				return nil, fmt.Errorf("%s.operation_policies: unknown operation %q", path, opName)
			}
			to, err := c.node(oh, path+".operation_policies."+opName)
			if err != nil {
				return nil, err
			}
			for o := range nROps {
				if ropPolicy[o] == op {
					n.ops[o] = to
				}
			}
		}
	case route.FailoverRoute, route.MissFailoverRoute, route.AllSyncRoute, route.AllAsyncRoute,
		route.AllInitialRoute, route.AllMajorityRoute, route.AllFastestRoute, route.RandomRoute:
		err = children()
	case route.LatestRoute:
		// mcrouter's LatestRoute: a failover over failover_count
		// children, the first chosen at random once per tree.
		if err = children(); err == nil {
			k := h.FailoverCount
			if k <= 0 {
				k = 5
			}
			k = min(k, len(n.children))
			start := rand.IntN(len(n.children))
			sel := make([]*rnode, 0, k)
			for i := range k {
				sel = append(sel, n.children[(start+i)%len(n.children)])
			}
			n.children = sel
		}
	case route.WarmUpRoute:
		if n.cold, err = c.node(h.Cold, path+".cold"); err != nil {
			return nil, err
		}
		if n.warm, err = c.node(h.Warm, path+".warm"); err != nil {
			return nil, err
		}
		n.exptime = h.Exptime
	case route.NullRoute:
	case route.ErrorRoute:
		n.response = h.Response
	case route.RateLimitRoute:
		if err = children(); err == nil {
			for i, class := range [...]string{"gets", "sets", "deletes"} {
				if r, ok := h.Rates[class]; ok && r.PerSecond > 0 {
					n.limits[i] = newTokenBucket(r.PerSecond, r.Burst)
				}
			}
		}
	default:
		err = fmt.Errorf("%s: unknown type %q", path, h.Type)
	}
	if err != nil {
		return nil, err
	}
	c.seen[h] = n
	c.nodes = append(c.nodes, n)
	return n, nil
}

func (c *compiler) poolRoute(n *rnode, h *route.Handle, path string) error {
	pl := c.pools[h.Pool]
	if pl == nil {
		return fmt.Errorf("%s: no pool %q", path, h.Pool)
	}
	n.pool = pl
	if !c.inPool[pl] {
		c.inPool[pl] = true
		c.order = append(c.order, pl)
	}
	switch fn := h.Hash.Func; {
	case fn == "" && c.ringDefault:
	case strings.Contains(fn, "/"):
		// corvid's extension: a twemproxy distribution/hash of ring.
		dist, hash, _ := strings.Cut(fn, "/")
		r, err := ring.New(ring.Config{Servers: c.cfgs[pl].Servers, Hash: hash,
			Distribution: ring.Distribution(dist), HashTag: h.Hash.HashTag})
		if err != nil {
			return fmt.Errorf("%s: hash %q: %w", path, fn, err)
		}
		n.hring = r
	default:
		n.pick = newChooser(fn, h.Hash.Salt, h.Hash.Weights)
	}
	for i, s := range h.Shadows {
		sp := s.Path
		if sp == "" {
			sp = fmt.Sprintf("%s.shadows[%d]", path, i)
		}
		to, err := c.node(s.Target, sp+".target")
		if err != nil {
			return err
		}
		lo, hi := s.IndexRange[0], s.IndexRange[1]
		if lo < 0 {
			return fmt.Errorf("%s: index_range [%d, %d] starts below 0", sp, lo, hi)
		}
		frac, err := ring.NewKeyFractionRange(s.KeyFractionRange[0], s.KeyFractionRange[1])
		if err != nil {
			return fmt.Errorf("%s: key_fraction_range outside [0,1]", sp)
		}
		n.shadows = append(n.shadows, rshadow{to: to, lo: lo, hi: hi, frac: frac})
	}
	return nil
}

// backend returns the server of a PoolRoute for key, and its index in
// the pool.
func (n *rnode) backend(key []byte) (*backend, int, error) {
	t := n.pool.current()
	switch {
	case n.pick != nil:
		if len(t.all) == 0 {
			return nil, 0, errNoServer
		}
		i := n.pick.choose(key, len(t.all))
		return t.all[i], i, nil
	case n.hring != nil:
		i := n.hring.Pick(key)
		if i >= len(t.all) {
			return nil, 0, errNoServer
		}
		return t.all[i], i, nil
	}
	if t.ring == nil {
		return nil, 0, errNoServer
	}
	i := t.ring.Pick(key)
	return t.live[i], i, nil
}

// resolve walks the selectors from n for a request of op on key, and
// returns the node that serves it: a PoolRoute, a composer or a local
// route. It does not allocate.
func (n *rnode) resolve(key []byte, op rop) *rnode {
	for n != nil {
		switch n.typ {
		case route.HashRoute:
			n.st.requests.Add(1)
			n = n.children[n.hash.choose(key, len(n.children))]
		case route.RandomRoute:
			n.st.requests.Add(1)
			n = n.children[rand.IntN(len(n.children))]
		case route.PrefixSelectorRoute:
			n.st.requests.Add(1)
			next := n.wildcard
			for i := range n.prefixes {
				if p := n.prefixes[i].prefix; len(key) >= len(p) && string(key[:len(p)]) == p {
					next = n.prefixes[i].to
					break
				}
			}
			n = next
		case route.OperationSelectorRoute:
			n.st.requests.Add(1)
			next := n.ops[op]
			if next == nil {
				next = n.def
			}
			n = next
		case route.RateLimitRoute:
			n.st.requests.Add(1)
			if b := n.limits[ropClass[op]]; b != nil && !b.take() {
				n.st.errors.Add(1)
				return nullNode
			}
			n = n.children[0]
		default:
			return n
		}
	}
	return nullNode
}

// nullNode answers what a selector leaves without a route: mcrouter's
// NullRoute.
var nullNode = &rnode{typ: route.NullRoute, name: "null", st: new(routeCounters)}

// tokenBucket is RateLimitRoute's bucket. It is safe for concurrent use.
type tokenBucket struct {
	rate, burst float64
	mu          sync.Mutex // guards tokens, last
	tokens      float64
	last        time.Time
}

func newTokenBucket(rate, burst float64) *tokenBucket {
	burst = max(burst, 1)
	return &tokenBucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

func (b *tokenBucket) take() bool {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

package route

import (
	"sort"
	"strings"
)

// props are the properties each handle takes besides "type" and "name",
// spelled as mcrouter spells them.
var props = map[Type][]string{
	PoolRoute:              {"pool", "hash", "shadows", "rates"},
	HashRoute:              {"children", "hash_func", "salt", "weights"},
	PrefixSelectorRoute:    {"policies", "wildcard"},
	OperationSelectorRoute: {"operation_policies", "default_policy"},
	FailoverRoute:          {"children"},
	MissFailoverRoute:      {"children"},
	WarmUpRoute:            {"cold", "warm", "exptime"},
	AllSyncRoute:           {"children"},
	AllAsyncRoute:          {"children"},
	AllInitialRoute:        {"children"},
	AllMajorityRoute:       {"children"},
	AllFastestRoute:        {"children"},
	RandomRoute:            {"children"},
	LatestRoute:            {"children", "failover_count", "salt"},
	NullRoute:              {},
	ErrorRoute:             {"response"},
	RateLimitRoute:         {"target", "rates"},
}

// ignoredProps are mcrouter handle properties about its logging, which
// corvid accepts with a warning.
var ignoredProps = map[string]bool{"asynclog": true, "asynclog_name": true, "axonlog": true, "enable_logging": true}

// mcrouterTypes are mcrouter's other route handles: refused as not
// supported rather than as unknown.
var mcrouterTypes = map[string]bool{
	"AxonLogRoute": true, "BigValueRoute": true, "BlackholeRoute": true, "CarbonLookasideRoute": true,
	"DevNullRoute": true, "DistributionRoute": true, "FailoverWithExptimeRoute": true,
	"HashStopAllowListRoute": true, "HostIdRoute": true, "KeyParseRoute": true, "KeySplitRoute": true,
	"LatencyInjectionRoute": true, "LoadBalancerRoute": true, "LoggingRoute": true, "MigrateRoute": true,
	"ModifyExptimeRoute": true, "ModifyKeyRoute": true, "OriginalClientHashRoute": true,
	"PrefixPolicyRoute": true, "RoutingGroupRoute": true, "SRRoute": true, "SetDistributionTargetRoute": true,
	"StagingRoute": true, "ShadowRoute": true, "SaltedFailoverRoute": true, "SlowWarmUpRoute": true,
}

// Operations are the names OperationSelectorRoute's operation_policies
// take (mcrouter's request names).
var Operations = []string{
	"add", "append", "cas", "decr", "delete", "flushall", "gat", "gats", "get", "gets", "incr",
	"lease-get", "lease-set", "metaget", "prepend", "replace", "set", "touch", "version",
}

// decoder builds handles and pools from values, as mcrouter's route
// handle factory does: a list is flattened into its parent's children,
// an object with a "name" is built once and reused wherever that name
// appears later as a string, and "Type|rest" is a short form.
type decoder struct {
	pools    map[string]*Pool
	poolVals map[string]*value
	// poolHash is a pool's hash when its PoolRoute gives none.
	poolHash map[string]Hash
	// noInline refuses inline pool objects (nutcracker.yml's routes name
	// the file's pools).
	noInline   bool
	named      map[string]*namedHandle
	registered map[string]*value // named_handles given as an object
	warnings   []string
	depth      int
	// steps counts the values decoded as routes, bounded by maxSteps:
	// a value shared by a const or an alias is decoded wherever it is
	// used, so that a small configuration may describe a huge tree.
	steps int
}

type namedHandle struct {
	v        *value
	path     string
	handles  []*Handle
	building bool
}

func newDecoder() *decoder {
	return &decoder{
		pools: map[string]*Pool{}, poolVals: map[string]*value{}, poolHash: map[string]Hash{},
		named: map[string]*namedHandle{}, registered: map[string]*value{},
	}
}

func (d *decoder) warn(path, format string, args ...any) {
	d.warnings = append(d.warnings, failf(path, format, args...).Error())
}

// one decodes a value that must be exactly one route.
func (d *decoder) one(v *value, path string) (*Handle, error) {
	hs, err := d.list(v, path)
	if err != nil {
		return nil, err
	}
	if len(hs) != 1 {
		return nil, failf(path, "want one route, found %d", len(hs))
	}
	return hs[0], nil
}

// children decodes a property holding a list of routes.
func (d *decoder) children(v *value, path string) ([]*Handle, error) {
	switch v.kind {
	case kindList, kindObj, kindStr:
		return d.list(v, path)
	}
	return nil, failf(path, "want a route or a list of routes, not %s", v.what())
}

// list decodes a route, or a list of them, into a list of handles.
func (d *decoder) list(v *value, path string) ([]*Handle, error) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth {
		return nil, failf(path, "routes nested more than %d deep", maxDepth)
	}
	if d.steps++; d.steps > maxSteps {
		return nil, failf(path, "routes expand to more than %d values", maxSteps)
	}
	switch v.kind {
	case kindList:
		var out []*Handle
		for i, e := range v.list {
			hs, err := d.list(e, index(path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, hs...)
		}
		return out, nil
	case kindObj:
		if n := v.get("name"); n != nil && n.kind == kindStr {
			return d.namedObject(n.str, v, path)
		}
		return d.object(v, path)
	case kindStr:
		s := v.str
		if s == "" {
			return nil, nil
		}
		if n := d.named[s]; n != nil {
			if n.building {
				return nil, failf(path, "a cycle: route %q is used inside its own definition at %s", s, n.path)
			}
			return n.handles, nil
		}
		if r := d.registered[s]; r != nil {
			delete(d.registered, s)
			return d.build(s, r, "named_handles."+s)
		}
		typ, def, ok := strings.Cut(s, "|")
		if !ok {
			return d.create(typ, nil, path)
		}
		return d.create(typ, strValue(def), path)
	}
	return nil, failf(path, "want a route (an object, a string or a list), not %s", v.what())
}

// namedObject builds an object with a name once; a later object of the
// same name must be the same definition.
func (d *decoder) namedObject(name string, v *value, path string) ([]*Handle, error) {
	if n := d.named[name]; n != nil {
		if n.building {
			return nil, failf(path, "a cycle: route %q is defined inside its own definition at %s", name, n.path)
		}
		if !n.v.equal(v) {
			return nil, failf(path, "route %q is defined twice, differently (first at %s)", name, n.path)
		}
		return n.handles, nil
	}
	if r := d.registered[name]; r != nil {
		delete(d.registered, name)
		if !r.equal(v) {
			return nil, failf(path, "route %q is defined twice, differently (first at named_handles.%s)", name, name)
		}
	}
	return d.build(name, v, path)
}

func (d *decoder) build(name string, v *value, path string) ([]*Handle, error) {
	n := &namedHandle{v: v, path: path, building: true}
	d.named[name] = n
	var hs []*Handle
	var err error
	if v.kind == kindObj {
		hs, err = d.object(v, path)
	} else {
		hs, err = d.list(v, path)
	}
	if err != nil {
		return nil, err
	}
	n.handles, n.building = hs, false
	return hs, nil
}

func (d *decoder) object(v *value, path string) ([]*Handle, error) {
	t := v.get("type")
	if t == nil {
		return nil, failf(path, "a route object needs a \"type\"")
	}
	if t.kind != kindStr {
		return nil, failf(join(path, "type"), "want a string, not %s", t.what())
	}
	return d.create(t.str, v, path)
}

// create builds a handle of type typ from def: the object, the string
// after "Type|", or nil for a bare "Type".
func (d *decoder) create(typ string, def *value, path string) ([]*Handle, error) {
	if typ == "Pool" {
		if def == nil || def.kind != kindStr {
			return nil, failf(path, "\"Pool\" is written \"Pool|<pool name>\"")
		}
		if d.noInline {
			return nil, failf(path, "\"Pool|%s\" is not available here: use \"PoolRoute|%s\"", def.str, def.str)
		}
		return d.poolServers(def.str, path)
	}
	t := Type(typ)
	allowed, ok := props[t]
	if !ok {
		if mcrouterTypes[typ] {
			return nil, failf(path, "type %q is not supported by corvid", typ)
		}
		if def == nil {
			return nil, failf(path, "unknown type %q (nor a route named so before it)", typ)
		}
		return nil, failf(path, "unknown type %q", typ)
	}
	h := &Handle{Type: t, Path: path, Name: path}
	obj := def != nil && def.kind == kindObj
	if obj {
		for _, k := range def.keys {
			switch {
			case k == "type":
			case k == "name":
				if n := def.get("name"); n.kind == kindStr {
					h.Name = n.str
				} else {
					return nil, failf(join(path, "name"), "want a string, not %s", n.what())
				}
			case contains(allowed, k):
			case ignoredProps[k]:
				d.warn(join(path, k), "ignored: corvid has no %s", k)
			default:
				return nil, failf(path, "unknown property %q of %s", k, typ)
			}
		}
	}
	get := func(k string) *value {
		if obj {
			return def.get(k)
		}
		return nil
	}
	var err error
	switch t {
	case PoolRoute:
		return d.poolRoute(h, def, path)
	case HashRoute, FailoverRoute, MissFailoverRoute, AllSyncRoute, AllAsyncRoute, AllInitialRoute,
		AllMajorityRoute, AllFastestRoute, RandomRoute, LatestRoute:
		var cv *value
		cp := path
		switch {
		case obj:
			if cv = def.get("children"); cv == nil {
				return nil, failf(path, "%s has no children", typ)
			}
			cp = join(path, "children")
		case def != nil:
			cv = def
		default:
			return nil, failf(path, "%s has no children", typ)
		}
		if h.Children, err = d.children(cv, cp); err != nil {
			return nil, err
		}
		if len(h.Children) == 0 {
			// as mcrouter: a route over no children is a NullRoute
			return []*Handle{{Type: NullRoute, Path: path, Name: h.Name}}, nil
		}
		if t == HashRoute {
			h.Hash = Hash{Func: "Ch3"}
			if err := hashFields(&h.Hash, get("hash_func"), get("salt"), get("weights"), path); err != nil {
				return nil, err
			}
		}
		if t == LatestRoute {
			h.FailoverCount = 5
			if fc := get("failover_count"); fc != nil {
				if !fc.isInt() || fc.num < 0 {
					return nil, failf(join(path, "failover_count"), "want a count, not %s", fc.text())
				}
				h.FailoverCount = int(fc.num)
			}
			if err := hashFields(&h.Hash, nil, get("salt"), nil, path); err != nil {
				return nil, err
			}
		}
	case PrefixSelectorRoute, OperationSelectorRoute:
		if !obj {
			return nil, failf(path, "%s must be an object", typ)
		}
		pk, dk := "policies", "wildcard"
		if t == OperationSelectorRoute {
			pk, dk = "operation_policies", "default_policy"
		}
		pv, dv := def.get(pk), def.get(dk)
		if pv == nil && dv == nil {
			return nil, failf(path, "%s needs %q or %q", typ, pk, dk)
		}
		if pv != nil {
			if pv.kind != kindObj {
				return nil, failf(join(path, pk), "want an object, not %s", pv.what())
			}
			keys := append([]string(nil), pv.keys...)
			sort.Strings(keys) // as mcrouter, so that named routes resolve alike
			h.Policies = map[string]*Handle{}
			for _, k := range keys {
				if t == OperationSelectorRoute && !contains(Operations, k) {
					return nil, failf(join(path, pk), "unknown operation %q", k)
				}
				if h.Policies[k], err = d.one(pv.get(k), join(join(path, pk), k)); err != nil {
					return nil, err
				}
			}
		}
		if dv != nil {
			c, err := d.one(dv, join(path, dk))
			if err != nil {
				return nil, err
			}
			if t == PrefixSelectorRoute {
				h.Wildcard = c
			} else {
				h.Default = c
			}
		}
	case WarmUpRoute:
		if !obj {
			return nil, failf(path, "WarmUpRoute must be an object")
		}
		for _, k := range []string{"cold", "warm"} {
			cv := def.get(k)
			if cv == nil {
				return nil, failf(path, "WarmUpRoute has no %q route", k)
			}
			c, err := d.one(cv, join(path, k))
			if err != nil {
				return nil, err
			}
			if k == "cold" {
				h.Cold = c
			} else {
				h.Warm = c
			}
		}
		if e := def.get("exptime"); e != nil {
			if !e.isInt() || e.num < 0 || e.num > 1<<31-1 {
				return nil, failf(join(path, "exptime"), "want a number of seconds, not %s", e.text())
			}
			h.Exptime = int32(e.num)
		}
	case NullRoute:
		if def != nil && !obj {
			return nil, failf(path, "NullRoute takes nothing after '|'")
		}
	case ErrorRoute:
		switch {
		case obj:
			if r := def.get("response"); r != nil {
				if r.kind != kindStr {
					return nil, failf(join(path, "response"), "want a string, not %s", r.what())
				}
				h.Response = r.str
			}
		case def != nil:
			h.Response = def.str
		}
	case RateLimitRoute:
		if !obj {
			return nil, failf(path, "RateLimitRoute must be an object")
		}
		tv, rv := def.get("target"), def.get("rates")
		if tv == nil {
			return nil, failf(path, "RateLimitRoute has no target")
		}
		if rv == nil {
			return nil, failf(path, "RateLimitRoute has no rates")
		}
		c, err := d.one(tv, join(path, "target"))
		if err != nil {
			return nil, err
		}
		h.Children = []*Handle{c}
		if h.Rates, err = rates(rv, join(path, "rates")); err != nil {
			return nil, err
		}
	}
	return []*Handle{h}, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

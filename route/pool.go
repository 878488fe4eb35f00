package route

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// pool reads a pool definition.
func (d *decoder) pool(name string, v *value, path string) error {
	if v.kind != kindObj {
		return failf(path, "want a pool object, not %s", v.what())
	}
	p := &Pool{Name: name, Path: path}
	sv := v.get("servers")
	if sv == nil {
		return failf(path, "no servers")
	}
	if sv.kind != kindList {
		return failf(join(path, "servers"), "want a list of \"host:port\", not %s", sv.what())
	}
	if len(sv.list) == 0 {
		return failf(join(path, "servers"), "no servers")
	}
	protocol := false
	for i, s := range sv.list {
		if s.kind != kindStr {
			return failf(index(join(path, "servers"), i), "want \"host:port\", not %s", s.what())
		}
		addr, extra, err := parseServer(s.str)
		if err != nil {
			return failf(index(join(path, "servers"), i), "%v", err)
		}
		protocol = protocol || extra
		p.Servers = append(p.Servers, Server{Addr: addr, Weight: 1})
	}
	if protocol {
		d.warn(join(path, "servers"), "the protocol after host:port is ignored: corvid speaks memcached's text protocol to its servers")
	}
	for i, k := range v.keys {
		m, mp := v.vals[i], join(path, k)
		switch k {
		case "servers":
		case "server_timeout":
			if !m.isInt() || m.num < 0 {
				return failf(mp, "want a number of milliseconds, not %s", m.text())
			}
			p.Timeout = time.Duration(m.num) * time.Millisecond
		case "weights":
			if m.kind != kindList || len(m.list) != len(p.Servers) {
				d.warn(mp, "ignored: not a list of one weight per server (as mcrouter)")
				continue
			}
			h := Hash{Func: "WeightedCh3"}
			for j, w := range m.list {
				if w.kind != kindNum || w.num < 0 || w.num > 1 {
					return failf(index(mp, j), "want a weight in [0,1], not %s", w.text())
				}
				p.Servers[j].Weight = w.num
				h.Weights = append(h.Weights, w.num)
			}
			d.poolHash[name] = h
		default:
			d.warn(mp, "ignored: corvid does not use pool property %q", k)
		}
	}
	d.pools[name] = p
	d.poolVals[name] = v
	return nil
}

// parseServer reads mcrouter's "host:port[:protocol[:security[:compression]]]"
// ("[v6addr]:port..." for IPv6) and reports whether anything followed
// the port.
func parseServer(s string) (addr string, extra bool, err error) {
	var host, rest string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", false, fmt.Errorf("server %q: no ']'", s)
		}
		host, rest = s[1:end], s[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return "", false, fmt.Errorf("server %q is not \"host:port\"", s)
		}
		rest = rest[1:]
	} else {
		var ok bool
		if host, rest, ok = strings.Cut(s, ":"); !ok {
			return "", false, fmt.Errorf("server %q is not \"host:port\"", s)
		}
	}
	port, tail, _ := strings.Cut(rest, ":")
	n, err := strconv.Atoi(port)
	if host == "" || err != nil || n < 1 || n > 65535 {
		return "", false, fmt.Errorf("server %q is not \"host:port\"", s)
	}
	return net.JoinHostPort(host, port), tail != "", nil
}

// poolServers is "Pool|A": one route per server of pool A, in order, each
// a PoolRoute over a pool of that server alone, named "A[i]".
func (d *decoder) poolServers(name, path string) ([]*Handle, error) {
	p := d.pools[name]
	if p == nil {
		return nil, failf(path, "pool %q is not defined", name)
	}
	out := make([]*Handle, len(p.Servers))
	for i, s := range p.Servers {
		sub := fmt.Sprintf("%s[%d]", name, i)
		if d.pools[sub] == nil {
			d.pools[sub] = &Pool{Name: sub, Servers: []Server{s}, Timeout: p.Timeout, Path: p.Path}
		}
		out[i] = &Handle{Type: PoolRoute, Path: index(path, i), Name: sub, Pool: sub, Hash: Hash{Func: "Ch3"}}
	}
	return out, nil
}

func (d *decoder) poolRoute(h *Handle, def *value, path string) ([]*Handle, error) {
	if def == nil {
		return nil, failf(path, "PoolRoute is written \"PoolRoute|<pool name>\" or as an object with a pool")
	}
	pv := def
	if def.kind == kindObj {
		if pv = def.get("pool"); pv == nil {
			return nil, failf(path, "PoolRoute has no pool")
		}
	}
	var name string
	switch pv.kind {
	case kindStr:
		name = pv.str
		if d.pools[name] == nil {
			return nil, failf(path, "pool %q is not defined", name)
		}
	case kindObj:
		pp := join(path, "pool")
		if d.noInline {
			return nil, failf(pp, "name a pool of this file instead of defining one here")
		}
		n := pv.get("name")
		if n == nil || n.kind != kindStr || n.str == "" {
			return nil, failf(pp, "an inline pool needs a \"name\"")
		}
		name = n.str
		if old := d.poolVals[name]; old != nil {
			if !old.equal(pv) {
				return nil, failf(pp, "pool %q is defined twice, differently (first at %s)", name, d.pools[name].Path)
			}
		} else {
			body := pv.clone()
			body.del("name")
			if err := d.pool(name, body, pp); err != nil {
				return nil, err
			}
			d.poolVals[name] = pv
		}
	default:
		return nil, failf(join(path, "pool"), "want a pool name or a pool object, not %s", pv.what())
	}
	h.Pool = name
	h.Hash = Hash{Func: "Ch3"}
	if ph, ok := d.poolHash[name]; ok {
		h.Hash = ph
	}
	if def.kind != kindObj {
		return []*Handle{h}, nil
	}
	if hv := def.get("hash"); hv != nil {
		hp := join(path, "hash")
		switch hv.kind {
		case kindStr:
			h.Hash.Func = hv.str
		case kindObj:
			for _, k := range hv.keys {
				if !contains([]string{"hash_func", "salt", "weights", "hash_tag"}, k) {
					return nil, failf(hp, "unknown property %q of hash", k)
				}
			}
			if err := hashFields(&h.Hash, hv.get("hash_func"), hv.get("salt"), hv.get("weights"), hp); err != nil {
				return nil, err
			}
			if t := hv.get("hash_tag"); t != nil {
				if t.kind != kindStr || len(t.str) != 2 {
					return nil, failf(join(hp, "hash_tag"), "want two characters")
				}
				h.Hash.HashTag = t.str
			}
		default:
			return nil, failf(hp, "want a hash name or object, not %s", hv.what())
		}
	}
	if sv := def.get("shadows"); sv != nil {
		sp := join(path, "shadows")
		if sv.kind != kindList {
			return nil, failf(sp, "want a list of shadows, not %s", sv.what())
		}
		for i, s := range sv.list {
			sh, err := d.shadow(s, index(sp, i))
			if err != nil {
				return nil, err
			}
			h.Shadows = append(h.Shadows, sh)
		}
	}
	if rv := def.get("rates"); rv != nil {
		// as mcrouter: a PoolRoute with rates is a RateLimitRoute over it
		r, err := rates(rv, join(path, "rates"))
		if err != nil {
			return nil, err
		}
		return []*Handle{{Type: RateLimitRoute, Path: path, Name: h.Name + ".rates", Children: []*Handle{h}, Rates: r}}, nil
	}
	return []*Handle{h}, nil
}

// shadow reads one of a PoolRoute's shadows. mcrouter's index_range
// [start, end) is stored as the inclusive [start, end-1].
func (d *decoder) shadow(v *value, path string) (Shadow, error) {
	sh := Shadow{Path: path, IndexRange: [2]int{0, -1}}
	if v.kind != kindObj {
		return sh, failf(path, "want a shadow object, not %s", v.what())
	}
	for _, k := range v.keys {
		if !contains([]string{"target", "index_range", "key_fraction_range"}, k) {
			return sh, failf(path, "unknown property %q of a shadow", k)
		}
	}
	tv := v.get("target")
	if tv == nil {
		return sh, failf(path, "a shadow needs a target")
	}
	var err error
	if sh.Target, err = d.one(tv, join(path, "target")); err != nil {
		return sh, err
	}
	pair := func(k string) (a, b float64, ok bool, err error) {
		r := v.get(k)
		if r == nil {
			return 0, 0, false, nil
		}
		if r.kind != kindList || len(r.list) != 2 || r.list[0].kind != kindNum || r.list[1].kind != kindNum {
			return 0, 0, false, failf(join(path, k), "want [start, end]")
		}
		return r.list[0].num, r.list[1].num, true, nil
	}
	a, b, ok, err := pair("index_range")
	if err != nil {
		return sh, err
	}
	if ok {
		if a != float64(int(a)) || b != float64(int(b)) || a < 0 || a > b || b > 1<<30 {
			return sh, failf(join(path, "index_range"), "[%v, %v] is not a range of server indexes", a, b)
		}
		sh.IndexRange = [2]int{int(a), int(b) - 1}
	} else {
		d.warn(path, "no index_range: as in mcrouter, nothing is shadowed")
	}
	a, b, ok, err = pair("key_fraction_range")
	if err != nil {
		return sh, err
	}
	if ok {
		sh.KeyFractionRange = [2]float64{a, b}
		if err := checkFraction(sh.KeyFractionRange, join(path, "key_fraction_range")); err != nil {
			return sh, err
		}
	}
	return sh, nil
}

func checkFraction(r [2]float64, path string) error {
	if !(r[0] >= 0 && r[1] <= 1) {
		return failf(path, "[%v, %v] is outside [0, 1]", r[0], r[1])
	}
	if r[0] > r[1] {
		return failf(path, "[%v, %v] is reversed", r[0], r[1])
	}
	return nil
}

// hashFields sets hash_func, salt and weights given as properties.
func hashFields(h *Hash, fn, salt, weights *value, path string) error {
	if fn != nil {
		if fn.kind != kindStr {
			return failf(join(path, "hash_func"), "want a string, not %s", fn.what())
		}
		h.Func = fn.str
	}
	if salt != nil {
		if salt.kind != kindStr {
			return failf(join(path, "salt"), "want a string, not %s", salt.what())
		}
		h.Salt = salt.str
	}
	if weights != nil {
		if weights.kind != kindList {
			return failf(join(path, "weights"), "want a list of weights, not %s", weights.what())
		}
		h.Weights = nil
		for i, w := range weights.list {
			if w.kind != kindNum || w.num < 0 || w.num > 1 {
				return failf(index(join(path, "weights"), i), "want a weight in [0,1], not %s", w.text())
			}
			h.Weights = append(h.Weights, w.num)
		}
	}
	return nil
}

// rates reads RateLimitRoute's rates: gets_rate, gets_burst, sets_rate,
// sets_burst, deletes_rate, deletes_burst (a burst defaults to its rate).
func rates(v *value, path string) (map[string]Rate, error) {
	if v.kind != kindObj {
		return nil, failf(path, "want an object, not %s", v.what())
	}
	out := map[string]Rate{}
	for _, k := range v.keys {
		class, what, ok := strings.Cut(k, "_")
		if !ok || !contains([]string{"gets", "sets", "deletes"}, class) || (what != "rate" && what != "burst") {
			return nil, failf(path, "unknown rate %q", k)
		}
		if n := v.get(k); n.kind != kindNum || !(n.num > 0) {
			return nil, failf(join(path, k), "want a positive number, not %s", n.text())
		}
		if what == "burst" && v.get(class+"_rate") == nil {
			return nil, failf(path, "%s without %s_rate", k, class)
		}
	}
	for _, class := range []string{"gets", "sets", "deletes"} {
		r := v.get(class + "_rate")
		if r == nil {
			continue
		}
		rate := Rate{PerSecond: r.num, Burst: r.num}
		if b := v.get(class + "_burst"); b != nil {
			rate.Burst = b.num
		}
		out[class] = rate
	}
	return out, nil
}

package route

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// DefaultRoutePrefix is mcrouter's default routing prefix (its -R,
// --route-prefix): the route of "routes" whose aliases include it serves.
const DefaultRoutePrefix = "/././"

// Option changes how ParseMcrouter reads a configuration.
type Option func(*options)

type options struct {
	source      string
	dir         string
	readFile    func(string) ([]byte, error)
	routePrefix string
}

// WithSource names where the configuration came from (Config.Source).
func WithSource(name string) Option { return func(o *options) { o.source = name } }

// WithImportDir sets the directory @import paths are relative to (default:
// the current directory).
func WithImportDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithReadFile replaces os.ReadFile for @import; nil forbids imports.
func WithReadFile(f func(string) ([]byte, error)) Option { return func(o *options) { o.readFile = f } }

// WithRoutePrefix sets the routing prefix whose route of "routes" serves
// (default DefaultRoutePrefix).
func WithRoutePrefix(p string) Option { return func(o *options) { o.routePrefix = p } }

// ParseMcrouter reads an mcrouter JSON configuration as mcrouter reads it:
// comments and trailing commas, "macros" and @import, "pools",
// "named_handles", and "route" or "routes". It returns the checked
// configuration and one warning per property corvid accepts and ignores.
// An error is one line that names where in the configuration it is.
func ParseMcrouter(data []byte, opts ...Option) (*Config, []string, error) {
	o := options{source: InlineSource, readFile: os.ReadFile, routePrefix: DefaultRoutePrefix}
	for _, f := range opts {
		f(&o)
	}
	top, warnings, err := parseJSON(data)
	if err != nil {
		return nil, nil, err
	}
	if top.kind != kindObj {
		return nil, nil, fmt.Errorf("the configuration is %s, not an object", top.what())
	}
	pp := newPreprocessor(o.readFile, o.dir)
	if m := top.get("macros"); m != nil {
		if err := pp.define(m, "macros"); err != nil {
			return nil, nil, err
		}
		top = top.clone()
		top.del("macros")
	}
	top, err = pp.expand(top, nil, "")
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, pp.warnings...)
	if top.kind != kindObj {
		return nil, nil, fmt.Errorf("the configuration expands to %s, not an object", top.what())
	}
	d := newDecoder()
	cfg, err := d.config(top, o.routePrefix)
	if err != nil {
		return nil, nil, err
	}
	cfg.Source = o.source
	if err := Check(cfg); err != nil {
		return nil, nil, err
	}
	return cfg, append(warnings, d.warnings...), nil
}

// LoadMcrouter reads the mcrouter configuration in the file at path;
// @import paths are relative to the file's directory. Errors start with
// the file's name.
func LoadMcrouter(path string, opts ...Option) (*Config, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	opts = append([]Option{WithSource(path), WithImportDir(filepath.Dir(path))}, opts...)
	cfg, warnings, err := ParseMcrouter(b, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, warnings, nil
}

// config decodes the top of an expanded configuration.
func (d *decoder) config(top *value, prefix string) (*Config, error) {
	if pv := top.get("pools"); pv != nil {
		if pv.kind != kindObj {
			return nil, failf("pools", "want an object of pool name: pool, not %s", pv.what())
		}
		for i, name := range pv.keys {
			if err := d.pool(name, pv.vals[i], join("pools", name)); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range top.keys {
		switch k {
		case "pools", "route", "routes", "named_handles":
		default:
			d.warn(k, "ignored: corvid does not use %q", k)
		}
	}
	if nv := top.get("named_handles"); nv != nil {
		switch nv.kind {
		case kindList:
			for i, e := range nv.list {
				if _, err := d.list(e, index("named_handles", i)); err != nil {
					return nil, err
				}
			}
		case kindObj:
			for i, name := range nv.keys {
				e := nv.vals[i]
				if e.kind == kindObj {
					if n := e.get("name"); n == nil || n.kind != kindStr || n.str != name {
						return nil, failf(join("named_handles", name), "the object's \"name\" must be %q", name)
					}
				}
				d.registered[name] = e
			}
		default:
			return nil, failf("named_handles", "want a list or an object, not %s", nv.what())
		}
	}
	rv, rsv := top.get("route"), top.get("routes")
	cfg := &Config{Pools: d.pools}
	var err error
	switch {
	case rv != nil && rsv != nil:
		return nil, failf("routes", "both \"route\" and \"routes\" are given")
	case rv != nil:
		if cfg.Root, err = d.one(rv, "route"); err != nil {
			return nil, err
		}
	case rsv != nil:
		if cfg.Root, err = d.routes(rsv, prefix); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no \"route\" or \"routes\"")
	}
	return cfg, nil
}

// routes decodes "routes" (a list of {"aliases": [...], "route": ...}, or
// an object of alias: route) and returns the route for prefix.
func (d *decoder) routes(v *value, prefix string) (*Handle, error) {
	var root *Handle
	switch v.kind {
	case kindList:
		for i, e := range v.list {
			p := index("routes", i)
			if e.kind != kindObj {
				return nil, failf(p, "want {\"aliases\": [...], \"route\": ...}, not %s", e.what())
			}
			for _, k := range e.keys {
				if k != "aliases" && k != "route" {
					return nil, failf(p, "unknown property %q", k)
				}
			}
			av, rv := e.get("aliases"), e.get("route")
			if rv == nil {
				return nil, failf(p, "no route")
			}
			if av == nil || av.kind != kindList {
				return nil, failf(p, "want \"aliases\": a list of routing prefixes")
			}
			h, err := d.one(rv, join(p, "route"))
			if err != nil {
				return nil, err
			}
			for j, a := range av.list {
				if a.kind != kindStr {
					return nil, failf(index(join(p, "aliases"), j), "want a string, not %s", a.what())
				}
				if a.str == prefix && root == nil {
					root = h
				}
			}
		}
	case kindObj:
		keys := append([]string(nil), v.keys...)
		sort.Strings(keys)
		for _, k := range keys {
			h, err := d.one(v.get(k), join("routes", k))
			if err != nil {
				return nil, err
			}
			if k == prefix {
				root = h
			}
		}
	default:
		return nil, failf("routes", "want a list or an object, not %s", v.what())
	}
	if root == nil {
		return nil, failf("routes", "no route for the routing prefix %q", prefix)
	}
	return root, nil
}

// DecodeYAML decodes the route: of a nutcracker.yml pool, written in YAML
// with mcrouter's handle names and properties. Pool names refer to pools
// (the file's), whose hash is hashes[name] unless the route gives one;
// inline pool objects are refused. Errors start with path. The handle is
// checked against pools. Warnings are returned as ParseMcrouter's.
func DecodeYAML(n *yaml.Node, path string, pools map[string]*Pool, hashes map[string]Hash) (*Handle, []string, error) {
	var steps int
	v, err := fromYAML(n, 0, &steps)
	if err != nil {
		return nil, nil, failf(path, "%v", err)
	}
	d := newDecoder()
	d.noInline = true
	for name, p := range pools {
		d.pools[name] = p
	}
	for name, h := range hashes {
		d.poolHash[name] = h
	}
	h, err := d.one(v, path)
	if err != nil {
		return nil, nil, err
	}
	if err := Check(&Config{Pools: d.pools, Root: h}); err != nil {
		return nil, nil, err
	}
	return h, d.warnings, nil
}

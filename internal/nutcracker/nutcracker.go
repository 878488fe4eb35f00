// Package nutcracker reads twemproxy's configuration file, nutcracker.yml,
// with nutcracker 0.5.0's directives, defaults and checks, so that corvid's
// proxy and tools accept an existing file unchanged. A Config is plain data.
package nutcracker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/corvidcache/corvid/ring"
	"github.com/corvidcache/corvid/route"
)

// Defaults nutcracker applies to a directive a pool leaves out.
const (
	DefaultHash               = "fnv1a_64"
	DefaultDistribution       = "ketama"
	DefaultBacklog            = 512
	DefaultServerConnections  = 1
	DefaultServerRetryTimeout = 30 * time.Second
	DefaultServerFailureLimit = 2
)

// Config is a parsed nutcracker.yml: its pools in file order.
type Config struct {
	Pools []Pool
	// Warnings are the properties of the pools' routes that corvid
	// accepts and ignores, one line each.
	Warnings []string
}

// Pool is one pool of nutcracker.yml with every default filled in.
type Pool struct {
	Name string
	// Listen is "host:port", or a Unix socket path.
	Listen string
	// ListenPerm is the permission of a Unix socket ("/path 0666"); 0 when
	// not given.
	ListenPerm os.FileMode
	// Hash and Distribution are names ring accepts.
	Hash         string
	HashTag      string
	Distribution string
	// Timeout bounds a server's reply; 0 means wait forever.
	Timeout           time.Duration
	Backlog           int
	ClientConnections int
	Preconnect        bool
	TCPKeepalive      bool
	Redis             bool
	RedisAuth         string
	RedisDB           int
	ServerConnections int
	AutoEjectHosts    bool
	// ServerRetryTimeout is how long an ejected server stays out.
	ServerRetryTimeout time.Duration
	// ServerFailureLimit is how many consecutive failures eject a server.
	ServerFailureLimit int
	Servers            []ring.Server
	// Route is the pool's route: (corvid's extension): a route tree over
	// this file's pools, in mcrouter's handle names, that the pool's
	// clients take instead of plain placement on Servers. nil for a
	// plain twemproxy pool.
	Route *route.Handle
}

// Pool returns the pool called name.
func (c *Config) Pool(name string) (*Pool, bool) {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i], true
		}
	}
	return nil, false
}

// Ring builds the pool's key placement.
func (p *Pool) Ring() (*ring.Ring, error) {
	return ring.New(ring.Config{
		Servers:      p.Servers,
		Hash:         p.Hash,
		Distribution: ring.Distribution(p.Distribution),
		HashTag:      p.HashTag,
	})
}

// rawPool holds a pool's directives as written; nil means absent.
type rawPool struct {
	Listen             *string   `yaml:"listen"`
	Hash               *string   `yaml:"hash"`
	HashTag            *string   `yaml:"hash_tag"`
	Distribution       *string   `yaml:"distribution"`
	Timeout            *int      `yaml:"timeout"`
	Backlog            *int      `yaml:"backlog"`
	ClientConnections  *int      `yaml:"client_connections"`
	Preconnect         *bool     `yaml:"preconnect"`
	TCPKeepalive       *bool     `yaml:"tcpkeepalive"`
	Redis              *bool     `yaml:"redis"`
	RedisAuth          *string   `yaml:"redis_auth"`
	RedisDB            *int      `yaml:"redis_db"`
	ServerConnections  *int      `yaml:"server_connections"`
	AutoEjectHosts     *bool     `yaml:"auto_eject_hosts"`
	ServerRetryTimeout *int      `yaml:"server_retry_timeout"`
	ServerFailureLimit *int      `yaml:"server_failure_limit"`
	Servers            *[]string `yaml:"servers"`
}

var directives = map[string]bool{
	"listen": true, "hash": true, "hash_tag": true, "distribution": true, "timeout": true,
	"backlog": true, "client_connections": true, "preconnect": true, "tcpkeepalive": true, "redis": true,
	"redis_auth": true, "redis_db": true, "server_connections": true, "auto_eject_hosts": true,
	"server_retry_timeout": true, "server_failure_limit": true, "servers": true, "route": true,
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse parses the text of a nutcracker.yml.
func Parse(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("nutcracker: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("nutcracker: no pools")
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("nutcracker: line %d: want a mapping of pool names to pools", top.Line)
	}
	c := &Config{}
	seen := map[string]bool{}
	listens := map[string]string{}
	routes := map[string]*yaml.Node{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		name, body := top.Content[i].Value, top.Content[i+1]
		if seen[name] {
			return nil, fmt.Errorf("nutcracker: pool %q defined twice", name)
		}
		seen[name] = true
		p, err := parsePool(name, body)
		if err != nil {
			return nil, err
		}
		if other, ok := listens[p.Listen]; ok {
			return nil, fmt.Errorf("nutcracker: pools %q and %q have the same listen address %q", other, name, p.Listen)
		}
		listens[p.Listen] = name
		c.Pools = append(c.Pools, p)
		if r := routeNode(body); r != nil {
			routes[name] = r
		}
	}
	if len(c.Pools) == 0 {
		return nil, errors.New("nutcracker: no pools")
	}
	if len(routes) > 0 {
		if err := c.decodeRoutes(routes); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// routeNode returns the value of a pool's route:, or nil.
func routeNode(body *yaml.Node) *yaml.Node {
	for i := 0; i+1 < len(body.Content); i += 2 {
		if body.Content[i].Value == "route" {
			return body.Content[i+1]
		}
	}
	return nil
}

// decodeRoutes decodes the pools' route: (corvid's extension), whose
// PoolRoutes name pools of this file: their servers, and their hash and
// distribution as the route's hash ("ketama/fnv1a_64") unless the route
// gives one.
func (c *Config) decodeRoutes(routes map[string]*yaml.Node) error {
	pools := map[string]*route.Pool{}
	hashes := map[string]route.Hash{}
	for _, p := range c.Pools {
		if len(p.Servers) == 0 {
			continue // a pool that only routes
		}
		rp := &route.Pool{Name: p.Name, Timeout: p.Timeout, Path: fmt.Sprintf("pool %q", p.Name)}
		for _, s := range p.Servers {
			rp.Servers = append(rp.Servers, route.Server{Addr: s.Addr, Weight: float64(max(s.Weight, 1)), Name: s.Name})
		}
		pools[p.Name] = rp
		hashes[p.Name] = route.Hash{Func: p.Distribution + "/" + p.Hash, HashTag: p.HashTag}
	}
	for i := range c.Pools {
		p := &c.Pools[i]
		n := routes[p.Name]
		if n == nil {
			continue
		}
		h, warnings, err := route.DecodeYAML(n, "route", pools, hashes)
		if err != nil {
			return fmt.Errorf("nutcracker: pool %q: %w", p.Name, err)
		}
		p.Route = h
		for _, w := range warnings {
			c.Warnings = append(c.Warnings, fmt.Sprintf("pool %q: %s", p.Name, w))
		}
	}
	return nil
}

func parsePool(name string, body *yaml.Node) (Pool, error) {
	fail := func(format string, args ...any) (Pool, error) {
		return Pool{}, fmt.Errorf("nutcracker: pool %q: %s", name, fmt.Sprintf(format, args...))
	}
	if body.Kind != yaml.MappingNode {
		return fail("line %d: want a mapping of directives", body.Line)
	}
	for i := 0; i < len(body.Content); i += 2 {
		if k := body.Content[i]; !directives[k.Value] {
			return fail("line %d: unknown directive %q", k.Line, k.Value)
		}
	}
	var r rawPool
	if err := body.Decode(&r); err != nil {
		return fail("%v", err)
	}
	p := Pool{
		Name:               name,
		Hash:               DefaultHash,
		Distribution:       DefaultDistribution,
		Backlog:            DefaultBacklog,
		ServerConnections:  DefaultServerConnections,
		ServerRetryTimeout: DefaultServerRetryTimeout,
		ServerFailureLimit: DefaultServerFailureLimit,
	}
	if r.Listen == nil {
		return fail("directive \"listen\" is missing")
	}
	listen := strings.Fields(*r.Listen)
	if len(listen) == 0 || len(listen) > 2 {
		return fail("bad listen %q", *r.Listen)
	}
	p.Listen = listen[0]
	if len(listen) == 2 {
		perm, err := strconv.ParseUint(listen[1], 8, 32)
		if err != nil || !strings.HasPrefix(p.Listen, "/") {
			return fail("bad listen %q", *r.Listen)
		}
		p.ListenPerm = os.FileMode(perm)
	}
	if r.Hash != nil {
		if _, err := ring.HashNamed(*r.Hash); err != nil {
			return fail("unknown hash %q", *r.Hash)
		}
		p.Hash = *r.Hash
	}
	if r.HashTag != nil {
		if len(*r.HashTag) != 2 {
			return fail("hash_tag %q is not two characters", *r.HashTag)
		}
		p.HashTag = *r.HashTag
	}
	if r.Distribution != nil {
		switch ring.Distribution(*r.Distribution) {
		case ring.Ketama, ring.Modula, ring.Random:
		default:
			return fail("unknown distribution %q", *r.Distribution)
		}
		p.Distribution = *r.Distribution
	}
	for _, n := range []struct {
		name string
		v    *int
	}{
		{"timeout", r.Timeout}, {"backlog", r.Backlog}, {"client_connections", r.ClientConnections},
		{"redis_db", r.RedisDB}, {"server_connections", r.ServerConnections},
		{"server_retry_timeout", r.ServerRetryTimeout}, {"server_failure_limit", r.ServerFailureLimit},
	} {
		if n.v != nil && *n.v < 0 {
			return fail("%s %d is negative", n.name, *n.v)
		}
	}
	if r.Timeout != nil {
		p.Timeout = time.Duration(*r.Timeout) * time.Millisecond
	}
	setInt(&p.Backlog, r.Backlog)
	setInt(&p.ClientConnections, r.ClientConnections)
	setInt(&p.RedisDB, r.RedisDB)
	setInt(&p.ServerFailureLimit, r.ServerFailureLimit)
	if r.ServerConnections != nil {
		if *r.ServerConnections == 0 {
			return fail("server_connections must be at least 1")
		}
		p.ServerConnections = *r.ServerConnections
	}
	if r.ServerRetryTimeout != nil {
		p.ServerRetryTimeout = time.Duration(*r.ServerRetryTimeout) * time.Millisecond
	}
	setBool(&p.Preconnect, r.Preconnect)
	setBool(&p.TCPKeepalive, r.TCPKeepalive)
	setBool(&p.Redis, r.Redis)
	setBool(&p.AutoEjectHosts, r.AutoEjectHosts)
	if r.RedisAuth != nil {
		p.RedisAuth = *r.RedisAuth
	}
	if (r.Servers == nil || len(*r.Servers) == 0) && routeNode(body) == nil {
		return fail("directive \"servers\" is missing or empty")
	}
	if r.Servers == nil {
		return p, nil
	}
	names := map[string]bool{}
	for _, s := range *r.Servers {
		srv, err := ParseServer(s)
		if err != nil {
			return fail("%v", err)
		}
		if names[srv.KetamaName()] {
			return fail("server name %q is used twice", srv.KetamaName())
		}
		names[srv.KetamaName()] = true
		p.Servers = append(p.Servers, srv)
	}
	return p, nil
}

func setInt(dst, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setBool(dst, v *bool) {
	if v != nil {
		*dst = *v
	}
}

// ParseServer parses a servers entry: "host:port:weight [name]", or
// "/path/to/socket:weight [name]".
func ParseServer(s string) (ring.Server, error) {
	addrWeight, name, _ := strings.Cut(strings.TrimSpace(s), " ")
	name = strings.TrimSpace(name)
	i := strings.LastIndexByte(addrWeight, ':')
	if i < 0 {
		return ring.Server{}, fmt.Errorf("server %q is not \"host:port:weight [name]\"", s)
	}
	w, err := strconv.Atoi(addrWeight[i+1:])
	if err != nil || w < 1 {
		return ring.Server{}, fmt.Errorf("server %q has a bad weight", s)
	}
	addr := addrWeight[:i]
	if !strings.HasPrefix(addr, "/") {
		j := strings.LastIndexByte(addr, ':')
		if j <= 0 {
			return ring.Server{}, fmt.Errorf("server %q is not \"host:port:weight [name]\"", s)
		}
		port, err := strconv.Atoi(addr[j+1:])
		if err != nil || port < 1 || port > 65535 {
			return ring.Server{}, fmt.Errorf("server %q has a bad port", s)
		}
	}
	return ring.Server{Addr: addr, Weight: w, Name: name}, nil
}

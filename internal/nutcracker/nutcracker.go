// Package nutcracker reads twemproxy's configuration file, nutcracker.yml,
// with nutcracker 0.5.0's directives, defaults and checks, so that corvid's
// proxy and tools accept an existing file unchanged. A Config is plain data.
package nutcracker

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
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

// Parse parses the text of a nutcracker.yml with nutcracker's rules: one
// YAML document of plain block mappings and sequences (no anchors,
// aliases, tags, flow collections or document markers), a mapping of pool
// names to pools, each a mapping of directives to values. A value is read
// as the text it is written with, quoted or not: numbers are decimal
// digits, booleans true or false, and an empty value is refused. A pool's
// one sequence is its servers.
func Parse(data []byte) (*Config, error) {
	top, err := document(data)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	seen := map[string]bool{}
	listens := map[string]string{}
	routes := map[string]*yaml.Node{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, body := top.Content[i], top.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("nutcracker: line %d: a pool's name must be a plain value", key.Line)
		}
		name := key.Value
		if name == "" {
			return nil, fmt.Errorf("nutcracker: line %d: a pool's name is empty", key.Line)
		}
		if seen[name] {
			return nil, fmt.Errorf("nutcracker: pool %q defined twice", name)
		}
		seen[name] = true
		p, listen, err := parsePool(name, body)
		if err != nil {
			return nil, err
		}
		// nutcracker compares listen as written.
		if other, ok := listens[listen]; ok {
			return nil, fmt.Errorf("nutcracker: pools %q and %q have the same listen address %q", other, name, listen)
		}
		listens[listen] = name
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

// document returns the mapping of pools of the file's one YAML document,
// checked as nutcracker checks the file before it reads it.
func document(data []byte) (*yaml.Node, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.HasPrefix(line, "%") {
			return nil, fmt.Errorf("nutcracker: line %d: YAML directives are not allowed", i+1)
		}
		for _, m := range []string{"---", "..."} {
			if line == m || strings.HasPrefix(line, m+" ") || strings.HasPrefix(line, m+"\t") {
				return nil, fmt.Errorf("nutcracker: line %d: document markers (%s) are not allowed: the file is one document", i+1, m)
			}
		}
	}
	if strings.IndexByte(text, 0) >= 0 {
		return nil, errors.New("nutcracker: the file holds a NUL byte")
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("nutcracker: %w", err)
		}
		docs = append(docs, &doc)
	}
	if len(docs) == 0 || len(docs[0].Content) == 0 {
		return nil, errors.New("nutcracker: no pools")
	}
	if len(docs) > 1 {
		return nil, fmt.Errorf("nutcracker: the file holds %d YAML documents, not one", len(docs))
	}
	top := docs[0].Content[0]
	if err := plain(top, 0); err != nil {
		return nil, err
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("nutcracker: line %d: want a mapping of pool names to pools", top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if err := poolShape(top.Content[i].Value, top.Content[i+1]); err != nil {
			return nil, err
		}
	}
	return top, nil
}

// plain refuses what nutcracker's YAML tokens leave out: anchors,
// aliases, tags and flow collections, but under a pool's route: (corvid's
// extension, in mcrouter's notation). depth is n's: 0 for the file's
// mapping, 1 for a pool, 2 for a directive's value.
func plain(n *yaml.Node, depth int) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return fmt.Errorf("nutcracker: line %d: aliases (*%s) are not allowed", n.Line, n.Value)
	case n.Anchor != "":
		return fmt.Errorf("nutcracker: line %d: anchors (&%s) are not allowed", n.Line, n.Anchor)
	case n.Style&yaml.TaggedStyle != 0:
		return fmt.Errorf("nutcracker: line %d: tags (%s) are not allowed", n.Line, n.Tag)
	case n.Style&yaml.FlowStyle != 0:
		return fmt.Errorf("nutcracker: line %d: flow collections ([...], {...}) are not allowed", n.Line)
	}
	for i, c := range n.Content {
		if depth == 1 && n.Kind == yaml.MappingNode && i%2 == 1 && n.Content[i-1].Value == "route" {
			continue
		}
		if err := plain(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// poolShape checks a pool's shape as nutcracker does: a mapping of
// directives to plain values, and one sequence of plain values.
func poolShape(name string, body *yaml.Node) error {
	fail := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("nutcracker: pool %q: line %d: %s", name, n.Line, fmt.Sprintf(format, args...))
	}
	if body.Kind != yaml.MappingNode {
		return fail(body, "want a mapping of directives")
	}
	seq := false
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fail(k, "a directive's name must be a plain value")
		}
		if k.Value == "route" {
			seq = true // a pool that routes needs no servers
			continue
		}
		switch v.Kind {
		case yaml.ScalarNode:
		case yaml.SequenceNode:
			if seq {
				return fail(v, "more than one list (only servers is one)")
			}
			seq = true
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return fail(e, "the items of %q must be plain values", k.Value)
				}
			}
		default:
			return fail(v, "the value of %q is nested too deep", k.Value)
		}
	}
	if !seq {
		return fail(body, "directive \"servers\" is missing or empty")
	}
	return nil
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

// hashNames are the hashes nutcracker offers, which ring has too.
var hashNames = map[string]bool{
	"one_at_a_time": true, "md5": true, "crc16": true, "crc32": true, "crc32a": true, "fnv1_64": true,
	"fnv1a_64": true, "fnv1_32": true, "fnv1a_32": true, "hsieh": true, "murmur": true, "jenkins": true,
}

// parsePool reads a pool, whose shape is checked, and returns it with its
// listen as written.
func parsePool(name string, body *yaml.Node) (Pool, string, error) {
	fail := func(format string, args ...any) (Pool, string, error) {
		return Pool{}, "", fmt.Errorf("nutcracker: pool %q: %s", name, fmt.Sprintf(format, args...))
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
	set := map[string]bool{}
	var listen, redisAuth string
	nums := map[string]int{}
	hasRoute := false
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		key := k.Value
		if key == "route" {
			hasRoute = true
			continue
		}
		values := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			values = v.Content
		}
		for _, n := range values {
			val := n.Value
			if !directives[key] {
				return fail("line %d: unknown directive %q", k.Line, key)
			}
			if val == "" {
				return fail("line %d: directive %q has an empty value", n.Line, key)
			}
			if key != "servers" {
				if set[key] {
					return fail("line %d: directive %q is a duplicate", n.Line, key)
				}
				set[key] = true
			}
			switch key {
			case "listen":
				addr, perm, err := parseListen(val)
				if err != nil {
					return fail("line %d: %v", n.Line, err)
				}
				listen, p.Listen, p.ListenPerm = val, addr, perm
			case "hash":
				if !hashNames[val] {
					return fail("line %d: unknown hash %q", n.Line, val)
				}
				p.Hash = val
			case "hash_tag":
				if len(val) != 2 {
					return fail("line %d: hash_tag %q is not two characters", n.Line, val)
				}
				p.HashTag = val
			case "distribution":
				switch ring.Distribution(val) {
				case ring.Ketama, ring.Modula, ring.Random:
				default:
					return fail("line %d: unknown distribution %q", n.Line, val)
				}
				p.Distribution = val
			case "timeout", "backlog", "client_connections", "redis_db", "server_connections",
				"server_retry_timeout", "server_failure_limit":
				num := Atoi(val)
				if num < 0 {
					return fail("line %d: %s %q is not a number (decimal digits, at most %d)", n.Line, key, val, math.MaxInt32)
				}
				nums[key] = num
			case "preconnect", "tcpkeepalive", "redis", "auto_eject_hosts":
				if val != "true" && val != "false" {
					return fail("line %d: %s %q is not true or false", n.Line, key, val)
				}
				b := val == "true"
				switch key {
				case "preconnect":
					p.Preconnect = b
				case "tcpkeepalive":
					p.TCPKeepalive = b
				case "redis":
					p.Redis = b
				default:
					p.AutoEjectHosts = b
				}
			case "redis_auth":
				redisAuth = val
			case "servers":
				srv, err := ParseServer(val)
				if err != nil {
					return fail("line %d: %v", n.Line, err)
				}
				p.Servers = append(p.Servers, srv)
			}
		}
	}
	if !set["listen"] {
		return fail("directive \"listen\" is missing")
	}
	if v, ok := nums["timeout"]; ok {
		p.Timeout = time.Duration(v) * time.Millisecond
	}
	setInt(&p.Backlog, nums, "backlog")
	setInt(&p.ClientConnections, nums, "client_connections")
	setInt(&p.RedisDB, nums, "redis_db")
	setInt(&p.ServerFailureLimit, nums, "server_failure_limit")
	if v, ok := nums["server_connections"]; ok {
		if v == 0 {
			return fail("server_connections must be at least 1")
		}
		p.ServerConnections = v
	}
	if v, ok := nums["server_retry_timeout"]; ok {
		p.ServerRetryTimeout = time.Duration(v) * time.Millisecond
	}
	if redisAuth != "" && !p.Redis {
		return fail("redis_auth is only valid for a redis pool")
	}
	p.RedisAuth = redisAuth
	if len(p.Servers) == 0 && !hasRoute {
		return fail("directive \"servers\" is missing or empty")
	}
	names := map[string]bool{}
	for _, srv := range p.Servers {
		if names[srv.KetamaName()] {
			return fail("server name %q is used twice", srv.KetamaName())
		}
		names[srv.KetamaName()] = true
	}
	return p, listen, nil
}

func setInt(dst *int, nums map[string]int, key string) {
	if v, ok := nums[key]; ok {
		*dst = v
	}
}

// Atoi reads a number as nutcracker does, in its file and on its command
// line: decimal digits only, in a C int that wraps around on overflow,
// and -1 for anything else, an empty string or a negative result.
func Atoi(s string) int {
	if s == "" {
		return -1
	}
	var n int32
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int32(s[i]-'0')
	}
	if n < 0 {
		return -1
	}
	return int(n)
}

// unixPathMax is the longest Unix socket path nutcracker takes (sun_path
// holds 108 bytes with its NUL).
const unixPathMax = 107

// parseListen reads listen as nutcracker does: "/path [perm]", the
// permission in octal as C's strtol reads it (what follows its digits
// ignored), or "host:port" split at the last colon. It returns the
// address to listen on: the path, or host and port joined. Port 0 (any
// free port) is taken, for programs that embed the proxy; nutcracker, and
// corvid proxy, refuse it.
func parseListen(s string) (string, os.FileMode, error) {
	if s[0] == '/' {
		i := strings.LastIndexByte(s, ' ')
		if i < 0 {
			if len(s) > unixPathMax {
				return "", 0, fmt.Errorf("listen %q: the socket path is longer than %d bytes", s, unixPathMax)
			}
			return s, 0, nil
		}
		path := s[:i]
		perm, ok := strtolOctal(s[i+1:])
		if !ok || uint32(perm) > 0o777 {
			return "", 0, fmt.Errorf("listen %q has an invalid file permission in \"socket_path permission\"", s)
		}
		if len(path) > unixPathMax {
			return "", 0, fmt.Errorf("listen %q: the socket path is longer than %d bytes", s, unixPathMax)
		}
		return path, os.FileMode(uint32(perm)), nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("listen %q is not \"host:port\"", s)
	}
	port := Atoi(s[i+1:])
	if port < 0 || port > math.MaxUint16 {
		return "", 0, fmt.Errorf("listen %q has an invalid port", s)
	}
	return net.JoinHostPort(s[:i], strconv.Itoa(port)), 0, nil
}

// strtolOctal is C's strtol(s, NULL, 8): leading white space, a sign,
// octal digits up to the first other byte (none: 0); ok is false when the
// number overflows a long.
func strtolOctal(s string) (int64, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var n uint64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '7'; i++ {
		n = n*8 + uint64(s[i]-'0')
		if n > math.MaxInt64+1 || (!neg && n > math.MaxInt64) {
			return 0, false
		}
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// ParseServer parses a servers entry as nutcracker does, from its end:
// "host:port:weight [name]", or "/path/to/socket:weight [name]". The name
// is what follows the last space. Without one, a server's name on the
// continuum is nutcracker's: the host when the port is 11211, else
// "host:port" as written ("/path:" for a socket). Name holds it when it is
// given or is not Addr: it is also the server's name in the stats.
func ParseServer(s string) (ring.Server, error) {
	bad := func(what string) (ring.Server, error) {
		return ring.Server{}, fmt.Errorf("server %q %s", s, what)
	}
	if s == "" {
		return bad("is empty")
	}
	rest, name, named := s, "", false
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		rest, name, named = rest[:i], rest[i+1:], true
		if name == "" {
			// nutcracker names such a server with nothing.
			return bad("has an empty name (it ends with a space)")
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad("is not \"host:port:weight [name]\" or \"/path/unix_socket:weight [name]\"")
	}
	addr, weightText := rest[:i], rest[i+1:]
	unix := s[0] == '/'
	portText := ""
	if j := strings.LastIndexByte(addr, ':'); j >= 0 {
		if unix {
			return bad("is not \"/path/unix_socket:weight [name]\" (a colon in the path)")
		}
		addr, portText = addr[:j], addr[j+1:]
	} else if !unix {
		return bad("is not \"host:port:weight [name]\"")
	}
	weight := Atoi(weightText)
	if weight < 0 {
		return bad("has an invalid weight")
	}
	if weight == 0 {
		return bad("has a zero weight")
	}
	srv := ring.Server{Addr: addr, Weight: weight}
	ketama := addr + ":" + portText
	if !unix {
		port := Atoi(portText)
		if port < 1 || port > math.MaxUint16 {
			return bad("has an invalid port")
		}
		if addr == "" {
			// nutcracker takes it and never reaches it (an empty host
			// does not resolve); Go would dial this host.
			return bad("has no host")
		}
		srv.Addr = net.JoinHostPort(addr, strconv.Itoa(port))
		if port == 11211 {
			ketama = addr
		}
	}
	if named {
		ketama = name
	}
	if named || ketama != srv.Addr {
		srv.Name = ketama
	}
	return srv, nil
}

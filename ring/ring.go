package ring

import (
	"crypto/md5"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Distribution names how a Ring spreads keys over its servers.
type Distribution string

const (
	// Ketama is twemproxy's consistent hashing: each server gets 160
	// points scaled by its share of the total weight, at the MD5 of
	// "NAME-i"; a key goes to the first point at or after its hash.
	Ketama Distribution = "ketama"
	// Modula is hash modulo the total weight, each server taking as many
	// consecutive slots as its weight.
	Modula Distribution = "modula"
	// Random sends every request to a random server; as in twemproxy,
	// weights are ignored.
	Random Distribution = "random"
	// LibmemcachedKetama is libmemcached's MEMCACHED_BEHAVIOR_KETAMA: 100
	// points per server at the key hash of "HOST[:PORT]-i" when all weights
	// are 1, else (libmemcached switches when a server has weight > 1) 160
	// points scaled by weight at the MD5 of "HOST[:PORT]-i", four points
	// per digest. Keys are hashed with Config.Hash. Server names are
	// ignored.
	LibmemcachedKetama Distribution = "libmemcached_ketama"
	// LibmemcachedKetamaWeighted is LibmemcachedKetama with
	// MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED set, weighted even when all
	// weights are 1.
	LibmemcachedKetamaWeighted Distribution = "libmemcached_ketama_weighted"
)

// Distributions lists the distributions New accepts.
func Distributions() []Distribution {
	return []Distribution{Ketama, Modula, Random, LibmemcachedKetama, LibmemcachedKetamaWeighted}
}

// DefaultHash is the hash New uses when Config.Hash is empty, as
// twemproxy does; libmemcached's ketama defaults to "md5".
const DefaultHash = "fnv1a_64"

// defaultPort is left out of a server's ketama name, as twemproxy and
// libmemcached do for backward compatibility.
const defaultPort = "11211"

// Server is one member of a pool.
type Server struct {
	// Addr is "host:port" (or a Unix socket path).
	Addr string `json:"addr"`
	// Weight is the server's relative share; 0 means 1.
	Weight int `json:"weight"`
	// Name, when set, replaces the address in the ketama point names, so
	// a server can move to another address and keep its keys.
	Name string `json:"name,omitempty"`
}

// KetamaName is the string twemproxy hashes for the server's points: the
// Name when set, else the host alone when the port is 11211, else Addr.
func (s Server) KetamaName() string {
	if s.Name != "" {
		return s.Name
	}
	return hostKey(s.Addr)
}

func hostKey(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port == defaultPort {
		return host
	}
	return addr
}

func (s Server) weight() int { return max(s.Weight, 1) }

// Config describes a Ring. The zero value of each field is its default.
type Config struct {
	Servers []Server
	// Hash is a name from HashNames. When empty it is DefaultHash, or
	// what libmemcached then uses: "one_at_a_time" (its default) for
	// LibmemcachedKetama and "md5" for LibmemcachedKetamaWeighted (which
	// MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED selects). Set "md5" for the usual
	// libmemcached ketama setup (MEMCACHED_BEHAVIOR_HASH = MEMCACHED_HASH_MD5,
	// as pylibmc's "ketama" behaviour does).
	Hash string
	// Distribution defaults to Ketama.
	Distribution Distribution
	// HashTag, when two characters such as "{}", makes only the part of a
	// key between the first opening character and the next closing one
	// count for placement, when that part is not empty.
	HashTag string
}

// Ring maps keys to the index of a server in Config.Servers. It is
// read-only after New and safe for concurrent use.
type Ring struct {
	servers []Server
	dist    Distribution
	hash    Hash
	hasTag  bool
	tag     [2]byte
	points  []point // Ketama and LibmemcachedKetama*, sorted by value
	slots   []int32 // Modula: a server index per unit of weight; Random: per server
}

// point is one place on a ketama continuum.
type point struct {
	value  uint32
	server int32
}

// New builds a Ring.
func New(cfg Config) (*Ring, error) {
	if len(cfg.Servers) == 0 {
		return nil, ErrNoServers
	}
	r := &Ring{servers: slices.Clone(cfg.Servers), dist: cfg.Distribution}
	if r.dist == "" {
		r.dist = Ketama
	}
	name := cfg.Hash
	if name == "" {
		switch r.dist {
		case LibmemcachedKetama:
			name = "one_at_a_time" // libmemcached's default key hash
		case LibmemcachedKetamaWeighted:
			name = "md5" // MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED sets it
		default:
			name = DefaultHash
		}
	}
	h, err := HashNamed(name)
	if err != nil {
		return nil, err
	}
	r.hash = h
	switch len(cfg.HashTag) {
	case 0:
	case 2:
		r.hasTag = true
		r.tag = [2]byte{cfg.HashTag[0], cfg.HashTag[1]}
	default:
		return nil, &unknownError{what: "hash tag (want two characters)", name: cfg.HashTag}
	}
	switch r.dist {
	case Ketama:
		r.points = twemproxyContinuum(r.servers)
	case LibmemcachedKetama, LibmemcachedKetamaWeighted:
		weighted := r.dist == LibmemcachedKetamaWeighted
		for _, s := range r.servers {
			weighted = weighted || s.Weight > 1
		}
		r.points = libmemcachedContinuum(r.servers, weighted, h)
	case Modula, Random:
		for _, i := range nameOrder(r.servers) {
			n := r.servers[i].weight()
			if r.dist == Random {
				n = 1
			}
			for range n {
				r.slots = append(r.slots, int32(i))
			}
		}
	default:
		return nil, &unknownError{what: "distribution", name: string(r.dist)}
	}
	return r, nil
}

// Servers returns the servers the Ring was built with; the caller must not
// modify them.
func (r *Ring) Servers() []Server { return r.servers }

// Distribution returns the Ring's distribution.
func (r *Ring) Distribution() Distribution { return r.dist }

// HashKey returns the hash Pick uses for key: that of its hash-tag part
// when a tag applies, and 0 for an empty key, as twemproxy does.
func (r *Ring) HashKey(key []byte) uint32 {
	if r.hasTag {
		key = tagged(key, r.tag)
	}
	if len(key) == 0 || len(r.servers) == 1 {
		return 0
	}
	return r.hash(key)
}

// tagged returns the part of key between the hash tag's characters, or key
// when there is no such non-empty part.
func tagged(key []byte, tag [2]byte) []byte {
	for i, b := range key {
		if b != tag[0] {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == tag[1] {
				if j-i > 1 {
					return key[i+1 : j]
				}
				return key
			}
		}
		return key
	}
	return key
}

// Pick returns the index in Config.Servers of the server for key.
func (r *Ring) Pick(key []byte) int {
	return r.PickHash(r.HashKey(key))
}

// PickString is Pick for a string key, without copying it.
func (r *Ring) PickString(key string) int {
	return r.Pick(unsafe.Slice(unsafe.StringData(key), len(key)))
}

// PickHash returns the server for a key hash computed by HashKey.
func (r *Ring) PickHash(h uint32) int {
	switch r.dist {
	case Modula:
		return int(r.slots[h%uint32(len(r.slots))])
	case Random:
		return int(r.slots[rand.IntN(len(r.slots))])
	}
	return int(r.points[search(r.points, h)].server)
}

// nameOrder returns the server indices in the order twemproxy keeps its
// servers after validating a pool: sorted by ketama name, shorter names
// first. Modula and random slots follow that order, not the listed one.
func nameOrder(servers []Server) []int {
	order := make([]int, len(servers))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		na, nb := servers[a].KetamaName(), servers[b].KetamaName()
		if len(na) != len(nb) {
			return len(na) - len(nb)
		}
		return strings.Compare(na, nb)
	})
	return order
}

// PickN appends to dst up to n distinct servers for key: the one Pick
// returns, then the next distinct servers along the continuum (the next
// slots for modula, random ones for random). Replicated keys are stored on
// them.
func (r *Ring) PickN(dst []int, key []byte, n int) []int {
	n = min(n, len(r.servers))
	h := r.HashKey(key)
	has := func(i int) bool {
		for _, x := range dst {
			if x == i {
				return true
			}
		}
		return false
	}
	start := len(dst)
	switch r.dist {
	case Modula, Random:
		first := int(h % uint32(len(r.slots)))
		if r.dist == Random {
			first = rand.IntN(len(r.slots))
		}
		for i := 0; i < len(r.slots) && len(dst)-start < n; i++ {
			if s := int(r.slots[(first+i)%len(r.slots)]); !has(s) {
				dst = append(dst, s)
			}
		}
	default:
		first := search(r.points, h)
		for i := 0; i < len(r.points) && len(dst)-start < n; i++ {
			if s := int(r.points[(first+i)%len(r.points)].server); !has(s) {
				dst = append(dst, s)
			}
		}
	}
	return dst
}

// search returns the first point whose value is at least h, wrapping to
// the first point past the end.
func search(points []point, h uint32) int {
	lo, hi := 0, len(points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if points[mid].value < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(points) {
		return 0
	}
	return lo
}

// ketamaPoints is the number of points of a server of average weight.
const ketamaPoints = 160

// weightedPoints is how many points a server of weight w gets out of a
// pool of n servers of total weight total, computed in single precision
// with the rounding twemproxy and libmemcached get from C.
func weightedPoints(w, total, n int) int {
	pct := float32(w) / float32(total)
	x := float32(float32(pct*ketamaPoints)/4) * float32(n)
	return int(math.Floor(float64(float32(float64(x)+0.0000000001)))) * 4
}

func sortPoints(points []point) []point {
	slices.SortFunc(points, func(a, b point) int {
		if a.value != b.value {
			if a.value < b.value {
				return -1
			}
			return 1
		}
		return int(a.server - b.server)
	})
	return points
}

// twemproxyContinuum lays out nutcracker's ketama points.
func twemproxyContinuum(servers []Server) []point {
	total := 0
	for _, s := range servers {
		total += s.weight()
	}
	var points []point
	var buf []byte
	for i, s := range servers {
		n := weightedPoints(s.weight(), total, len(servers))
		points = appendDigestPoints(points, buf, s.KetamaName(), n/4, int32(i))
	}
	return sortPoints(points)
}

// appendDigestPoints appends four points for each of the MD5 digests of
// "name-0" … "name-(count-1)".
func appendDigestPoints(points []point, buf []byte, name string, count int, server int32) []point {
	for j := range count {
		buf = strconv.AppendInt(append(append(buf[:0], name...), '-'), int64(j), 10)
		sum := md5.Sum(buf)
		for x := range 4 {
			v := uint32(sum[4*x]) | uint32(sum[4*x+1])<<8 | uint32(sum[4*x+2])<<16 | uint32(sum[4*x+3])<<24
			points = append(points, point{value: v, server: server})
		}
	}
	return points
}

// libmemcachedContinuum lays out libmemcached's ketama points.
func libmemcachedContinuum(servers []Server, weighted bool, h Hash) []point {
	var points []point
	var buf []byte
	if weighted {
		total := 0
		for _, s := range servers {
			total += s.weight()
		}
		for i, s := range servers {
			n := weightedPoints(s.weight(), total, len(servers))
			points = appendDigestPoints(points, buf, hostKey(s.Addr), n/4, int32(i))
		}
		return sortPoints(points)
	}
	const perServer = 100
	for i, s := range servers {
		name := hostKey(s.Addr)
		for j := range perServer {
			buf = strconv.AppendInt(append(append(buf[:0], name...), '-'), int64(j), 10)
			points = append(points, point{value: h(buf), server: int32(i)})
		}
	}
	return sortPoints(points)
}

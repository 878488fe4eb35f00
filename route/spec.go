// Package route describes corvid's route trees: mcrouter's route handles
// composed over pools of servers. A tree is read from an mcrouter JSON
// config (corvid router) or from the route: of a nutcracker.yml pool
// (corvid proxy), checked, and run by package proxy; this package holds
// the description both formats produce, so that one engine serves both.
//
// A Config is plain data: it is built once per load or reload, checked by
// Check, and never modified after it is handed to the proxy.
package route

import "time"

// Config is a loaded route configuration.
type Config struct {
	// Pools are the server pools routes refer to, by name.
	Pools map[string]*Pool
	// Root is the route every request takes (mcrouter's "route", or the
	// route of the default routing prefix of "routes").
	Root *Handle
	// Source names where the configuration came from (a file name, or
	// InlineSource), for admin gets and log lines.
	Source string
}

// InlineSource is the Source of a configuration given as a string.
const InlineSource = "--config-str"

// Pool is a named set of servers.
type Pool struct {
	Name    string
	Servers []Server
	// Timeout is how long a request may wait for a server's reply
	// (mcrouter's server_timeout); zero means the engine's default.
	Timeout time.Duration
	// Path is where the pool was defined ("pools.A"), for errors.
	Path string
}

// Server is one server of a pool.
type Server struct {
	// Addr is host:port (mcrouter's "host:port[:protocol]" with the
	// protocol dropped), or a unix socket path.
	Addr string
	// Weight is the server's weight for weighted hashes (1 when unset).
	Weight float64
	// Name, when set, is what a twemproxy ketama continuum hashes in
	// place of Addr (nutcracker.yml's "host:port:weight name").
	Name string
}

// Hash says how a PoolRoute or HashRoute maps a key to one of its
// destinations.
type Hash struct {
	// Func is mcrouter's hash_func: "Ch3" (the default), "Crc32",
	// "WeightedCh3", or a twemproxy hash and distribution of package
	// ring written "ketama/md5", "modula/fnv1a_64", ... (corvid's
	// extension).
	Func string
	// Salt is appended to the key before hashing (mcrouter's salt).
	Salt string
	// Weights are WeightedCh3's weights, one per destination in [0,1].
	Weights []float64
	// HashTag is twemproxy's hash_tag (two bytes, or empty): only the
	// part of the key between them is hashed. Used by ring's hashes.
	HashTag string
}

// Type names a route handle, as mcrouter spells it.
type Type string

// The route handles corvid runs.
const (
	PoolRoute              Type = "PoolRoute"
	HashRoute              Type = "HashRoute"
	PrefixSelectorRoute    Type = "PrefixSelectorRoute"
	OperationSelectorRoute Type = "OperationSelectorRoute"
	FailoverRoute          Type = "FailoverRoute"
	MissFailoverRoute      Type = "MissFailoverRoute"
	WarmUpRoute            Type = "WarmUpRoute"
	AllSyncRoute           Type = "AllSyncRoute"
	AllAsyncRoute          Type = "AllAsyncRoute"
	AllInitialRoute        Type = "AllInitialRoute"
	AllMajorityRoute       Type = "AllMajorityRoute"
	AllFastestRoute        Type = "AllFastestRoute"
	RandomRoute            Type = "RandomRoute"
	LatestRoute            Type = "LatestRoute"
	NullRoute              Type = "NullRoute"
	ErrorRoute             Type = "ErrorRoute"
	RateLimitRoute         Type = "RateLimitRoute"
)

// Handle is one node of a route tree. Which fields are meaningful depends
// on Type; the others are zero.
type Handle struct {
	Type Type
	// Path is where the node was defined, as the config writes it
	// ("route.children[1]", "route.policies.a:"), for errors and stats.
	Path string
	// Name is a stable label for per-route counters: the node's "name"
	// property when the config gives one, else Path.
	Name string

	// PoolRoute: the pool, its hash, and the shadows that receive a copy
	// of its requests.
	Pool    string
	Hash    Hash // also HashRoute's
	Shadows []Shadow

	// Children: HashRoute, FailoverRoute, MissFailoverRoute, the All*
	// routes, RandomRoute and LatestRoute. RateLimitRoute's target is
	// Children[0].
	Children []*Handle

	// PrefixSelectorRoute: key prefix -> route (the longest prefix
	// wins) and Wildcard for keys no prefix matches.
	// OperationSelectorRoute: operation -> route (mcrouter's operation
	// names: "get", "set", "delete", "add", "replace", "append",
	// "prepend", "cas", "incr", "decr", "touch", "gat", ...) and
	// Default (its default_policy) for the others.
	Policies map[string]*Handle
	Wildcard *Handle
	Default  *Handle

	// WarmUpRoute: gets go to Cold; a miss there is looked up in Warm,
	// and a hit is returned and added to Cold with Exptime (0: the
	// warm item's own remaining time, asked of Warm with a meta get as
	// mcrouter asks with a metaget; nothing is added when Warm no
	// longer has the item).
	// Other operations go to Cold.
	Cold, Warm *Handle
	Exptime    int32

	// LatestRoute: how many children after the first are tried on
	// error (mcrouter's failover_count, default 5).
	FailoverCount int

	// ErrorRoute: the reply's text ("SERVER_ERROR <Response>"); empty
	// means mcrouter's default.
	Response string

	// RateLimitRoute: tokens per second and burst per operation class
	// ("gets", "sets", "deletes"); zero means unlimited.
	Rates map[string]Rate
}

// Shadow sends a copy of some of a PoolRoute's requests to another
// route; the copy's reply is dropped. A request is shadowed when its
// destination's index in the pool is within IndexRange and its key's
// hash fraction is within KeyFractionRange (both inclusive). mcrouter's
// config writes index_range as [start, end), end excluded: the loader
// stores [start, end-1], and [0, -1] (nothing) when it is absent, as
// mcrouter shadows nothing without it.
type Shadow struct {
	Target           *Handle
	IndexRange       [2]int
	KeyFractionRange [2]float64
	Path             string
}

// Rate is a token bucket.
type Rate struct {
	PerSecond float64
	Burst     float64
}

package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/corvidcache/corvid/ring"
)

// Server is one memcached server: "host:port" (or a Unix socket path),
// its weight and an optional ketama name.
type Server = ring.Server

// FailurePolicy says what happens to keys of a server marked dead.
type FailurePolicy int

const (
	// FailError answers ErrServerDead (wrapped in a ServerError naming the
	// server) for keys of a dead server.
	FailError FailurePolicy = iota
	// FailRehash places the keys of a dead server on the live ones, as
	// twemproxy's auto_eject_hosts does, until the server is retried. Keys
	// of live servers stay where they are (with ketama that is also where
	// twemproxy leaves them; its modula reshuffles them).
	FailRehash
)

// Replica is a namespace rule: keys starting with Prefix are written to
// Copies servers and read from one of them, chosen at random, so that a
// hot key's reads spread over several servers. Each copy has its own CAS
// unique, so CompareAndSwap, and MetaSet with a CAS, of such a key are
// refused (ErrReplicatedCAS).
type Replica struct {
	Prefix string
	Copies int
}

// Defaults for the zero values of Config.
const (
	DefaultHash           = "murmur"
	DefaultTimeout        = time.Second
	DefaultMaxIdleConns   = 4
	DefaultIdleTimeout    = time.Minute
	DefaultCompressFlag   = 2 // Cache::Memcached::Fast's F_COMPRESS
	DefaultCompressRatio  = 0.8
	DefaultRetryTimeout   = 30 * time.Second
	DefaultFailureTimeout = 10 * time.Second
	maxKeyLen             = 250
	defaultReadBufferSize = 16 << 10
	hashedKeyPrefix       = "h:"
)

// Config configures a Client. The zero value of every field but Servers is
// a documented default.
type Config struct {
	Servers []Server
	// Distribution and Hash choose the key placement (see package ring):
	// ketama with murmur (MurmurHash2 as twemproxy computes it) by
	// default, which spreads keys well and costs a fraction of md5. To
	// share a pool with twemproxy or libmemcached, set what they use:
	// twemproxy's default is fnv1a_64 (a 32-bit FNV whose multiplier,
	// 0x1b3, clusters similar keys), libmemcached's ketama usually md5.
	Distribution ring.Distribution
	Hash         string
	HashTag      string

	// Timeout bounds each operation's network I/O (DefaultTimeout);
	// a context deadline that comes sooner wins.
	Timeout time.Duration
	// DialTimeout bounds connecting; Timeout when zero.
	DialTimeout time.Duration
	// DialContext, when set, makes the connections instead of a
	// net.Dialer: for TLS (a tls.Dialer's DialContext), a proxy, or a
	// test. Its context ends at the caller's deadline or DialTimeout,
	// whichever comes first. network is "tcp", or "unix" for an address
	// starting with "/".
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, when set, makes TCP connections speak TLS with this
	// configuration (a memcached started with -Z); Unix sockets stay
	// plain, as memcached serves them. When ServerName is empty it is
	// the server's host. Ignored when DialContext is set.
	TLS *tls.Config
	// MaxIdleConns is how many idle connections are kept per server
	// (DefaultMaxIdleConns).
	MaxIdleConns int
	// IdleTimeout closes a connection that was idle this long instead of
	// reusing it (DefaultIdleTimeout; negative: never), before a server,
	// a firewall or a NAT drops it unannounced. Idle connections are also
	// checked for a close by the server before each reuse.
	IdleTimeout time.Duration

	// Namespace is prepended to every key on the wire. Like a key it may
	// not hold spaces or control characters, and it must leave room for a
	// key within the 250 bytes the server accepts (with HashLongKeys, room
	// for a hashed key: at most 205 bytes).
	Namespace string
	// HashNamespace makes the namespace part of the key that is hashed for
	// placement (libmemcached's MEMCACHED_BEHAVIOR_HASH_WITH_PREFIX_KEY);
	// by default only the key itself decides the server.
	HashNamespace bool
	// HashLongKeys replaces keys that are too long or hold spaces or
	// control characters by "h:" and the base64 of their SHA-256 instead of
	// rejecting them.
	HashLongKeys bool

	// CompressThreshold, when positive, gzips values at least this long and
	// stores them with CompressFlag set when that saves at least
	// 1-CompressRatio of the size, as Cache::Memcached::Fast does; Append
	// and Prepend are then refused (ErrAppendCompressed). When zero, values
	// are stored as they are, but values read with CompressFlag set are
	// still uncompressed. When negative, compression is off altogether:
	// CompressFlag means nothing and values are returned as stored.
	CompressThreshold int
	// CompressFlag is the flag bit that marks a compressed value
	// (DefaultCompressFlag); it is cleared in the Flags a read returns.
	// Unless CompressThreshold is negative the bit is reserved: storing an
	// Item whose Flags use it fails with ErrCompressFlag.
	CompressFlag uint32
	// CompressRatio is DefaultCompressRatio when zero.
	CompressRatio float64
	// MaxUncompressedSize bounds what a compressed value may uncompress to
	// (DefaultMaxUncompressedSize when zero), since a small value can
	// expand a thousandfold: reading a larger one fails with
	// ErrValueTooLarge, and so does storing a value that would be
	// compressed and is larger.
	MaxUncompressedSize int

	// MaxFailures, when positive, marks a server dead after that many
	// failures (connection errors and timeouts) within FailureTimeout, for
	// RetryTimeout. OnDead says what happens to its keys meanwhile.
	MaxFailures    int
	FailureTimeout time.Duration
	RetryTimeout   time.Duration
	OnDead         FailurePolicy

	// Replicas are the replicated-key rules; the first matching prefix
	// applies.
	Replicas []Replica
}

// Client talks to a pool of memcached servers. It is safe for concurrent
// use by multiple goroutines.
type Client struct {
	cfg     Config
	ring    *ring.Ring
	servers []*node
	ns      string
	closed  atomic.Bool

	liveMu sync.Mutex               // serialises rebuilds of live
	live   atomic.Pointer[liveRing] // placement over the live servers, when some are dead
	ndead  atomic.Int32

	now func() time.Time // the clock of idle timeouts; a test may replace it
}

// liveRing places keys over the servers that are not dead.
type liveRing struct {
	ring  *ring.Ring
	index []int // live ring index -> Client.servers index
}

// node is one server's connection pool and failure state.
type node struct {
	addr string
	idx  int // in Client.servers
	c    *Client

	mu   sync.Mutex // guards free
	free []*conn

	failMu      sync.Mutex // guards failures, windowStart
	failures    int
	windowStart time.Time
	deadUntil   atomic.Int64 // unix nanoseconds; 0 when alive
}

// New returns a Client for cfg. It does not connect until first use. A
// Namespace that is not valid in a key fails with ErrMalformedKey.
func New(cfg Config) (*Client, error) {
	if len(cfg.Servers) == 0 {
		return nil, ErrNoServers
	}
	if err := checkNamespace(cfg.Namespace, cfg.HashLongKeys); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = cfg.Timeout
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = DefaultMaxIdleConns
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.CompressFlag == 0 {
		cfg.CompressFlag = DefaultCompressFlag
	}
	if cfg.CompressRatio <= 0 {
		cfg.CompressRatio = DefaultCompressRatio
	}
	if cfg.MaxUncompressedSize <= 0 {
		cfg.MaxUncompressedSize = DefaultMaxUncompressedSize
	}
	if cfg.RetryTimeout <= 0 {
		cfg.RetryTimeout = DefaultRetryTimeout
	}
	if cfg.FailureTimeout <= 0 {
		cfg.FailureTimeout = DefaultFailureTimeout
	}
	if cfg.Hash == "" {
		cfg.Hash = DefaultHash
	}
	r, err := ring.New(ring.Config{Servers: cfg.Servers, Distribution: cfg.Distribution, Hash: cfg.Hash, HashTag: cfg.HashTag})
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, ring: r, ns: cfg.Namespace, now: time.Now}
	for i, s := range cfg.Servers {
		c.servers = append(c.servers, &node{addr: s.Addr, idx: i, c: c})
	}
	return c, nil
}

// Close closes the idle connections; connections in use close when their
// operation ends. Operations after Close fail with ErrClosed.
func (c *Client) Close() error {
	c.closed.Store(true)
	for _, s := range c.servers {
		s.closeIdle()
	}
	return nil
}

// Ping checks that every server, dead ones included, answers a "version"
// request. The error names each server that does not: it joins one
// *ServerError per failing server.
func (c *Client) Ping(ctx context.Context) error {
	errs := make([]error, len(c.servers))
	var wg sync.WaitGroup
	for i, s := range c.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.do(ctx, s, "version", func(cn *conn) error {
				cn.w = append(cn.w[:0], "version\r\n"...)
				if err := cn.flush(); err != nil {
					return err
				}
				line, err := cn.readLine()
				if err != nil {
					return err
				}
				if !bytes.HasPrefix(line, []byte("VERSION ")) {
					return replyError(line, nothingPending)
				}
				return nil
			})
			var se *ServerError
			if err != nil && !errors.As(err, &se) {
				err = &ServerError{Addr: s.addr, Op: "ping", Err: err}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bytesOf views s as bytes without copying; the bytes must not be changed.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// validKey reports whether k can go on the wire as a key.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if b := k[i]; b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

// hashedKeyLen is the length of a hashed key without the namespace.
var hashedKeyLen = len(hashedKeyPrefix) + base64.RawURLEncoding.EncodedLen(sha256.Size)

// checkNamespace reports whether ns can prefix keys: it is a valid key
// and leaves room for one, or for a hashed key when hashing is on.
func checkNamespace(ns string, hashing bool) error {
	if ns == "" {
		return nil
	}
	room := 1
	if hashing {
		room = hashedKeyLen
	}
	if !validKey(ns) || len(ns)+room > maxKeyLen {
		return fmt.Errorf("client: invalid namespace %q: %w", ns, ErrMalformedKey)
	}
	return nil
}

// wireKey returns the key as sent (namespace included), or
// ErrMalformedKey. Every request builds its keys here (or, for keys that
// passed here, with appendWireKey), so nothing over 250 bytes is written.
func (c *Client) wireKey(key string) (string, error) {
	if validKey(key) && len(c.ns)+len(key) <= maxKeyLen {
		if c.ns == "" {
			return key, nil
		}
		return c.ns + key, nil
	}
	if !c.cfg.HashLongKeys || len(key) == 0 {
		return "", ErrMalformedKey
	}
	sum := sha256.Sum256(bytesOf(key))
	wire := c.ns + hashedKeyPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
	if len(wire) > maxKeyLen { // New keeps the namespace short enough
		return "", ErrMalformedKey
	}
	return wire, nil
}

// placementKey is the part of the wire key that decides the server.
func (c *Client) placementKey(wire string) string {
	if c.cfg.HashNamespace {
		return wire
	}
	return wire[len(c.ns):]
}

package server

import (
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/corvidcache/corvid/storage"
)

// Version is the memcached protocol version corvid answers to "version"
// and reports in "stats": clients compare it to enable features.
const Version = "1.6.18"

// ZeroBacklog is Config.Backlog for a backlog of 0 (-b 0), Config's zero
// being the default. The backlog is only reported (tcp_backlog).
const ZeroBacklog = math.MinInt64

// DefaultShutdownGrace is Config.ShutdownGrace's default.
const DefaultShutdownGrace = 5 * time.Second

// Config configures a Server. The zero value of each field means the
// memcached default noted beside it.
type Config struct {
	// TCPAddrs are the host:port addresses to listen on for TCP; none
	// means no TCP listener. Port 0 picks a free port (see Server.Addrs).
	TCPAddrs []string
	// UnixPath is a Unix socket to listen on (-s); UnixMask its access
	// mask (-a), default 0700.
	UnixPath string
	UnixMask os.FileMode

	// MaxConns is memcached's -c, default 1024, counted as memcached
	// counts it: it is a limit on descriptors, of which memcached keeps
	// 6 + 4 per thread (Threads) + 1 per listening socket (Threads per
	// UDP socket) for itself. A client that would take the last one is
	// refused with "ERROR Too many open connections" (counted in
	// rejected_connections); with NoMaxConnsFast it is served, and the
	// server then accepts nothing more until a connection closes
	// (listen_disabled_num), clients waiting meanwhile in the listen
	// backlog. New refuses a MaxConns memcached would not start with
	// (ErrMaxConnsTooLow).
	MaxConns int
	// NoMaxConnsFast is memcached's -o no_maxconns_fast (also implied by
	// -o no_modern).
	NoMaxConnsFast bool

	IdleTimeout time.Duration // -o idle_timeout; 0 = never
	// TailRepairTime is -o tail_repair_time, reported in "stats settings".
	// memcached frees an item found at an LRU tail held by a reader for
	// longer, taking the reference for a leaked one; corvid's references
	// are released when their reply is written or its connection closes,
	// so none leaks, and the setting changes nothing. 0 = off.
	TailRepairTime  time.Duration
	EnableShutdown  bool // -A: allow the "shutdown" command
	DisableFlushAll bool // -F
	DisableDumping  bool // -X: refuse "lru_crawler metadump"
	DisableWatch    bool // -W: refuse "watch"
	Threads         int  // -t; reported as "threads"; default 4
	Backlog         int  // -b; default 1024, ZeroBacklog for 0
	Verbosity       int  // -v count
	DetailEnabled   bool // -D given or "stats detail on"
	PrefixDelimiter byte // -D; default ':'

	// SlabAutomoveFreeRatio is -o slab_automove_freeratio as given, any
	// number, reported in "stats settings" (memcached uses it only with
	// extstore); nil reports Storage's.
	SlabAutomoveFreeRatio *float64

	// ReqsPerEvent is how many requests a connection serves before it
	// lets the others run, counted in conn_yields (-R); default 20. As
	// memcached, it takes a negative number (shown as given in stats
	// settings), which serves as 1.
	ReqsPerEvent int

	// HotKeySample makes the hot-key tracker ("stats hotkeys") look at one
	// request in HotKeySample on each connection; default 16, negative
	// turns tracking off. HotKeyHalfLife is how fast its counts fade;
	// default one minute.
	HotKeySample   int
	HotKeyHalfLife time.Duration

	// KlogFile turns on twemcache's command log (-o klog_file): one line
	// per sampled command, appended to this file by a background writer
	// and reopened by ReopenLogs. KlogSample logs one command in
	// KlogSample on each connection (-o klog_sample); default 1, all.
	KlogFile   string
	KlogSample int

	// WatcherLogBufSize is the bytes of log lines a watcher ("watch") may
	// have waiting to be written, those being written included, before
	// further lines are skipped (-o watcher_logbuf_size, in kilobytes);
	// default 256 KiB. Negative means none: every line is skipped
	// (memcached's watcher_logbuf_size=0).
	WatcherLogBufSize int
	// WorkerLogBufSize is memcached's per-thread log buffer (-o
	// worker_logbuf_size, in kilobytes), reported in stats settings;
	// default 64 KiB, negative for 0. corvid formats a log line straight
	// into the buffers of the watchers that want it, so it has no such
	// buffer and drops no line there (log_worker_dropped stays 0).
	WorkerLogBufSize int

	// ReadBufMemLimit bounds the bytes of the connections' read buffers
	// (-o read_buf_mem_limit, in megabytes there). corvid reads a value
	// whole into the read buffer before storing it, so a buffer grows
	// with a large value or a long multi-get line; past its first 16 KiB
	// it grows only while the total stays within the limit, and a
	// request that needs more is answered "SERVER_ERROR out of memory
	// reading request" and its connection closed, as memcached does when
	// it cannot grow a read buffer (counted as read_buf_oom). 0 (the
	// default) means 64 MiB, or 8 times the item size limit when that is
	// more; negative means no limit (memcached's 0).
	ReadBufMemLimit int64

	// MaxGetKeys bounds the keys of one get, gets, gat or gats line: a
	// longer line is answered "SERVER_ERROR out of memory writing get
	// response", with nothing else, and counted in response_obj_oom.
	// memcached builds a line's replies whole before it writes them, one
	// response object per key, from memory its read_buf_mem_limit bounds
	// (see MemcachedMaxGetKeys); corvid writes them as they come and needs
	// no such bound, but keeps memcached's where its limit is given. 0
	// means no bound; negative refuses every such line.
	MaxGetKeys int

	// WriteBufMemLimit bounds the bytes of the write buffers of
	// connections whose client does not take its replies (-o
	// write_buf_mem_limit, in megabytes there; corvid's own). A reply is
	// copied into its connection's write buffer, except the value of an
	// item larger than slab_chunk_max, which a TCP or Unix connection
	// writes from the item's own chunks (pinned until written, within the
	// cache's memory limit) and which counts nowhere here; a buffer counts from the
	// moment the socket is full until it drains, and a connection whose
	// blocked buffer would take the total past the limit is closed
	// (counted as write_buf_oom). 0 (the default) means 64 MiB, or 8 times
	// the item size limit when that is more; negative means no limit.
	WriteBufMemLimit int64

	// EventLoops selects how TCP and Unix connections are served. 0 (the
	// default) gives each connection its own goroutine. N > 0 serves them
	// from N epoll event loops, each one goroutine handling many
	// connections inline, as memcached's worker threads do; connections
	// are assigned round-robin. Linux only: elsewhere it is ignored.
	EventLoops int

	// Protocol is the protocol connections speak (-B): ProtoAuto (the
	// default) picks binary or ASCII from each connection's first byte.
	Protocol Protocol
	// SASL (-S) requires binary-protocol clients to authenticate with
	// SASL PLAIN before any other command. It implies ProtoBinary when
	// Protocol is ProtoAuto; New refuses it with ProtoASCII, and with
	// UDPAddrs (a UDP socket's clients would share one authentication).
	SASL bool
	// SASLPasswordDB is the file of "user:password" lines SASL PLAIN
	// checks credentials against, read by New; default: the file named by
	// the environment variable MEMCACHED_SASL_PWDB, as memcached. Without
	// one, every SASL authentication fails.
	SASLPasswordDB string
	// AuthFile (-Y) is a file of "user:password" lines. With it, ASCII
	// clients must authenticate first (memcached's ASCII authentication).
	// It implies ProtoASCII when Protocol is ProtoAuto; New refuses it
	// with ProtoBinary, whose clients could not authenticate.
	AuthFile string
	// UDPAddrs are the host:port addresses to serve UDP on (-U); none
	// means no UDP listener.
	UDPAddrs []string

	// TLS, when set, serves the TCP listeners with TLS (-Z), except those
	// it names in PlainAddrs; UDP and Unix sockets stay plain. TLS
	// connections are served one goroutine each, also with EventLoops,
	// so that a handshake never holds up an event loop.
	TLS *TLSConfig

	// Settings reported by "stats settings" that only describe how the
	// process was started.
	TCPPort   int    // as given with -p (0 when TCP is off)
	UDPPort   int    // -U
	Interface string // -l, "NULL" when unset

	Storage storage.Config

	// SnapshotFile (-e) is where the cache is saved when the server stops
	// and restored from when it starts; empty disables both.
	SnapshotFile string

	// ShutdownGrace is how long a stopping server lets its connections
	// write the replies to the requests they had already read. Those
	// still writing when it ends (clients that do not read) are closed,
	// so that the snapshot is saved and Close returns. Default 5 seconds;
	// negative closes them at once.
	ShutdownGrace time.Duration

	// Unsupported lists the options that were accepted for compatibility
	// but are not acted on yet (reported in logs).
	Unsupported []string

	// Logger receives errors and, with Verbosity, per-connection events.
	// Default: discard.
	Logger *slog.Logger
}

// Protocol selects the protocol of a server's connections.
type Protocol uint8

const (
	ProtoAuto   Protocol = iota // binary when the first byte is 0x80, else ASCII
	ProtoASCII                  // text and meta protocol only
	ProtoBinary                 // binary protocol only
)

// String returns the name memcached uses in "stats settings".
func (p Protocol) String() string {
	switch p {
	case ProtoASCII:
		return "ascii"
	case ProtoBinary:
		return "binary"
	}
	return "auto-negotiate"
}

// reqsPerEvent is ReqsPerEvent as served.
func (c *Config) reqsPerEvent() int { return max(c.ReqsPerEvent, 1) }

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 1024
	}
	if c.UnixMask == 0 {
		c.UnixMask = 0o700
	}
	if c.Threads == 0 {
		c.Threads = 4
	}
	if c.ReqsPerEvent == 0 {
		c.ReqsPerEvent = 20
	}
	if c.Backlog == 0 {
		c.Backlog = 1024
	}
	if c.HotKeySample == 0 {
		c.HotKeySample = 16
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.HotKeyHalfLife <= 0 {
		c.HotKeyHalfLife = time.Minute
	}
	if c.PrefixDelimiter == 0 {
		c.PrefixDelimiter = ':'
	}
	if c.Interface == "" {
		c.Interface = "NULL"
	}
	if c.SASL && c.SASLPasswordDB == "" {
		c.SASLPasswordDB = os.Getenv("MEMCACHED_SASL_PWDB")
	}
	if c.SASL && c.Protocol == ProtoAuto {
		c.Protocol = ProtoBinary // as memcached -S without -B
	}
	if c.AuthFile != "" && c.Protocol == ProtoAuto {
		c.Protocol = ProtoASCII // as memcached -Y without -B
	}
	if c.ReadBufMemLimit == 0 {
		c.ReadBufMemLimit = max(defaultReadBufMemLimit, 8*int64(c.itemSizeMax()))
	}
	if c.WriteBufMemLimit == 0 {
		c.WriteBufMemLimit = max(defaultWriteBufMemLimit, 8*int64(c.itemSizeMax()))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// itemSizeMax is the item size limit the cache has: Storage.ItemSizeMax,
// or storage's default when that is 0.
func (c *Config) itemSizeMax() int {
	if c.Storage.ItemSizeMax == 0 {
		return 1 << 20 // storage's default
	}
	return c.Storage.ItemSizeMax
}

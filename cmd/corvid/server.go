package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

func serverVersion() string { return server.Version }

// serverOptions holds memcached's command line as given.
type serverOptions struct {
	// slabSizes is -o slab_sizes, read once the other options are.
	slabSizes        *string
	port, udpPort    int
	unixSocket       string
	unixMask         string
	enableShutdown   bool
	listen           []string
	daemon           bool
	enableCoredumps  bool
	user             string
	memoryLimit      string
	disableEvictions bool
	connLimit        int
	lockMemory       bool
	verbose          int
	license, showVer bool
	pidFile          string
	factor           float64
	minSize          int
	largePages       bool
	delimiter        string
	threads          int
	eventLoops       int
	reqsPerEvent     string
	disableCAS       bool
	backlog          int
	protocol         string
	maxItemSize      string
	sasl             bool
	disableFlushAll  bool
	disableDumping   bool
	disableWatch     bool
	authFile         string
	flags            *pflag.FlagSet // the parsed command line, to tell given flags from defaults
	memoryFile       string
	ssl              bool
	tls              server.TLSConfig // the ssl_* suboptions, used with -Z
	extended         []string
	given            []givenOption // every option set, in command-line order
	extPathGiven     bool          // an -o ext_path has been read
	daemonChild      bool
	admin            string
	shutdownGrace    time.Duration
}

func newServerCommand() *cobra.Command { return serverCommand(&serverOptions{}) }

// serverCommand returns the server command with its flags bound to o.
func serverCommand(o *serverOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server [memcached options]",
		Short: "Run a memcached-compatible cache server (same command line as memcached)",
		Long: `corvid server is a drop-in memcached: it takes memcached's command line,
speaks its text, meta and binary protocols and answers its stats under the
same names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.showVer {
				fmt.Fprintf(cmd.OutOrStdout(), "memcached %s (corvid %s)\n", server.Version, version)
				return nil
			}
			if o.license {
				fmt.Fprintln(cmd.OutOrStdout(), "corvid is distributed under its repository's license.")
				return nil
			}
			return runServer(cmd.Context(), o, cmd.Flags())
		},
	}
	f := cmd.Flags()
	o.flags = f
	f.SortFlags = false
	cIntVarP(f, &o.port, "port", "p", 11211, "TCP port to listen on (0 = off)")
	cIntVarP(f, &o.udpPort, "udp-port", "U", 0, "UDP port to listen on (0 = off)")
	f.StringVarP(&o.unixSocket, "unix-socket", "s", "", "UNIX socket to listen on (disables network support)")
	f.StringVarP(&o.unixMask, "unix-mask", "a", "700", "access mask for the UNIX socket, in octal")
	f.BoolVarP(&o.enableShutdown, "enable-shutdown", "A", false, `enable the ascii "shutdown" command`)
	f.StringArrayVarP(&o.listen, "listen", "l", nil, "interface(s) to listen on (default: all)")
	f.BoolVarP(&o.daemon, "daemon", "d", false, "run as a daemon")
	f.BoolVarP(&o.enableCoredumps, "enable-coredumps", "r", false, "accepted, no effect (memcached: maximize core file limit)")
	f.StringVarP(&o.user, "user", "u", "", "assume the identity of this user (when run as root)")
	f.StringVarP(&o.memoryLimit, "memory-limit", "m", "64", "item memory in megabytes")
	f.BoolVarP(&o.disableEvictions, "disable-evictions", "M", false, "return an error when memory is exhausted instead of evicting")
	cIntVarP(f, &o.connLimit, "conn-limit", "c", 1024, "max simultaneous connections")
	f.BoolVarP(&o.lockMemory, "lock-memory", "k", false, "accepted, no effect (memcached: lock down all paged memory)")
	f.CountVarP(&o.verbose, "verbose", "v", "verbose (-vv: very verbose, -vvv: extremely verbose)")
	f.BoolVarP(&o.license, "license", "i", false, "print the license and exit")
	f.BoolVarP(&o.showVer, "version", "V", false, "print the version and exit")
	f.StringVarP(&o.pidFile, "pidfile", "P", "", "save the PID in this file")
	o.factor = 1.25
	f.VarP(cFloat{&o.factor}, "slab-growth-factor", "f", "chunk size growth factor")
	cIntVarP(f, &o.minSize, "slab-min-size", "n", 48, "min space used for key+value+flags")
	f.BoolVarP(&o.largePages, "enable-largepages", "L", false, "use large memory pages (the default; -o no_hugepages turns them off)")
	f.StringVarP(&o.delimiter, "prefix-delimiter", "D", "", "delimiter between key prefixes and IDs for per-prefix stats (enables them)")
	cIntVarP(f, &o.threads, "threads", "t", 4, "number of worker threads (sets GOMAXPROCS)")
	f.IntVar(&o.eventLoops, "event-loops", -1, "serve connections from this many epoll event loops (Linux): -1 one per -t thread, 0 a goroutine per connection")
	f.StringVarP(&o.reqsPerEvent, "max-reqs-per-event", "R", "20", "requests a connection is served before the others get a turn")
	f.BoolVarP(&o.disableCAS, "disable-cas", "C", false, "disable use of CAS")
	cIntVarP(f, &o.backlog, "listen-backlog", "b", 1024, "listen backlog queue limit: accepted and reported (stats settings tcp_backlog), not applied")
	f.StringVarP(&o.protocol, "protocol", "B", "auto", "protocol: ascii, binary or auto")
	f.StringVarP(&o.maxItemSize, "max-item-size", "I", "1m", "max item size (min 1k, max 1024m)")
	f.BoolVarP(&o.sasl, "enable-sasl", "S", false, "turn on SASL authentication")
	f.BoolVarP(&o.disableFlushAll, "disable-flush-all", "F", false, "disable the flush_all command")
	f.BoolVarP(&o.disableDumping, "disable-dumping", "X", false, "disable stats cachedump and lru_crawler metadump")
	f.BoolVarP(&o.disableWatch, "disable-watch", "W", false, "disable watch commands")
	f.StringVarP(&o.authFile, "auth-file", "Y", "", "ASCII authentication file (user:pass lines)")
	f.StringVarP(&o.memoryFile, "memory-file", "e", "", "save the cache to this file on shutdown (SIGTERM, SIGINT, SIGUSR1) and restore it at start")
	f.BoolVarP(&o.ssl, "enable-ssl", "Z", false, "enable TLS/SSL on the TCP listeners (-o ssl_chain_cert=,ssl_key=; -l notls:<ip>:<port> opts a listener out)")
	f.StringArrayVarP(&o.extended, "extended", "o", nil, "comma separated list of extended options")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", server.DefaultShutdownGrace, "on SIGTERM, SIGINT, SIGUSR1 or shutdown, how long connections may take to write their last replies before they are closed (0: none)")
	f.StringVar(&o.admin, "admin", "", "serve the admin HTTP port (Prometheus metrics at /metrics, a dashboard at /, profiles under /debug/pprof/) on this host:port")
	f.BoolVar(&o.daemonChild, "daemon-child", false, "internal: this process is the daemon started by -d")
	f.MarkHidden("daemon-child")
	f.VisitAll(func(fl *pflag.Flag) { fl.Value = orderedValue{fl.Value, fl.Name, &o.given} })
	return cmd
}

// cInt is an integer option read as memcached's atoi reads it: white
// space, a sign and decimal digits up to the first other byte, in a C int
// ("010" is 10, "12abc" 12, "abc" 0), where pflag's would read 010 as
// octal and refuse the rest.
type cInt struct{ p *int }

func (v cInt) Set(s string) error { *v.p = int(leadingInt(s)); return nil }
func (v cInt) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v cInt) Type() string { return "int" }

// cIntVarP defines an integer option read as atoi reads it.
func cIntVarP(f *pflag.FlagSet, p *int, name, short string, def int, usage string) {
	*p = def
	f.VarP(cInt{p}, name, short, usage)
}

// cFloat is a number option read as memcached's atof reads it: the longest
// prefix that is a number ("1.5x" is 1.5, "x" 0).
type cFloat struct{ p *float64 }

func (v cFloat) Set(s string) error { *v.p = leadingFloat(s); return nil }
func (v cFloat) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}
func (v cFloat) Type() string { return "float" }

// givenOption is an option as the command line set it.
type givenOption struct{ name, value string }

// orderedValue records each option as it is set, so that config can check
// the options in command-line order, as memcached's getopt loop does.
type orderedValue struct {
	pflag.Value
	name  string
	given *[]givenOption
}

func (v orderedValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return err
	}
	*v.given = append(*v.given, givenOption{v.name, s})
	return nil
}

// checkGiven makes the checks memcached makes as it reads an option, with
// its messages, and applies the suboptions of an -o. Numbers are read as
// memcached's atoi and atof read them.
func (o *serverOptions) checkGiven(g givenOption, cfg *server.Config, sc *storage.Config, chunkMax *chunkMaxOption) error {
	switch g.name {
	case "conn-limit":
		if leadingInt(g.value) <= 0 {
			return usageError("Maximum connections must be greater than 0")
		}
	case "threads":
		n := leadingInt(g.value)
		if n <= 0 {
			return usageError("Number of threads must be greater than 0")
		}
		if n > 64 {
			fmt.Fprint(os.Stderr, "WARNING: Setting a high number of workerthreads is not recommended.\n"+
				" Set this value to the number of cores in your machine or less.\n")
		}
	case "max-reqs-per-event":
		// A negative number is taken (and serves as 1).
		if leadingInt(g.value) == 0 {
			return usageError("Number of requests per event must be greater than 0")
		}
	case "slab-growth-factor":
		if leadingFloat(g.value) <= 1.0 {
			return usageError("Factor must be greater than 1")
		}
	case "slab-min-size":
		if leadingInt(g.value) <= 0 {
			return usageError("Chunk size must be greater than 0")
		}
	case "prefix-delimiter":
		if g.value == "" {
			return usageError("No delimiter specified")
		}
	case "protocol":
		switch g.value {
		case "auto", "ascii", "binary":
		default:
			return invalidProtocol(g.value)
		}
	case "extended":
		return o.applyExtended(g.value, cfg, sc, chunkMax)
	}
	return nil
}

// invalidProtocol is memcached's refusal of a -B it does not know.
func invalidProtocol(p string) error {
	return exitError{fmt.Sprintf("Invalid value for binding protocol: %s\n -- should be one of auto, binary, or ascii", p), exUsage}
}

// usageError is a command-line error; corvid prints it and exits non-zero
// as memcached does.
type usageError string

// exitError is an error corvid exits with a given status for, as
// memcached does with its sysexits codes.
type exitError struct {
	msg  string
	code int
}

func (e exitError) Error() string { return e.msg }

// ExitCode is the process's exit status.
func (e exitError) ExitCode() int { return e.code }

// memcached's exit statuses (sysexits.h).
const (
	exUsage = 64 // EX_USAGE: a setting memcached refuses after reading its options
	exOSErr = 71 // EX_OSERR: a listener that cannot be set up
)

func (e usageError) Error() string { return string(e) }

// isCSpace reports whether b is white space to C's isspace.
func isCSpace(b byte) bool {
	return b == ' ' || b >= '\t' && b <= '\r'
}

// cDigits reads s as C's strto* functions read a base-10 number: leading
// white space, a sign, digits. It returns the digits' value (overflow set
// past 64 bits), whether the sign was minus, and the index after the
// digits, or 0 when there are none.
func cDigits(s string) (mag uint64, neg bool, end int, overflow bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			overflow = true
		} else if !overflow {
			mag = mag*10 + d
		}
	}
	if i == start {
		return 0, false, 0, false
	}
	return mag, neg, i, overflow
}

// strtol is C's strtol in base 10 with a 64-bit long: the value,
// saturated when out of range (rangeErr), and the index after the number
// (0 when there is none).
func strtol(s string) (v int64, end int, rangeErr bool) {
	mag, neg, end, overflow := cDigits(s)
	switch {
	case !neg && (overflow || mag > math.MaxInt64):
		return math.MaxInt64, end, true
	case neg && (overflow || mag > 1<<63):
		return math.MinInt64, end, true
	case neg:
		return int64(-mag), end, false
	}
	return int64(mag), end, false
}

// leadingInt reads s as C's atoi does, memcached's reading of most numeric
// options: strtol's value cast to a 32-bit int, so that "5x" is 5, garbage
// 0, and a number past 32 bits keeps its low 32 bits (4294967296 is 0).
func leadingInt(s string) int64 {
	v, _, _ := strtol(s)
	return int64(int32(v))
}

// safeStrtol reads a number as memcached's safe_strtol: strtol's number,
// followed by nothing or white space, stored in 32 bits (the protocol's
// reader, which memcached uses for both).
func safeStrtol(s string) (int32, bool) { return protocol.ParseInt32([]byte(s)) }

// safeStrtoul reads a number as memcached's safe_strtoul: strtoul's
// number, followed by nothing or white space, refused when it is negative
// past the signed range, stored in 32 bits (4294967296 is 0).
func safeStrtoul(s string) (uint32, bool) { return protocol.ParseUint32([]byte(s)) }

// safeStrtod reads a number as memcached's safe_strtod: the longest
// prefix strtod takes (after white space), followed by nothing or white
// space.
func safeStrtod(s string) (float64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	for n := len(t); n > 0; n-- {
		if f, err := strconv.ParseFloat(t[:n], 64); err == nil || errors.Is(err, strconv.ErrRange) {
			if n < len(t) && !isCSpace(t[n]) || errors.Is(err, strconv.ErrRange) {
				return 0, false
			}
			return f, true
		}
	}
	return 0, false
}

// initialMalloced reads memcached's test hook T_MEMD_INITIAL_MALLOC (slabs.c,
// honoured by release builds too): the bytes of the memory limit taken
// before the first page. As memcached's safe_strtoll, it takes a decimal
// number followed by nothing or by white space and ignores anything else.
// memcached would take a negative number as a huge size_t, leaving no room
// for pages; corvid takes it as the whole of any limit it can address.
func initialMalloced(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	i := strings.IndexAny(s, " \t\n\v\f\r")
	if i >= 0 {
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return 0
	case n < 0:
		return storage.MaxMemoryLimit
	}
	return n
}

// leadingFloat parses the longest prefix of s that is a number, as C's
// atof does, or returns 0.
func leadingFloat(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	for n := len(s); n > 0; n-- {
		if f, err := strconv.ParseFloat(s[:n], 64); err == nil {
			return f
		}
	}
	return 0
}

// parseSize reads memcached's -I argument as memcached does: atoi of the
// number, times 1024 for a k suffix or 1048576 for an m, in a C int, so that
// garbage reads as 0 and an overflow wraps (-I 2048m is refused as less than
// 1024 bytes).
func parseSize(s string) int64 {
	unit := int32(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		unit, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		unit, s = 1<<20, s[:len(s)-1]
	}
	return int64(int32(leadingInt(s)) * unit)
}

// config turns the command line into a server configuration, rejecting
// what memcached rejects with memcached's message: first the checks
// memcached makes as it reads each option, in the order they were given
// (so that the first bad one is the one reported, and an option given
// twice is checked each time), then those it makes once every option is
// read, in its order.
func (o *serverOptions) config() (server.Config, error) {
	cfg := server.Config{
		UnixPath:        o.unixSocket,
		EnableShutdown:  o.enableShutdown,
		DisableFlushAll: o.disableFlushAll,
		DisableDumping:  o.disableDumping,
		DisableWatch:    o.disableWatch,
		MaxConns:        o.connLimit,
		Threads:         o.threads,
		EventLoops:      o.eventLoops,
		ReqsPerEvent:    int(leadingInt(o.reqsPerEvent)),
		Backlog:         int(int32(o.backlog)), // memcached's atoi
		Verbosity:       o.verbose,
		TCPPort:         o.port,
		UDPPort:         o.udpPort,
	}
	if cfg.EventLoops < 0 {
		cfg.EventLoops = o.threads
	}
	if cfg.Backlog == 0 {
		cfg.Backlog = server.ZeroBacklog
	}
	cfg.ShutdownGrace = o.shutdownGrace
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = -1 // none; Config's zero is the default
	}
	sc := storage.Config{
		MemoryLimit:  leadingInt(o.memoryLimit) << 20,
		ChunkSizeMin: o.minSize,
		GrowthFactor: o.factor,
		NoEvict:      o.disableEvictions,
		DisableCAS:   o.disableCAS,
	}
	sc.InitialMalloced = initialMalloced(os.Getenv("T_MEMD_INITIAL_MALLOC"))
	sc.SlabChunkMax = storage.SlabPageSize / 2
	var chunkMax chunkMaxOption
	for _, g := range o.given {
		if err := o.checkGiven(g, &cfg, &sc, &chunkMax); err != nil {
			return cfg, err
		}
	}
	// The same checks on the final values, for options set otherwise
	// than on a command line.
	switch {
	case o.connLimit <= 0:
		return cfg, usageError("Maximum connections must be greater than 0")
	case o.threads <= 0:
		return cfg, usageError("Number of threads must be greater than 0")
	case cfg.ReqsPerEvent == 0:
		return cfg, usageError("Number of requests per event must be greater than 0")
	case o.factor <= 1.0:
		return cfg, usageError("Factor must be greater than 1")
	case o.minSize <= 0:
		// memcached refuses only 0 (README: a negative -n too).
		return cfg, usageError("Chunk size must be greater than 0")
	}
	switch o.protocol {
	case "auto":
	case "ascii":
		cfg.Protocol = server.ProtoASCII
	case "binary":
		cfg.Protocol = server.ProtoBinary
	default:
		return cfg, invalidProtocol(o.protocol)
	}
	mask, err := strconv.ParseUint(o.unixMask, 8, 32)
	if err != nil {
		return cfg, usageError(fmt.Sprintf("Invalid unix mask: %q", o.unixMask))
	}
	cfg.UnixMask = os.FileMode(mask)
	if o.delimiter != "" {
		cfg.PrefixDelimiter = o.delimiter[0]
		cfg.DetailEnabled = true
	}
	if o.largePages {
		sc.NoHugePages = false
	}

	// memcached's checks once its options are read, in its order.
	if err := checkItemSize(&sc, parseSize(o.maxItemSize), chunkMax.set); err != nil {
		return cfg, err
	}
	if o.slabSizes != nil {
		// As memcached, once slab_chunk_max and -n are final; an empty
		// list is refused without a word.
		if *o.slabSizes == "" {
			return cfg, exitError{"", exUsage}
		}
		sc.SlabSizes = parseSlabSizes(*o.slabSizes)
		if err := storage.CheckSlabSizes(sc.SlabSizes, sc.ChunkSizeMin, sc.SlabChunkMax); err != nil {
			return cfg, exitError{err.Error(), exUsage}
		}
	}
	if orDefault(sc.HotLRUPct, 20)+orDefault(sc.WarmLRUPct, 40) > 80 {
		return cfg, exitError{"hot_lru_pct + warm_lru_pct cannot be more than 80% combined", exUsage}
	}
	if sc.TempLRU && sc.NoLRUMaintainer {
		return cfg, exitError{"temporary_ttl requires lru_maintainer to be enabled", exUsage}
	}
	// memcached's rules: SASL is binary only and without UDP; ASCII
	// authentication is ASCII only.
	cfg.SASL, cfg.AuthFile = o.sasl, o.authFile
	protocolGiven := o.flags != nil && o.flags.Changed("protocol")
	if cfg.SASL {
		if !protocolGiven {
			cfg.Protocol = server.ProtoBinary
		} else if cfg.Protocol != server.ProtoBinary {
			return cfg, exitError{"ERROR: You cannot allow the ASCII protocol while using SASL.", exUsage}
		}
		if o.udpPort > 0 {
			return cfg, exitError{"ERROR: Cannot enable UDP while using binary SASL authentication.", exUsage}
		}
	} else if cfg.AuthFile != "" {
		// memcached refuses -B auto as well: a negotiated connection
		// would not authenticate.
		if !protocolGiven {
			cfg.Protocol = server.ProtoASCII
		} else if cfg.Protocol != server.ProtoASCII {
			return cfg, exitError{"ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.", exUsage}
		}
		if o.udpPort > 0 {
			return cfg, exitError{"Cannot use UDP with ascii authentication enabled (-U 0 to disable)", exUsage}
		}
	}
	cfg.Storage = sc

	// As memcached, -U without -p moves the TCP port to the UDP one, and
	// a TCP port past 65535 is refused.
	port := o.port
	if o.udpPort != 0 && o.flags != nil && o.flags.Changed("udp-port") && !o.flags.Changed("port") {
		port = o.udpPort
	}
	if port > 65535 {
		return cfg, exitError{fmt.Sprintf("ERROR: Invalid port number %d.", port), exUsage}
	}
	cfg.TCPPort = port
	if o.ssl {
		// memcached checks its TCP port setting, which -s leaves as it is.
		if port <= 0 {
			return cfg, exitError{"ERROR: You cannot enable SSL without a TCP port.", exUsage}
		}
		t := o.tls
		cfg.TLS = &t
	}
	// memcached: -s disables network support; -p 0 with -U serves UDP
	// only.
	if o.unixSocket == "" && (port > 0 || o.udpPort > 0) {
		hosts := []string{""}
		if len(o.listen) > 0 {
			hosts = hosts[:0]
			for _, l := range o.listen {
				hosts = append(hosts, strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == ' ' || r == ';' })...)
			}
			cfg.Interface = strings.Join(o.listen, ",")
		}
		for _, h := range hosts {
			l, err := parseListen(h, port, o.udpPort, o.ssl)
			if err != nil {
				return cfg, err
			}
			if l.tcpPort > 0 {
				addr := net.JoinHostPort(l.host, strconv.Itoa(l.tcpPort))
				cfg.TCPAddrs = append(cfg.TCPAddrs, addr)
				if l.notls {
					cfg.TLS.PlainAddrs = append(cfg.TLS.PlainAddrs, addr)
				}
			}
			if l.udpPort > 0 {
				cfg.UDPAddrs = append(cfg.UDPAddrs, net.JoinHostPort(l.host, strconv.Itoa(l.udpPort)))
			}
		}
	}
	if o.unixSocket == "" && port <= 0 && o.udpPort <= 0 {
		return cfg, usageError("no listener: give -p PORT, -U PORT or -s SOCKET")
	}
	return cfg, nil
}

// checkLockPower refuses, as memcached does when it starts its threads, a
// hash table no larger than memcached's table of item locks for that many
// threads: memcached takes 2^10 locks for one or two threads, 2^11 for
// three, 2^12 for four, 2^13 up to ten, 2^14 up to twenty and 2^15 beyond,
// and needs more buckets than locks. corvid's index has locks of its own,
// but a command line memcached refuses is refused.
func checkLockPower(threads, hashPower int) error {
	power := 15
	switch {
	case threads < 3:
		power = 10
	case threads < 4:
		power = 11
	case threads < 5:
		power = 12
	case threads <= 10:
		power = 13
	case threads <= 20:
		power = 14
	}
	if power >= hashPower {
		return exitError{fmt.Sprintf("Hash table power size (%d) cannot be equal to or less than item lock table (%d)\n"+
			"Item lock table grows with `-t N` (worker threadcount)\n"+
			"Hash table grows with `-o hashpower=N` ", hashPower, power), 1}
	}
	return nil
}

// checkPrealloc refuses, as memcached refuses with -L, a memory limit too
// small for a page of every slab class: memcached takes its whole limit at
// start and gives each class a page of it (a class's chunks, without page
// moves and with slab_chunk_max a whole page). corvid takes no memory
// before items need it, but a command line memcached refuses is refused.
func checkPrealloc(sc storage.Config, table []storage.ClassInfo) error {
	var need int64
	for _, c := range table {
		if sc.NoSlabReassign && sc.SlabChunkMax == storage.SlabPageSize {
			need += int64(c.ChunkSize) * int64(c.ChunksPerPage)
		} else {
			need += storage.SlabPageSize
		}
		if need > sc.MemoryLimit {
			return exitError{fmt.Sprintf("Error while preallocating slab memory!\n"+
				"If using -L or other prealloc options, max memory must be at least %d megabytes.", len(table)), 1}
		}
	}
	return nil
}

// hugePageSize is the size of the system's huge pages (Hugepagesize in
// /proc/meminfo), or 0.
func hugePageSize() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Hugepagesize:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// parseSlabSizes reads -o slab_sizes as memcached does: sizes separated by
// dashes (empty ones skipped), each read as safe_strtoul reads it (white
// space around it taken); one it cannot read is 0, which the checks refuse.
func parseSlabSizes(s string) []int {
	sizes := []int{}
	for _, f := range strings.Split(s, "-") {
		if f == "" {
			continue
		}
		n, _ := safeStrtoul(f)
		sizes = append(sizes, int(n))
	}
	return sizes
}

// chunkMaxOption is what -o slab_chunk_max left for the checks that follow
// the options: whether it was given.
type chunkMaxOption struct {
	set bool
}

// checkItemSize sets sc.ItemSizeMax to -I and checks it and slab_chunk_max
// as memcached does after reading its options, in the same order, with its
// messages and exit status: -I of at least 1024 bytes, at most half of -m
// and at most 1 GiB; slab_chunk_max back to half a page for an -I over 1 MiB
// unless given; then slab_chunk_max no larger than -I, dividing -I and
// dividing the page size. memcached dies of a division by zero on a
// slab_chunk_max of 0 and builds a nonsensical class table from a negative
// one: corvid refuses both.
func checkItemSize(sc *storage.Config, itemMax int64, chunkMaxSet bool) error {
	switch {
	case itemMax < 1024:
		return exitError{"Item max size cannot be less than 1024 bytes.", exUsage}
	case itemMax > sc.MemoryLimit/2:
		return exitError{"Cannot set item size limit higher than 1/2 of memory max.", exUsage}
	case itemMax > 1<<30:
		return exitError{"Cannot set item size limit higher than a gigabyte.", exUsage}
	}
	sc.ItemSizeMax = int(itemMax)
	if itemMax > 1<<20 && !chunkMaxSet {
		sc.SlabChunkMax = storage.SlabPageSize / 2
	}
	cm := sc.SlabChunkMax
	switch {
	case cm > sc.ItemSizeMax:
		return exitError{fmt.Sprintf("slab_chunk_max (bytes: %d) cannot be larger than -I (item_size_max %d)", cm, sc.ItemSizeMax), exUsage}
	case cm <= 0 || sc.ItemSizeMax%cm != 0:
		return exitError{fmt.Sprintf("-I (item_size_max: %d) must be evenly divisible by slab_chunk_max (bytes: %d)", sc.ItemSizeMax, cm), exUsage}
	case storage.SlabPageSize%cm != 0:
		return exitError{fmt.Sprintf("slab_chunk_max (bytes: %d) must divide evenly into %d (slab_page_size)", cm, storage.SlabPageSize), exUsage}
	}
	return nil
}

// listenSpec is one -l entry.
type listenSpec struct {
	host             string
	tcpPort, udpPort int
	notls            bool
}

// parseListen reads one -l entry as memcached does: an optional "notls:"
// (only with -Z), a host ("*" or empty: all; an IPv6 address bare or in
// brackets) and an optional ":port", which replaces -p and -U for it.
func parseListen(p string, tcpPort, udpPort int, ssl bool) (listenSpec, error) {
	l := listenSpec{tcpPort: tcpPort, udpPort: udpPort}
	if rest, ok := strings.CutPrefix(p, "notls"); ok {
		if !ssl {
			return l, exitError{"'notls' option is valid only when SSL is enabled", exOSErr}
		}
		l.notls = true
		p = strings.TrimPrefix(rest, ":")
	}
	bracketed := false
	if strings.HasPrefix(p, "[") {
		end := strings.IndexByte(p, ']')
		if end < 0 {
			return l, exitError{fmt.Sprintf("Invalid IPV6 address: %q", p), exOSErr}
		}
		l.host, p, bracketed = p[1:end], p[end+1:], true
	}
	if i := strings.IndexByte(p, ':'); i >= 0 && (bracketed || !strings.Contains(p[i+1:], ":")) {
		port, err := strconv.Atoi(p[i+1:])
		if err != nil {
			return l, exitError{fmt.Sprintf("Invalid port number: %q", p[i+1:]), exOSErr}
		}
		if tcpPort > 0 {
			l.tcpPort = port
		}
		if udpPort > 0 {
			l.udpPort = port
		}
		p = p[:i]
	}
	if !bracketed {
		l.host = p
	}
	if l.host == "*" {
		l.host = ""
	}
	return l, nil
}

// knownSuboptions are memcached's -o options; those that corvid does not act
// on yet are accepted (as memcached accepts them) and reported.
var knownSuboptions = map[string]bool{
	"maxconns_fast": true, "no_maxconns_fast": true, "hashpower": true,
	"tail_repair_time": true, "hash_algorithm": true, "lru_crawler": true,
	"no_lru_crawler": true, "lru_crawler_sleep": true, "lru_crawler_tocrawl": true,
	"lru_maintainer": true, "no_lru_maintainer": true, "hot_lru_pct": true,
	"warm_lru_pct": true, "hot_max_factor": true, "warm_max_factor": true,
	"temporary_ttl": true, "idle_timeout": true, "watcher_logbuf_size": true,
	"worker_logbuf_size": true, "read_buf_mem_limit": true, "slab_reassign": true,
	"no_slab_reassign": true, "slab_automove": true, "slab_automove_ratio": true,
	"slab_automove_window": true, "slab_automove_freeratio": true, "slab_chunk_max": true,
	"track_sizes": true, "no_chunked_items": true, "no_hashexpand": true, "modern": true, "no_modern": true,
	"resp_obj_mem_limit": true, "drop_privileges": true, "no_drop_privileges": true,
	"sock_cookie_id": true, "ext_path": true, "ext_page_size": true, "ext_wbuf_size": true,
	"ext_threads": true, "ext_io_depth": true, "ext_item_size": true, "ext_item_age": true,
	"ext_low_ttl": true, "ext_recache_rate": true, "ext_compact_under": true,
	"ext_drop_under": true, "ext_max_sleep": true, "ext_max_frag": true,
	"ext_drop_unread": true, "ssl_chain_cert": true,
	"ssl_key": true, "ssl_verify_mode": true, "ssl_keyformat": true, "ssl_ciphers": true,
	"ssl_ca_cert": true, "ssl_wbuf_size": true, "ssl_session_cache": true,
	"ssl_kernel_tls": true, "ssl_min_version": true, "slab_sizes": true, "no_slab_automove": true,
	"inline_ascii_resp": true, "no_inline_ascii_resp": true,
	// corvid's own.
	"hotkey_sample": true, "hotkey_half_life": true, "klog_file": true, "klog_sample": true, "eviction": true,
	"hugepages": true, "no_hugepages": true, "write_buf_mem_limit": true,
}

// applyExtended applies the suboptions of one -o, in order.
func (o *serverOptions) applyExtended(arg string, cfg *server.Config, sc *storage.Config, chunkMax *chunkMaxOption) error {
	// As memcached's getsubopt loop: an empty suboption before the end
	// ("a,,b" or ",a") is illegal, a trailing comma is not.
	if arg == "" {
		return nil
	}
	for _, opt := range strings.Split(strings.TrimSuffix(arg, ","), ",") {
		name, val, hasVal := strings.Cut(opt, "=")
		if !knownSuboptions[name] {
			return usageError(fmt.Sprintf("Illegal suboption %q", opt))
		}
		n := leadingInt(val)
		switch name {
		case "hashpower":
			if !hasVal {
				return usageError("Missing numeric argument for hashpower")
			}
			if n < 12 {
				return usageError(fmt.Sprintf("Initial hashtable multiplier of %d is too low", n))
			}
			if n > 32 {
				return usageError(fmt.Sprintf("Initial hashtable multiplier of %d is too high\nChoose a value based on \"STAT hash_power_level\" from a running instance", n))
			}
			sc.HashPowerInit = int(n)
		case "idle_timeout":
			// A negative timeout, which memcached takes, times
			// nothing out, as 0.
			if !hasVal {
				return usageError("Missing numeric argument for idle_timeout")
			}
			cfg.IdleTimeout = time.Duration(n) * time.Second
		case "hotkey_sample":
			if val == "" || n < 0 {
				return usageError("hotkey_sample must be 0 (off) or a positive number")
			}
			cfg.HotKeySample = int(n)
			if n == 0 {
				cfg.HotKeySample = -1
			}
		case "read_buf_mem_limit":
			if !hasVal {
				return usageError("Missing read_buf_mem_limit argument")
			}
			mb, ok := safeStrtoul(val)
			if !ok {
				return usageError("could not parse argument to read_buf_mem_limit")
			}
			// memcached keeps the bytes in 32 bits: 4096 MB
			// or more wraps (4096 is 0, no limit).
			limit := int64(mb << 20)
			cfg.ReadBufMemLimit = limit
			if limit == 0 {
				cfg.ReadBufMemLimit = -1 // memcached's 0: no limit
			}
			// Given, the limit bounds a get line's keys as
			// memcached's does (corvid's default does not).
			cfg.MaxGetKeys = server.MemcachedMaxGetKeys(limit, cfg.Threads)
		case "write_buf_mem_limit":
			mb, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return usageError("could not parse argument to write_buf_mem_limit")
			}
			cfg.WriteBufMemLimit = int64(mb) << 20
			if mb == 0 {
				cfg.WriteBufMemLimit = -1 // as read_buf_mem_limit: no limit
			}
		case "watcher_logbuf_size", "worker_logbuf_size":
			if !hasVal {
				return usageError("Missing " + name + " argument")
			}
			kb, ok := safeStrtoul(val)
			if !ok {
				return usageError("could not parse argument to " + name)
			}
			// memcached keeps the size in bytes in 32 bits.
			size := int(kb << 10)
			if name == "worker_logbuf_size" {
				if cfg.WorkerLogBufSize = size; size == 0 {
					cfg.WorkerLogBufSize = -1 // reported as 0
				}
			} else if cfg.WatcherLogBufSize = size; size == 0 {
				cfg.WatcherLogBufSize = -1 // no room: every line is skipped
			}
		case "klog_file":
			if val == "" {
				return usageError("klog_file needs a file name")
			}
			cfg.KlogFile = val
		case "klog_sample":
			if val == "" || n <= 0 {
				return usageError("klog_sample must be a positive number")
			}
			cfg.KlogSample = int(n)
		case "hotkey_half_life":
			if n <= 0 {
				return usageError("hotkey_half_life must be a positive number of seconds")
			}
			cfg.HotKeyHalfLife = time.Duration(n) * time.Second
		case "hugepages":
			sc.NoHugePages = false
		case "no_hugepages":
			sc.NoHugePages = true
		case "no_lru_crawler":
			sc.NoCrawler = true
		case "lru_crawler":
			sc.NoCrawler = false
		case "lru_crawler_sleep":
			if !hasVal {
				return usageError("Missing lru_crawler_sleep value")
			}
			if n < 0 || n > 1000000 {
				return usageError("LRU crawler sleep must be between 0 and 1 second")
			}
			sc.CrawlerSleep = time.Duration(n) * time.Microsecond
			if n == 0 {
				sc.CrawlerSleep = -1 // no pause; 0 would mean the default
			}
		case "lru_crawler_tocrawl":
			if !hasVal {
				return usageError("Missing lru_crawler_tocrawl value")
			}
			tocrawl, ok := safeStrtoul(val)
			if !ok {
				return usageError("lru_crawler_tocrawl takes a numeric 32bit value")
			}
			sc.CrawlerToCrawl = tocrawl
		case "lru_maintainer":
			sc.NoLRUMaintainer = false
		case "no_lru_maintainer":
			sc.NoLRUMaintainer = true
		case "track_sizes":
			sc.TrackSizes = true
		case "resp_obj_mem_limit":
			// memcached's line, printed as it reads the option (the
			// sentence is cut short there too).
			fmt.Fprint(os.Stderr, "DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,\n")
		case "hot_lru_pct":
			if !hasVal {
				return usageError("Missing hot_lru_pct argument")
			}
			if n < 1 || n >= 80 {
				return usageError("hot_lru_pct must be > 1 and < 80")
			}
			sc.HotLRUPct = int(n)
		case "warm_lru_pct":
			if !hasVal {
				return usageError("Missing warm_lru_pct argument")
			}
			if n < 1 || n >= 80 {
				return usageError("warm_lru_pct must be > 1 and < 80")
			}
			sc.WarmLRUPct = int(n)
		case "hot_max_factor", "warm_max_factor":
			if !hasVal {
				return usageError("Missing " + name + " argument")
			}
			f := leadingFloat(val)
			if !(f > 0) {
				return usageError(name + " must be > 0")
			}
			if name == "hot_max_factor" {
				sc.HotMaxFactor = f
			} else {
				sc.WarmMaxFactor = f
			}
		case "temporary_ttl":
			if !hasVal {
				return usageError("Missing temporary_ttl argument")
			}
			sc.TempLRU = true
			sc.TemporaryTTL = int(n) // a negative one puts nothing in the TEMP LRU
		case "slab_chunk_max":
			// Bytes, as memcached 1.6 (its help text still says
			// kilobytes). memcached goes on without a value and
			// crashes; corvid stops.
			if !hasVal {
				return usageError("Missing slab_chunk_max argument")
			}
			b, ok := safeStrtol(val)
			if !ok {
				// memcached complains as it reads it and goes
				// on with 0, which the checks refuse.
				fmt.Fprintln(os.Stderr, "could not parse argument to slab_chunk_max")
			}
			sc.SlabChunkMax = int(b)
			chunkMax.set = true
		case "no_chunked_items":
			sc.SlabChunkMax = storage.SlabPageSize
		case "slab_reassign":
			sc.NoSlabReassign = false
		case "modern":
			// memcached 1.6's defaults are modern already.
		case "maxconns_fast":
			cfg.NoMaxConnsFast = false
		case "no_maxconns_fast":
			cfg.NoMaxConnsFast = true
		case "no_modern":
			cfg.NoMaxConnsFast = true
			if !chunkMax.set {
				sc.SlabChunkMax = storage.SlabPageSize
			}
			// memcached's older defaults: no page moves, no
			// crawler, no LRU maintainer (so a flat LRU).
			sc.NoSlabReassign = true
			sc.SlabAutomove = -1
			sc.NoCrawler = true
			sc.NoLRUMaintainer = true
		case "no_slab_reassign":
			sc.NoSlabReassign = true
		case "no_hashexpand":
			sc.NoHashExpand = true
		case "tail_repair_time":
			if !hasVal {
				return usageError("Missing numeric argument for tail_repair_time")
			}
			n := leadingInt(val)
			if n < 10 {
				return usageError("Cannot set tail_repair_time to less than 10 seconds")
			}
			cfg.TailRepairTime = time.Duration(min(n, math.MaxInt32)) * time.Second
		case "slab_sizes":
			// memcached crashes without a value.
			if !hasVal {
				return usageError("Missing slab_sizes argument")
			}
			o.slabSizes = &val
		case "no_slab_automove":
			sc.SlabAutomove = -1 // slab_automove=0
		case "inline_ascii_resp", "no_inline_ascii_resp":
			// Dead in memcached 1.6, which takes them and does nothing.
		case "slab_automove":
			if !hasVal {
				n = 1
			}
			if n < 0 || n > 2 {
				return usageError("slab_automove must be between 0 and 2")
			}
			sc.SlabAutomove = int(n)
			if n == 0 {
				sc.SlabAutomove = -1
			}
		case "slab_automove_ratio":
			if !hasVal {
				return usageError("Missing slab_automove_ratio argument")
			}
			r := leadingFloat(val)
			if r <= 0 || r > 1 {
				return usageError("slab_automove_ratio must be > 0 and < 1")
			}
			sc.SlabAutomoveRatio = r
		case "slab_automove_window":
			if !hasVal {
				return usageError("Missing slab_automove_window argument")
			}
			if n <= 2 {
				return usageError("slab_automove_window must be > 2")
			}
			sc.SlabAutomoveWindow = int(n)
		case "slab_automove_freeratio":
			if !hasVal {
				return usageError("Missing slab_automove_freeratio argument")
			}
			r, ok := safeStrtod(val)
			if !ok {
				return usageError("could not parse argument to slab_automove_freeratio")
			}
			// memcached takes any number (and uses it only
			// with extstore): reported as given.
			cfg.SlabAutomoveFreeRatio = &r
			if r > 0 && r <= 1 {
				sc.SlabAutomoveFreeRatio = r
			}
		case "eviction":
			e, err := storage.ParseEviction(val)
			if err != nil {
				return usageError("eviction must be lru, random, lra, lrc or none (or twemcache's number, 0 to 15)")
			}
			sc.Eviction = e
			if e == storage.EvictNone {
				sc.NoEvict = true
			}
		case "ssl_chain_cert", "ssl_key", "ssl_ca_cert", "ssl_ciphers", "ssl_keyformat",
			"ssl_verify_mode", "ssl_min_version", "ssl_wbuf_size":
			if err := o.applyTLSOption(name, val, opt); err != nil {
				return err
			}
		case "ssl_session_cache":
			o.tls.SessionCache = true
		case "ssl_kernel_tls":
			o.tls.KernelTLS = true
			cfg.Unsupported = append(cfg.Unsupported, "-o ssl_kernel_tls (crypto/tls has no kernel offload)")
		case "hash_algorithm":
			if !hasVal {
				return usageError("Missing hash_algorithm argument")
			}
			switch val {
			case "jenkins", "murmur3", "xxh3":
			default:
				return usageError("Unknown hash_algorithm option (jenkins, murmur3, xxh3)")
			}
		case "ext_page_size", "ext_wbuf_size", "ext_threads", "ext_io_depth", "ext_item_size", "ext_item_age",
			"ext_low_ttl", "ext_recache_rate", "ext_compact_under", "ext_drop_under", "ext_max_sleep", "ext_max_frag":
			// Checked as memcached's extstore checks them; not acted on.
			if name == "ext_page_size" && o.extPathGiven {
				return usageError("Must specify ext_page_size before any ext_path arguments")
			}
			if !hasVal {
				return usageError("Missing " + name + " argument")
			}
			ok := false
			if name == "ext_max_frag" {
				_, ok = safeStrtod(val)
			} else {
				_, ok = safeStrtoul(val)
			}
			if !ok {
				return usageError("could not parse argument to " + name)
			}
			cfg.Unsupported = append(cfg.Unsupported, "-o "+name)
		case "ext_path":
			if !hasVal {
				return usageError("missing argument to ext_path, ie: ext_path=/d/file:5G")
			}
			o.extPathGiven = true
			cfg.Unsupported = append(cfg.Unsupported, "-o "+name)
		default:
			cfg.Unsupported = append(cfg.Unsupported, "-o "+name)
		}
	}
	return nil
}

// applyTLSOption applies an ssl_* suboption that takes a value, with
// memcached's messages.
func (o *serverOptions) applyTLSOption(name, val, opt string) error {
	if !strings.Contains(opt, "=") {
		return usageError(fmt.Sprintf("Missing %s argument", name))
	}
	num := func() (int, error) {
		n, err := strconv.ParseInt(val, 10, 32)
		if err != nil {
			return 0, usageError(fmt.Sprintf("could not parse argument to %s", name))
		}
		return int(n), nil
	}
	t := &o.tls
	switch name {
	case "ssl_chain_cert":
		t.CertFile = val
	case "ssl_key":
		t.KeyFile = val
	case "ssl_ca_cert":
		t.CAFile = val
	case "ssl_ciphers":
		t.Ciphers = val
	case "ssl_keyformat":
		n, err := num()
		if err != nil {
			return err
		}
		t.KeyFormat = n
	case "ssl_wbuf_size":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return usageError("could not parse argument to ssl_wbuf_size")
		}
		t.WBufSize = int(n) << 10
	case "ssl_verify_mode":
		n, err := num()
		if err != nil {
			return err
		}
		if n < 0 || n > 3 {
			return usageError("Invalid ssl_verify_mode. Use help to see valid options.")
		}
		t.VerifyMode = n
	case "ssl_min_version":
		n, err := num()
		if err != nil {
			return err
		}
		v, ok := server.TLSVersion(n)
		if !ok {
			return usageError("Invalid ssl_min_version. Use help to see valid options.")
		}
		t.MinVersion = v
	}
	return nil
}

// orDefault returns v, or def when v is 0.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// verboseLogger logs to standard error at memcached's -v levels:
// warnings by default, -v adds information, -vv debugging.
func verboseLogger(verbose int) *slog.Logger {
	level := slog.LevelWarn
	if verbose > 0 {
		level = slog.LevelInfo
	}
	if verbose > 1 {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func runServer(ctx context.Context, o *serverOptions, flags *pflag.FlagSet) (err error) {
	pipe := &daemonPipe{}
	if o.daemonChild {
		pipe = openDaemonPipe()
		defer func() { pipe.fail(err) }()
	}
	logger := verboseLogger(o.verbose)
	cfg, err := o.config()
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.SnapshotFile = o.memoryFile
	for _, name := range []string{"lock-memory"} {
		if f := flags.Lookup(name); f != nil && f.Changed {
			cfg.Unsupported = append(cfg.Unsupported, "--"+name)
		}
	}
	for _, u := range cfg.Unsupported {
		logger.Warn("option accepted but not supported yet", "option", u)
	}
	if o.daemon && !o.daemonChild {
		return daemonize()
	}
	runtime.GOMAXPROCS(o.threads)

	// As memcached, before privileges are dropped.
	if err := raiseFileLimit(cfg.MaxConns); err != nil {
		return err
	}
	if err := dropPrivileges(o.user, logger); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// SIGUSR1 is memcached's graceful stop, which saves a restartable
	// cache; corvid saves on every clean stop when -e is given. The first
	// stop signal (or the "shutdown" command) gives connections the
	// shutdown grace to write their last replies; a second one closes
	// them at once (the snapshot is still saved); a third is left to its
	// default action and ends the process at once (a save in progress is
	// then lost, but the previous snapshot stays whole: saves go through
	// a temporary file). The signals are caught before the server is
	// created, as memcached installs its handlers before it restores its
	// cache: a stop asked for while a snapshot loads takes effect, with
	// its save, once the load is over.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, serverStopSignals...)
	defer signal.Stop(sigs)
	// A configuration the cache cannot take has no table: server.New
	// says why.
	table, tableErr := storage.ClassTable(cfg.Storage)
	if o.verbose > 1 && tableErr == nil {
		// As memcached, which prints it as it makes its slab classes,
		// before it opens its listeners; with -L after the size of the
		// huge pages it aligns its memory to.
		if size := hugePageSize(); o.largePages && size > 0 {
			fmt.Fprintf(os.Stderr, "huge page size: %d\n", size)
		}
		for _, c := range table {
			fmt.Fprintf(os.Stderr, "slab class %3d: chunk size %9d perslab %7d\n", c.ID, c.ChunkSize, c.ChunksPerPage)
		}
	}
	if o.largePages && tableErr == nil {
		if err := checkPrealloc(cfg.Storage, table); err != nil {
			return err
		}
	}
	// As memcached when it starts its threads, before its listeners.
	if err := checkLockPower(o.threads, orDefault(cfg.Storage.HashPowerInit, 16)); err != nil {
		return err
	}
	srv, err := server.New(cfg)
	if errors.Is(err, server.ErrMaxConnsTooLow) {
		return exitError{"Maxconns setting is too low, use -c to increase.", 1}
	}
	if errors.Is(err, server.ErrListen) {
		return exitError{err.Error(), exOSErr} // as memcached's server_sockets
	}
	if errors.Is(err, server.ErrTLSConfig) {
		return exitError{err.Error(), exUsage} // as memcached's ssl_init
	}
	if err != nil {
		return err
	}
	// As memcached, -P writes the pid file with or without -d (a
	// supervisor may keep the server in the foreground); it is removed
	// on a clean stop.
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, true); err != nil {
			logger.Warn("cannot write pid file", "file", o.pidFile, "err", err)
		} else {
			defer os.Remove(o.pidFile)
		}
	}
	for _, a := range append(srv.Addrs(), srv.UDPAddrs()...) {
		logger.Info("listening", "addr", a.Network()+":"+a.String())
	}
	if o.admin != "" {
		title := "corvid server"
		if a := srv.Addrs(); len(a) > 0 {
			title += " " + a[0].String()
		}
		as, err := admin.Listen(o.admin, admin.Config{
			Collectors: []prometheus.Collector{admin.NewMemcachedCollector(srv.Stats)},
			Dashboard:  admin.MemcachedDashboard(title, srv.Stats),
		})
		if err != nil {
			srv.Close()
			return err
		}
		defer as.Close()
		logger.Info("admin port listening", "addr", as.Addr().String())
	}
	pipe.ready()
	served := make(chan struct{})
	var sigWG sync.WaitGroup
	defer sigWG.Wait()
	defer close(served)
	sigWG.Add(1)
	go func() {
		defer sigWG.Done()
		select {
		case sig := <-sigs:
			logger.Info("stopping; a second signal closes the connections without grace",
				"signal", sig.String(), "grace", cfg.ShutdownGrace.String())
			cancel()
		case <-ctx.Done():
		case <-srv.Stopping():
			// The "shutdown" command began the stop: the first
			// signal is the second stop request.
		case <-served:
			return
		}
		select {
		case sig := <-sigs:
			logger.Warn("second stop signal: closing the connections now", "signal", sig.String())
			signal.Reset(serverStopSignals...)
			srv.CloseNow()
		case <-served:
		}
	}()
	// SIGHUP reopens the command log, for log rotation, and reads the
	// auth file and the SASL password database again, as memcached
	// reads its auth file again.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := srv.ReopenLogs(); err != nil {
					logger.Error("cannot reopen the command log", "err", err)
				}
				if err := srv.ReloadAuth(); err != nil {
					logger.Error("cannot reload the credentials; the previous ones stay", "err", err)
				}
			}
		}
	}()
	err = srv.Serve(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

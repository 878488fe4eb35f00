package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/procs"
	"github.com/corvidcache/corvid/proxy"
)

// twemproxy's defaults (nutcracker 0.5.0 as built from its source; Debian's
// package moves the log, configuration and pid files under /var/log, /etc
// and /run).
const (
	nutcrackerConf          = "conf/nutcracker.yml"
	nutcrackerLogLevel      = 5 // LOG_NOTICE
	nutcrackerLogLevelMax   = 11
	nutcrackerStatsPort     = 22222
	nutcrackerStatsAddr     = "0.0.0.0"
	nutcrackerStatsInterval = 30000 // ms
	nutcrackerMbufSize      = 16384
	nutcrackerMbufMin       = 512
	nutcrackerMbufMax       = 16777216
)

// proxyOptions holds nutcracker's command line as given. The numbers are
// kept as text and read as nutcracker reads them, so that a bad one gets
// nutcracker's message.
type proxyOptions struct {
	help, showVersion, testConf, daemon, describeStats bool
	verbose, statsPort, statsInterval, mbufSize        string
	output, confFile, statsAddr, pidFile               string
	admin, procs                                       string
	daemonChild                                        bool
	eventLoop                                          bool

	// start builds the proxy for a configuration; tests replace it.
	start func(*nutcracker.Config, *slog.Logger) (proxyServer, error)
}

// proxyServer is the running proxy, as package proxy's Proxy provides it.
type proxyServer interface {
	Serve(ctx context.Context) error
	Close() error
	Addrs() map[string]net.Addr
	Stats() proxy.Stats
	Reload(*nutcracker.Config) error
}

// proxySettings are the numbers of the command line, checked.
type proxySettings struct {
	logLevel      int
	statsPort     int
	statsInterval int // ms
	mbufSize      int
	procs         int // 0: as the load needs (--procs auto)
}

// scaleProcs lets --procs auto change GOMAXPROCS; the in-process tests
// turn it off, since it would change their own process's.
var scaleProcs = true

func newProxyCommand() *cobra.Command {
	o := &proxyOptions{}
	o.start = func(cfg *nutcracker.Config, logger *slog.Logger) (proxyServer, error) {
		return startProxy(cfg, logger, o.eventLoop)
	}
	return proxyCommand(o)
}

// startProxy creates the proxy for cfg (with proxy.Config.EventLoop when
// eventLoop is set): its pools' listeners are bound (and their servers
// preconnected) when it returns.
func startProxy(cfg *nutcracker.Config, logger *slog.Logger, eventLoop bool) (proxyServer, error) {
	p, err := proxy.New(proxy.Config{Pools: cfg, Logger: logger, EventLoop: eventLoop})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// proxyCommand returns the proxy command with its flags bound to o.
func proxyCommand(o *proxyOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "proxy [nutcracker options]",
		Short: "Run a twemproxy-compatible proxy (same command line and nutcracker.yml as nutcracker)",
		Long: `corvid proxy is a drop-in twemproxy (nutcracker): it takes nutcracker's
command line, reads nutcracker.yml unchanged and answers twemproxy's stats
JSON on its stats port.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.settings()
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if o.showVersion || o.describeStats {
				io.WriteString(stderr, nutcrackerVersionText())
				if o.describeStats {
					io.WriteString(stderr, nutcrackerStatsDescription())
				}
				return nil
			}
			if o.testConf {
				return testProxyConfig(stderr, o.confFile)
			}
			return runProxy(cmd.Context(), o, s)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.BoolVarP(&o.help, "help", "h", false, "this help")
	f.BoolVarP(&o.showVersion, "version", "V", false, "show version and exit")
	f.BoolVarP(&o.testConf, "test-conf", "t", false, "test configuration for syntax errors and exit")
	f.BoolVarP(&o.daemon, "daemonize", "d", false, "run as a daemon")
	f.BoolVarP(&o.describeStats, "describe-stats", "D", false, "print stats description and exit")
	f.StringVarP(&o.verbose, "verbose", "v", strconv.Itoa(nutcrackerLogLevel), "set logging level (min: 0, max: 11)")
	f.StringVarP(&o.output, "output", "o", "", "set logging file (default: stderr)")
	f.StringVarP(&o.confFile, "conf-file", "c", nutcrackerConf, "set configuration file")
	f.StringVarP(&o.statsPort, "stats-port", "s", strconv.Itoa(nutcrackerStatsPort), "set stats monitoring port")
	f.StringVarP(&o.statsAddr, "stats-addr", "a", nutcrackerStatsAddr, "set stats monitoring ip")
	f.StringVarP(&o.statsInterval, "stats-interval", "i", strconv.Itoa(nutcrackerStatsInterval), "set stats aggregation interval in msec (corvid's counters are live: no effect)")
	f.StringVarP(&o.pidFile, "pid-file", "p", "", "set pid file (default: off)")
	f.StringVarP(&o.mbufSize, "mbuf-size", "m", strconv.Itoa(nutcrackerMbufSize), "set size of mbuf chunk in bytes (accepted; no effect in corvid)")
	f.StringVar(&o.procs, "procs", "auto", "processors to run on: auto (as few as the load needs, up to GOMAXPROCS) or a number")
	f.StringVar(&o.admin, "admin", "", "serve the admin HTTP port (stats JSON at /stats, profiles under /debug/pprof/) on this host:port")
	f.BoolVar(&o.daemonChild, "daemon-child", false, "internal: this process is the daemon started by -d")
	f.MarkHidden("daemon-child")
	f.BoolVar(&o.eventLoop, "event-loop", false, "experimental (Linux): one event loop reads every client and server connection")
	f.MarkHidden("event-loop")
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		io.WriteString(cmd.ErrOrStderr(), nutcrackerVersionText()+nutcrackerUsage())
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError(nutcrackerFlagError(err) + "\n" + strings.TrimSuffix(nutcrackerUsage(), "\n"))
	})
	return cmd
}

// nutcrackerFlagError words a command-line error as nutcracker does.
func nutcrackerFlagError(err error) string {
	var notExist *pflag.NotExistError
	var noValue *pflag.ValueRequiredError
	switch {
	case errors.As(err, &notExist):
		if s := notExist.GetSpecifiedShortnames(); s != "" {
			return fmt.Sprintf("nutcracker: invalid option -- '%c'", []rune(s)[0])
		}
		return fmt.Sprintf("nutcracker: invalid option -- '--%s'", notExist.GetSpecifiedName())
	case errors.As(err, &noValue):
		name := noValue.GetSpecifiedShortnames()
		if name == "" {
			name = noValue.GetFlag().Shorthand
		}
		if name == "" {
			name = "-" + noValue.GetFlag().Name
		}
		switch noValue.GetFlag().Name {
		case "output", "conf-file", "pid-file":
			return fmt.Sprintf("nutcracker: option -%s requires a file name", name)
		case "stats-addr":
			return fmt.Sprintf("nutcracker: option -%s requires a string", name)
		case "admin":
			return "corvid: option --admin requires an address"
		}
		return fmt.Sprintf("nutcracker: option -%s requires a number", name)
	}
	return "nutcracker: " + err.Error()
}

// settings checks the numbers of the command line with nutcracker's rules
// and messages.
func (o *proxyOptions) settings() (proxySettings, error) {
	fail := func(format string, args ...any) (proxySettings, error) {
		return proxySettings{}, usageError(fmt.Sprintf(format, args...) + "\n" + strings.TrimSuffix(nutcrackerUsage(), "\n"))
	}
	var s proxySettings
	if s.logLevel = nutcracker.Atoi(o.verbose); s.logLevel < 0 {
		return fail("nutcracker: option -v requires a number")
	}
	if s.statsPort = nutcracker.Atoi(o.statsPort); s.statsPort < 0 {
		return fail("nutcracker: option -s requires a number")
	}
	if s.statsPort < 1 || s.statsPort > math.MaxUint16 {
		return fail("nutcracker: option -s value %d is not a valid port", s.statsPort)
	}
	if s.statsInterval = nutcracker.Atoi(o.statsInterval); s.statsInterval < 0 {
		return fail("nutcracker: option -i requires a number")
	}
	if s.mbufSize = nutcracker.Atoi(o.mbufSize); s.mbufSize <= 0 {
		return fail("nutcracker: option -m requires a non-zero number")
	}
	if s.mbufSize < nutcrackerMbufMin || s.mbufSize > nutcrackerMbufMax {
		return fail("nutcracker: mbuf chunk size must be between %d and %d bytes", nutcrackerMbufMin, nutcrackerMbufMax)
	}
	if o.procs != "auto" {
		n, err := strconv.Atoi(o.procs)
		if err != nil || n < 1 {
			return fail("corvid: option --procs must be auto or a number of processors, got %q", o.procs)
		}
		s.procs = n
	}
	return s, nil
}

// nutcrackerVersionText is what nutcracker prints first for -V, -h and -D.
func nutcrackerVersionText() string {
	return fmt.Sprintf("This is nutcracker-%s (corvid %s)\nasync event backend: epoll\n\n", proxy.NutcrackerVersion, version)
}

// nutcrackerUsage is nutcracker's usage text, line ends included, with its
// own defaults, then corvid's option.
func nutcrackerUsage() string {
	return "Usage: nutcracker [-?hVdDt] [-v verbosity level] [-o output file]\r\n" +
		"                  [-c conf file] [-s stats port] [-a stats addr]\r\n" +
		"                  [-i stats interval] [-p pid file] [-m mbuf size]\r\n" +
		"\n" +
		"Options:\r\n" +
		"  -h, --help             : this help\r\n" +
		"  -V, --version          : show version and exit\r\n" +
		"  -t, --test-conf        : test configuration for syntax errors and exit\r\n" +
		"  -d, --daemonize        : run as a daemon\r\n" +
		"  -D, --describe-stats   : print stats description and exit\n" +
		fmt.Sprintf("  -v, --verbose=N        : set logging level (default: %d, min: 0, max: %d)\r\n", nutcrackerLogLevel, nutcrackerLogLevelMax) +
		"  -o, --output=S         : set logging file (default: stderr)\r\n" +
		fmt.Sprintf("  -c, --conf-file=S      : set configuration file (default: %s)\r\n", nutcrackerConf) +
		fmt.Sprintf("  -s, --stats-port=N     : set stats monitoring port (default: %d)\r\n", nutcrackerStatsPort) +
		fmt.Sprintf("  -a, --stats-addr=S     : set stats monitoring ip (default: %s)\r\n", nutcrackerStatsAddr) +
		fmt.Sprintf("  -i, --stats-interval=N : set stats aggregation interval in msec (default: %d msec)\r\n", nutcrackerStatsInterval) +
		"  -p, --pid-file=S       : set pid file (default: off)\r\n" +
		fmt.Sprintf("  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: %d bytes)\r\n", nutcrackerMbufSize) +
		"\n" +
		"corvid:\r\n" +
		"      --admin=S          : serve stats JSON at /stats, Prometheus metrics at /metrics, a dashboard at / and profiles under /debug/pprof/ on this host:port (default: off)\r\n" +
		"      --procs=S          : processors to run on: auto (as few as the load needs) or a number (default: auto)\r\n" +
		"\n"
}

// nutcrackerStatsDescription is what nutcracker -D prints after the version.
func nutcrackerStatsDescription() string {
	var b strings.Builder
	line := func(name, desc string) { fmt.Fprintf(&b, "  %-20s\"%s\"\n", name, desc) }
	b.WriteString("pool stats:\n")
	line("client_eof", "# eof on client connections")
	line("client_err", "# errors on client connections")
	line("client_connections", "# active client connections")
	line("server_ejects", "# times backend server was ejected")
	line("forward_error", "# times we encountered a forwarding error")
	line("fragments", "# fragments created from a multi-vector request")
	b.WriteString("\nserver stats:\n")
	line("server_eof", "# eof on server connections")
	line("server_err", "# errors on server connections")
	line("server_timedout", "# timeouts on server connections")
	line("server_connections", "# active server connections")
	line("server_ejected_at", "timestamp when server was ejected in usec since epoch")
	line("requests", "# requests")
	line("request_bytes", "total request bytes")
	line("responses", "# responses")
	line("response_bytes", "total response bytes")
	line("in_queue", "# requests in incoming queue")
	line("in_queue_bytes", "current request bytes in incoming queue")
	line("out_queue", "# requests in outgoing queue")
	line("out_queue_bytes", "current request bytes in outgoing queue")
	return b.String()
}

// loadProxyConfig reads a nutcracker.yml and refuses what corvid proxy
// cannot serve: redis pools.
func loadProxyConfig(path string) (*nutcracker.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseProxyConfig(path, b)
}

// parseProxyConfig is loadProxyConfig for the file's contents b.
func parseProxyConfig(path string, b []byte) (*nutcracker.Config, error) {
	cfg, err := nutcracker.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range cfg.Pools {
		if p.Redis {
			return nil, fmt.Errorf("nutcracker: pool %q: redis pools are not supported: corvid proxy serves memcached only", p.Name)
		}
		// nutcracker resolves a listen host as it reads the file, and
		// takes no port 0.
		if !strings.HasPrefix(p.Listen, "/") {
			host, port, err := net.SplitHostPort(p.Listen)
			if err != nil {
				// A host with brackets ("[::1]:22121"): no name resolves.
				return nil, fmt.Errorf("%s: nutcracker: pool %q: listen %q does not resolve: %w", path, p.Name, p.Listen, err)
			}
			if port == "0" {
				return nil, fmt.Errorf("%s: nutcracker: pool %q: listen %q has an invalid port", path, p.Name, p.Listen)
			}
			ctx, cancel := context.WithTimeout(context.Background(), listenResolveTimeout)
			_, err = net.DefaultResolver.LookupHost(ctx, host)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: nutcracker: pool %q: listen host %q does not resolve: %w", path, p.Name, host, err)
			}
		}
	}
	return cfg, nil
}

// listenResolveTimeout bounds the look-up of a pool's listen host.
const listenResolveTimeout = 10 * time.Second

// testProxyConfig is -t: nutcracker's verdict on its standard error and
// exit status, after the reason when the file is refused.
func testProxyConfig(stderr io.Writer, path string) error {
	if _, err := loadProxyConfig(path); err != nil {
		return fmt.Errorf("%v\nnutcracker: configuration file '%s' syntax is invalid", err, path)
	}
	fmt.Fprintf(stderr, "nutcracker: configuration file '%s' syntax is ok\n", path)
	return nil
}

// slogLevel maps nutcracker's log levels (0 emerg .. 5 notice, 6 info,
// 7 debug and more verbose) onto slog's.
func slogLevel(v int) slog.Level {
	switch {
	case v >= 7:
		return slog.LevelDebug
	case v >= 5:
		return slog.LevelInfo
	case v == 4:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// logFile is the -o log; SIGHUP reopens it, for log rotation, as
// nutcracker does. It is safe for concurrent use.
type logFile struct {
	path string
	mu   sync.Mutex // guards f
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening log file '%s' failed: %w", l.path, err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (l *logFile) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(b)
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

func runProxy(ctx context.Context, o *proxyOptions, s proxySettings) (err error) {
	pipe := &daemonPipe{}
	if o.daemonChild {
		pipe = openDaemonPipe()
		defer func() { pipe.fail(err) }()
	}
	cfg, err := loadProxyConfig(o.confFile)
	if err != nil {
		return err
	}
	if o.daemon && !o.daemonChild {
		return daemonize()
	}
	var out io.Writer = os.Stderr
	var lf *logFile
	if o.output != "" {
		if lf, err = openLogFile(o.output); err != nil {
			return err
		}
		defer lf.Close()
		out = lf
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slogLevel(s.logLevel)}))
	if o.mbufSize != strconv.Itoa(nutcrackerMbufSize) {
		logger.Info("-m is accepted and has no effect: corvid sizes its buffers itself", "mbuf_size", s.mbufSize)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)

	// Signals are handled before anything listens, so that whoever sees
	// a port open may signal the proxy. SIGTERM and SIGINT stop it; a
	// second one is left to its default action. SIGHUP reopens the log
	// file as nutcracker does, and must not kill the proxy.
	var sigWG sync.WaitGroup
	defer sigWG.Wait()
	var reloads atomic.Pointer[configReloader] // set once the proxy runs
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	sigWG.Add(1)
	go func() {
		defer sigWG.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					if lf != nil {
						if err := lf.reopen(); err != nil {
							logger.Error("cannot reopen the log file", "err", err)
						}
					}
					if r := reloads.Load(); r != nil {
						r.kick("SIGHUP", true)
					}
					continue
				}
				logger.Info("stopping", "signal", sig.String())
				signal.Reset(syscall.SIGTERM, syscall.SIGINT)
				cancel()
				return
			}
		}
	}()
	defer cancel() // before sigWG.Wait

	// The stats port opens before the pools listen, as in nutcracker; it
	// shows empty counters until the proxy is built.
	var running atomic.Pointer[proxyServer]
	stats := func() proxy.Stats {
		if p := running.Load(); p != nil {
			return (*p).Stats()
		}
		return proxy.Stats{}
	}
	sp, err := proxy.ListenStats(proxy.StatsPortConfig{
		Addr:   net.JoinHostPort(o.statsAddr, strconv.Itoa(s.statsPort)),
		Stats:  stats,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	defer sp.Close()
	logger.Info("stats port listening", "addr", sp.Addr().String())
	if o.admin != "" {
		host, _ := os.Hostname()
		as, err := admin.Listen(o.admin, admin.Config{
			Routes:     []admin.Route{{Pattern: "GET /stats", Handler: proxy.StatsHandler(stats, "", "")}},
			Collectors: []prometheus.Collector{admin.NewTwemproxyCollector(host, stats), admin.NewRouteCollector(stats)},
			Dashboard:  admin.TwemproxyDashboard("corvid proxy "+host, stats),
		})
		if err != nil {
			return err
		}
		defer as.Close()
		logger.Info("admin port listening", "addr", as.Addr().String())
	}
	switch {
	case s.procs > 0:
		runtime.GOMAXPROCS(s.procs)
	case scaleProcs:
		defer scaleProcessors(ctx, logger)()
	}
	p, err := o.start(cfg, logger)
	if err != nil {
		return err
	}
	defer p.Close()
	running.Store(&p)
	cr := newConfigReloader(o.confFile, p, logger)
	reloads.Store(cr)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchWG sync.WaitGroup
	defer func() { stopWatch(); watchWG.Wait() }()
	cr.watch(watchCtx, &watchWG)
	addrs := p.Addrs()
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		logger.Info("pool listening", "pool", name, "addr", addrs[name].Network()+":"+addrs[name].String())
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, false); err != nil {
			return fmt.Errorf("opening pid file '%s' failed: %w", o.pidFile, err)
		}
		defer os.Remove(o.pidFile)
	}
	logger.Info(fmt.Sprintf("nutcracker-%s (corvid %s) started on pid %d", proxy.NutcrackerVersion, version, os.Getpid()))
	pipe.ready()
	err = p.Serve(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	logger.Info("done")
	return err
}

// scaleProcessors runs the process on as few processors as its load
// needs (see package procs) until the returned function is called, which
// gives them all back.
func scaleProcessors(ctx context.Context, logger *slog.Logger) (stop func()) {
	sc := procs.New(0, logger)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sc.Run(ctx) }()
	return func() { cancel(); <-done }
}

// configDebounce is how long the configuration file must stay unchanged
// before a change is loaded: an editor's save is several events.
const configDebounce = 200 * time.Millisecond

// configReloader loads the configuration file into the running proxy, on
// SIGHUP and when the file changes. It is safe for concurrent use.
type configReloader struct {
	path string
	// apply parses the file's contents and hands them to the running
	// server; it returns what to log about the new configuration.
	apply func(b []byte) ([]any, error)
	log   *slog.Logger

	// imports, when the configuration can import files (corvid
	// router's @import), records those its last load read: a change to
	// one reloads it too, and their directories are watched.
	imports *importedFiles

	mu      sync.Mutex // guards last and watcher; serialises reloads
	last    []byte     // the contents last loaded (or refused)
	watcher *fsnotify.Watcher

	kickMu      sync.Mutex // guards the fields below
	running     bool       // kick's goroutine runs
	queued      bool       // it runs a reload more once done
	queuedWhy   string
	queuedForce bool
}

// newConfigReloader reloads a nutcracker.yml into p.
func newConfigReloader(path string, p proxyServer, log *slog.Logger) *configReloader {
	return newFileReloader(path, func(b []byte) ([]any, error) {
		cfg, err := parseProxyConfig(path, b)
		if err == nil {
			err = p.Reload(cfg)
		}
		if err != nil {
			return nil, err
		}
		names := make([]string, len(cfg.Pools))
		for i, pc := range cfg.Pools {
			names[i] = pc.Name
		}
		return []any{"pools", strings.Join(names, ",")}, nil
	}, log)
}

// newFileReloader reloads the file at path with apply.
func newFileReloader(path string, apply func([]byte) ([]any, error), log *slog.Logger) *configReloader {
	r := &configReloader{path: path, apply: apply, log: log}
	r.last, _ = os.ReadFile(path)
	return r
}

// reload loads the file and hands it to the server; unless force, only
// when its contents changed. A file that cannot be read, parsed or served
// is refused with one log line and the server keeps its configuration.
func (r *configReloader) reload(reason string, force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := os.ReadFile(r.path)
	if err == nil && !force && bytes.Equal(b, r.last) && !r.imports.changed() {
		return
	}
	r.last = b
	var attrs []any
	if err == nil {
		attrs, err = r.apply(b)
		r.watchImportsLocked()
	}
	if err != nil {
		r.log.Error("configuration refused; the previous one keeps serving", "reason", reason, "file", r.path, "err", err)
		return
	}
	r.log.Info("configuration reloaded", append([]any{"reason", reason, "file", r.path}, attrs...)...)
}

// kick runs reload in a goroutine of its own that nothing waits for: a
// reload blocked on its file (a hung network file system, a FIFO) holds
// up neither the signals nor the stop. Kicks that come while a reload
// runs make one more run after it (forced if any of them was).
func (r *configReloader) kick(reason string, force bool) {
	r.kickMu.Lock()
	defer r.kickMu.Unlock()
	if r.running {
		r.queued, r.queuedWhy, r.queuedForce = true, reason, r.queuedForce || force
		return
	}
	r.running = true
	go func() {
		for {
			r.reload(reason, force)
			r.kickMu.Lock()
			if !r.queued {
				r.running = false
				r.kickMu.Unlock()
				return
			}
			reason, force = r.queuedWhy, r.queuedForce
			r.queued, r.queuedForce = false, false
			r.kickMu.Unlock()
		}
	}()
}

// watchImportsLocked adds the directories of the files the last load
// imported to the watcher, if there is one; r.mu is held. A directory
// that cannot be watched is logged: SIGHUP still reloads.
func (r *configReloader) watchImportsLocked() {
	if r.watcher == nil {
		return
	}
	for _, d := range r.imports.dirs() {
		if err := r.watcher.Add(d); err != nil && !errors.Is(err, fsnotify.ErrClosed) {
			r.log.Warn("cannot watch the directory of an imported file; SIGHUP reloads it", "dir", d, "err", err)
		}
	}
}

// watch reloads the file, once it has been quiet for configDebounce,
// after any change in its directory, or in that of a file it imports
// (watching the directory sees an
// editor's write to a new file renamed over the old one, and a symbolic
// link switched to another file); the contents decide whether it changed.
// It returns at once; the watching goroutine stops when ctx is done.
func (r *configReloader) watch(ctx context.Context, wg *sync.WaitGroup) {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(r.path)); err != nil {
			w.Close()
		}
	}
	if err != nil {
		r.log.Warn("cannot watch the configuration file; SIGHUP reloads it", "file", r.path, "err", err)
		return
	}
	r.mu.Lock()
	r.watcher = w
	r.watchImportsLocked()
	r.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Close()
		timer := time.NewTimer(configDebounce)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				timer.Reset(configDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				r.log.Warn("watching the configuration file", "file", r.path, "err", err)
				timer.Reset(configDebounce) // events may be lost: look at the file
			case <-timer.C:
				r.kick("file changed", false)
			}
		}
	}()
}

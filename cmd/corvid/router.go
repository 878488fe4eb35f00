package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/proxy"
	"github.com/corvidcache/corvid/route"
)

// routerOptions holds mcrouter's command line as given.
type routerOptions struct {
	configFile, configStr, config string
	validate                      string // "", "exit" or "run"
	disableReload                 bool
	ports                         []string
	listenAddrs                   []string
	numProxies                    int
	routePrefix                   string
	admin, pidFile                string
	daemon, daemonChild           bool
	verbose                       int
	eventLoop                     bool

	// start builds the router for a configuration; tests replace it.
	start func(cfg *route.Config, listen []string, logger *slog.Logger) (routerServer, error)
	// imports records the files the configuration file's last load read
	// through @import, so that a change to one reloads it too.
	imports importedFiles
}

// routerServer is the running router, as package proxy's Proxy provides
// it.
type routerServer interface {
	Serve(ctx context.Context) error
	Close() error
}

// routerStats is a router that counts what it does, for the admin port.
type routerStats interface {
	Stats() proxy.Stats
}

// routeReloader is a router that takes a new route tree while it serves.
type routeReloader interface {
	ReloadRoutes(*route.Config) error
}

func newRouterCommand() *cobra.Command {
	o := &routerOptions{}
	o.start = o.startRouter
	return routerCommand(o)
}

// startRouter builds the proxy engine for an mcrouter configuration.
func (o *routerOptions) startRouter(cfg *route.Config, listen []string, logger *slog.Logger) (routerServer, error) {
	p, err := proxy.New(proxy.Config{Routes: cfg, Listen: listen, Logger: logger,
		RouterVersion: "corvid " + version, RouterOptions: o.mcrouterOptions(), EventLoop: o.eventLoop})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// mcrouterOptions lists the options as mcrouter's __mcrouter__.options
// names them.
func (o *routerOptions) mcrouterOptions() []proxy.RouterOption {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	config := o.config
	if config == "" && o.configFile != "" {
		config = "file:" + o.configFile
	} else if config == "" {
		config = o.configStr
	}
	return []proxy.RouterOption{
		{Name: "config", Value: config},
		{Name: "config_file", Value: o.configFile},
		{Name: "config_str", Value: o.configStr},
		{Name: "default_route", Value: o.routePrefix},
		{Name: "disable_reload_configs", Value: flag(o.disableReload)},
		{Name: "listen_addresses", Value: strings.Join(o.listenAddrs, ",")},
		{Name: "num_proxies", Value: strconv.Itoa(o.numProxies)},
		{Name: "ports", Value: strings.Join(o.ports, ",")},
	}
}

// routerCommand returns the router command with its flags bound to o.
func routerCommand(o *routerOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "router -f config.json -p port [mcrouter options]",
		Short: "Run an mcrouter-compatible router (same command line and JSON config as mcrouter)",
		Long: `corvid router is a drop-in mcrouter: it takes mcrouter's command line and
reads mcrouter's JSON configuration (comments, macros, @import, named
handles, the route handles corvid runs) unchanged, on corvid proxy's engine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.validate {
			case "", "exit", "run":
			default:
				return usageError(fmt.Sprintf("invalid argument for --validate-config: '%s' (want exit or run)", o.validate))
			}
			if o.validate == "exit" {
				return validateRouterConfig(cmd.ErrOrStderr(), o)
			}
			return runRouter(cmd.Context(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVarP(&o.configFile, "config-file", "f", "", "load the configuration from this file")
	f.StringVar(&o.configStr, "config-str", "", "the configuration as a JSON string")
	f.StringVar(&o.config, "config", "", "the configuration: file:<path> or a JSON string (supersedes -f and --config-str)")
	f.StringVar(&o.validate, "validate-config", "", "check the configuration and exit 0 if it is valid, 1 if not (=run: check, then serve)")
	f.Lookup("validate-config").NoOptDefVal = "exit"
	f.BoolVar(&o.disableReload, "disable-reload-configs", false, "do not reload the configuration file when it changes")
	f.StringSliceVarP(&o.ports, "port", "p", nil, "port(s) to listen on (comma separated, repeatable)")
	f.StringSliceVar(&o.listenAddrs, "listen-addresses", nil, "address(es) to listen on (comma separated; default: all addresses)")
	f.IntVar(&o.numProxies, "num-proxies", 1, "accepted: corvid's engine sizes itself")
	f.StringVarP(&o.routePrefix, "route-prefix", "R", route.DefaultRoutePrefix, "default routing prefix: the route of \"routes\" whose aliases include it serves")
	f.StringVar(&o.admin, "admin", "", "corvid: serve the admin HTTP port (Prometheus metrics at /metrics, a dashboard at /, stats JSON at /stats, profiles under /debug/pprof/) on this host:port")
	f.BoolVarP(&o.daemon, "daemonize", "d", false, "corvid: run as a daemon")
	f.StringVarP(&o.pidFile, "pid-file", "P", "", "corvid: write the process id to this file")
	f.CountVarP(&o.verbose, "verbose", "v", "corvid: log more (-v: debug)")
	f.BoolVar(&o.daemonChild, "daemon-child", false, "internal: this process is the daemon started by -d")
	f.MarkHidden("daemon-child")
	f.BoolVar(&o.eventLoop, "event-loop", false, "corvid, experimental (Linux): one event loop reads every client and server connection")
	f.MarkHidden("event-loop")
	return cmd
}

// routerSource is where the configuration comes from: a file (path set)
// or a string.
type routerSource struct {
	path string
	text []byte
}

func (o *routerOptions) source() (routerSource, error) {
	switch {
	case o.config != "":
		if p, ok := strings.CutPrefix(o.config, "file:"); ok {
			return routerSource{path: p}, nil
		}
		return routerSource{text: []byte(o.config)}, nil
	case o.configFile != "" && o.configStr != "":
		return routerSource{}, usageError("give one of -f/--config-file and --config-str, not both")
	case o.configFile != "":
		return routerSource{path: o.configFile}, nil
	case o.configStr != "":
		return routerSource{text: []byte(o.configStr)}, nil
	}
	return routerSource{}, usageError("no configuration: give -f/--config-file, --config-str or --config")
}

// load reads and checks the configuration.
func (o *routerOptions) load() (*route.Config, []string, error) {
	src, err := o.source()
	if err != nil {
		return nil, nil, err
	}
	if src.path != "" {
		o.imports.reset()
		return route.LoadMcrouter(src.path, route.WithRoutePrefix(o.routePrefix), route.WithReadFile(o.imports.read))
	}
	return route.ParseMcrouter(src.text, route.WithRoutePrefix(o.routePrefix))
}

// listen returns the addresses to serve on: every listen address with
// every port, or every port on all addresses.
func (o *routerOptions) listen() ([]string, error) {
	var ports []string
	for _, p := range o.ports {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 65535 {
			return nil, usageError(fmt.Sprintf("invalid port '%s'", p))
		}
		ports = append(ports, strconv.Itoa(n))
	}
	if len(ports) == 0 {
		return nil, usageError("no ports to listen on: give -p/--port")
	}
	hosts := o.listenAddrs
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	var addrs []string
	for _, h := range hosts {
		h = strings.Trim(strings.TrimSpace(h), "[]")
		for _, p := range ports {
			addrs = append(addrs, net.JoinHostPort(h, p))
		}
	}
	return addrs, nil
}

// validateRouterConfig is --validate-config: the warnings and verdict on
// standard error, and the reason, one line, as the error.
func validateRouterConfig(stderr io.Writer, o *routerOptions) error {
	_, warnings, err := o.load()
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintln(stderr, "configuration is valid")
	return nil
}

func runRouter(ctx context.Context, stderr io.Writer, o *routerOptions) (err error) {
	pipe := &daemonPipe{}
	if o.daemonChild {
		pipe = openDaemonPipe()
		defer func() { pipe.fail(err) }()
	}
	addrs, err := o.listen()
	if err != nil {
		return err
	}
	cfg, warnings, err := o.load()
	if err != nil {
		return err
	}
	if o.daemon && !o.daemonChild {
		return daemonize()
	}
	level := slog.LevelInfo
	if o.verbose > 0 {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range warnings {
		logger.Warn("configuration: " + w)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var reloads *configReloader // set once the router runs; read by the signal goroutine after
	var reloadsMu sync.Mutex
	var sigWG sync.WaitGroup
	defer sigWG.Wait()
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
					reloadsMu.Lock()
					r := reloads
					reloadsMu.Unlock()
					if r != nil {
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

	// The admin port opens before the router listens, as corvid proxy's
	// does; it shows empty counters until the router is built.
	var running atomic.Pointer[routerStats]
	stats := func() proxy.Stats {
		if p := running.Load(); p != nil {
			return (*p).Stats()
		}
		return proxy.Stats{}
	}
	if o.admin != "" {
		host, _ := os.Hostname()
		as, err := admin.Listen(o.admin, admin.Config{
			Routes: []admin.Route{{Pattern: "GET /stats", Handler: proxy.StatsHandler(stats, "", "")}},
			Collectors: []prometheus.Collector{admin.NewTwemproxyCollector(host, stats),
				admin.NewRouteCollector(stats)},
			Dashboard: admin.RouterDashboard("corvid router "+host, stats),
		})
		if err != nil {
			return err
		}
		defer as.Close()
		logger.Info("admin port listening", "addr", as.Addr().String())
	}
	if o.numProxies != 1 {
		logger.Info("--num-proxies is accepted and has no effect: corvid runs on as many processors as its load needs", "num_proxies", o.numProxies)
	}
	if scaleProcs {
		defer scaleProcessors(ctx, logger)()
	}
	p, err := o.start(cfg, addrs, logger)
	if err != nil {
		return err
	}
	defer p.Close()
	if rs, ok := p.(routerStats); ok {
		running.Store(&rs)
	}
	if path := cfg.Source; !o.disableReload && o.fromFile() {
		r := newFileReloader(path, routerApply(path, o.routePrefix, &o.imports, p, logger), logger)
		r.imports = &o.imports
		reloadsMu.Lock()
		reloads = r
		reloadsMu.Unlock()
		watchCtx, stopWatch := context.WithCancel(ctx)
		var watchWG sync.WaitGroup
		defer func() { stopWatch(); watchWG.Wait() }()
		r.watch(watchCtx, &watchWG)
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, false); err != nil {
			return fmt.Errorf("cannot write pid file '%s': %w", o.pidFile, err)
		}
		defer os.Remove(o.pidFile)
	}
	logger.Info(fmt.Sprintf("corvid router %s started on pid %d", version, os.Getpid()), "config", cfg.Source, "listen", strings.Join(addrs, ","))
	pipe.ready()
	err = p.Serve(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	logger.Info("done")
	return err
}

// fromFile reports whether the configuration comes from a file, which
// is then watched.
func (o *routerOptions) fromFile() bool {
	src, err := o.source()
	return err == nil && src.path != ""
}

// routerApply parses a new version of the configuration file and hands
// it to the running router; imports records the files it imports.
func routerApply(path, prefix string, imports *importedFiles, p routerServer, logger *slog.Logger) func([]byte) ([]any, error) {
	return func(b []byte) ([]any, error) {
		imports.reset()
		cfg, warnings, err := route.ParseMcrouter(b, route.WithSource(path), route.WithImportDir(filepath.Dir(path)),
			route.WithRoutePrefix(prefix), route.WithReadFile(imports.read))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rr, ok := p.(routeReloader)
		if !ok {
			return nil, errors.New("this engine cannot reload route trees")
		}
		if err := rr.ReloadRoutes(cfg); err != nil {
			return nil, err
		}
		for _, w := range warnings {
			logger.Warn("configuration: " + w)
		}
		return []any{"pools", len(cfg.Pools)}, nil
	}
}

// importedFiles records the files a load of the configuration read
// through @import, with what each held (or that it could not be read),
// so that the reloader can tell when one changed: a change to an
// imported file reloads the configuration as a change to the file
// itself does. It is safe for concurrent use.
type importedFiles struct {
	mu    sync.Mutex // guards files
	files []importedFile
}

type importedFile struct {
	name string
	data []byte
	ok   bool // read without error
}

// reset forgets the files of the last load, before a new one.
func (f *importedFiles) reset() {
	f.mu.Lock()
	f.files = nil
	f.mu.Unlock()
}

// read is os.ReadFile, recorded: the route package's WithReadFile.
func (f *importedFiles) read(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	f.mu.Lock()
	f.files = append(f.files, importedFile{name: name, data: b, ok: err == nil})
	f.mu.Unlock()
	return b, err
}

// changed reports whether a file the last load read holds something
// else now (or can now be read, or no longer).
func (f *importedFiles) changed() bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	files := f.files
	f.mu.Unlock()
	for _, imp := range files {
		b, err := os.ReadFile(imp.name)
		if (err == nil) != imp.ok || !bytes.Equal(b, imp.data) {
			return true
		}
	}
	return false
}

// dirs returns the directories of the files the last load read.
func (f *importedFiles) dirs() []string {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var dirs []string
	for _, imp := range f.files {
		if d := filepath.Dir(imp.name); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

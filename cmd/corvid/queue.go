package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/corvidcache/corvid/admin"
	"github.com/corvidcache/corvid/internal/atomicfile"
	"github.com/corvidcache/corvid/internal/tcpnet"
	"github.com/corvidcache/corvid/queue"
)

// queueOptions holds corvid queue's command line.
type queueOptions struct {
	port        int
	listen      string
	dataDir     string
	configFile  string
	sync        string
	admin       string
	maxQueues   int
	daemon      bool
	pidFile     string
	verbose     int
	daemonChild bool

	// listening is told the address served once the server is up (tests).
	listening func(net.Addr)
}

func newQueueCommand() *cobra.Command { return queueCommand(&queueOptions{}) }

// queueCommand returns the queue command with its flags bound to o.
func queueCommand(o *queueOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Run a Kestrel-compatible queue server (memcached protocol: set enqueues, get dequeues)",
		Long: `corvid queue is a drop-in Kestrel: named FIFO queues over the memcached text
protocol, with reliable reads (get <queue>/open, /close, /abort), blocking
reads (get <queue>/t=<ms>), fanout queues and Kestrel's stats. The YAML
configuration file holds the defaults and per-queue settings; reload (the
command) or SIGHUP re-reads it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runQueue(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.IntVarP(&o.port, "port", "p", 22133, "TCP port to listen on (Kestrel's 22133)")
	f.StringVarP(&o.listen, "listen", "l", "", "interface to listen on (default: all)")
	f.StringVar(&o.dataDir, "data-dir", "./queue-data", "directory of the queues' journals")
	f.StringVar(&o.configFile, "config", "", "YAML file of queue settings (defaults and per-queue overrides)")
	f.StringVar(&o.sync, "sync", "always", "journal sync policy of queues whose configuration sets none: always, never, or an interval such as 10ms")
	f.IntVar(&o.maxQueues, "max-queues", queue.DefaultMaxQueues, "most queues at once (each holds a journal file open); a new queue beyond it is refused")
	f.StringVar(&o.admin, "admin", "", "serve the admin HTTP port (Prometheus metrics at /metrics, a dashboard at /, stats JSON at /stats, profiles under /debug/pprof/) on this host:port")
	f.BoolVarP(&o.daemon, "daemon", "d", false, "run as a daemon")
	f.StringVarP(&o.pidFile, "pidfile", "P", "", "save the PID in this file")
	f.CountVarP(&o.verbose, "verbose", "v", "log more (-vv: debug)")
	f.BoolVar(&o.daemonChild, "daemon-child", false, "internal: this process is the daemon started by -d")
	f.MarkHidden("daemon-child")
	return cmd
}

// checkSync checks a sync policy as the journal reads it.
func checkSync(s string) error {
	v := strings.TrimPrefix(s, "interval=")
	if s == "always" || s == "never" {
		return nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return nil
	}
	return usageError(fmt.Sprintf("corvid queue: bad --sync %q: want always, never or an interval such as 10ms", s))
}

// checkDataDir creates the data directory and makes sure it can be
// written, so that a bad one is reported at start, not at the first set.
func checkDataDir(dir string) error {
	if err := atomicfile.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create data directory %q: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".corvid-write-check-*")
	if err != nil {
		return fmt.Errorf("cannot write to data directory %q: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// loadQueueConfig reads the configuration file, if any, and checks each
// queue's sync policy.
func loadQueueConfig(path string) (*queue.FileConfig, error) {
	fc := &queue.FileConfig{}
	if path != "" {
		var err error
		if fc, err = queue.LoadConfig(path); err != nil {
			return nil, err
		}
	}
	check := func(where string, s queue.Settings) error {
		if s.Sync != nil {
			if err := checkSync(*s.Sync); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		return nil
	}
	if err := check("default", fc.Default); err != nil {
		return nil, err
	}
	for name, s := range fc.Queues {
		if err := check("queue "+name, s); err != nil {
			return nil, err
		}
	}
	return fc, nil
}

func runQueue(ctx context.Context, o *queueOptions) (err error) {
	pipe := &daemonPipe{}
	if o.daemonChild {
		pipe = openDaemonPipe()
		defer func() { pipe.fail(err) }()
	}
	logger := verboseLogger(o.verbose)
	if o.port < 0 || o.port > 65535 {
		return usageError(fmt.Sprintf("corvid queue: bad port %d", o.port))
	}
	if err := checkSync(o.sync); err != nil {
		return err
	}
	fc, err := loadQueueConfig(o.configFile)
	if err != nil {
		return err
	}
	if err := checkDataDir(o.dataDir); err != nil {
		return err
	}
	if o.daemon && !o.daemonChild {
		return daemonize()
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	addr := net.JoinHostPort(o.listen, strconv.Itoa(o.port))
	ln, err := net.Listen(tcpnet.Network(addr), addr)
	if err != nil {
		return fmt.Errorf("cannot listen: %w", err)
	}
	srv, err := queue.New(queue.Config{
		Listener:    ln,
		Backend:     queue.NewJournalBackend(o.dataDir, logger),
		Queues:      fc,
		DefaultSync: o.sync,
		MaxQueues:   o.maxQueues,
		Reload:      func() (*queue.FileConfig, error) { return loadQueueConfig(o.configFile) },
		Logger:      logger,
	})
	if err != nil {
		ln.Close()
		return err
	}
	// As the server: -P writes the pid file with or without -d.
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, true); err != nil {
			logger.Warn("cannot write pid file", "file", o.pidFile, "err", err)
		} else {
			defer os.Remove(o.pidFile)
		}
	}
	if o.admin != "" {
		as, err := admin.Listen(o.admin, admin.Config{
			Routes:     []admin.Route{{Pattern: "GET /stats", Handler: queueStatsHandler(srv)}},
			Collectors: []prometheus.Collector{admin.NewKestrelCollector(srv)},
			Dashboard:  admin.KestrelDashboard("corvid queue "+ln.Addr().String(), srv),
		})
		if err != nil {
			srv.Close()
			ln.Close()
			return err
		}
		defer as.Close()
		logger.Info("admin port listening", "addr", as.Addr().String())
	}
	logger.Info("listening", "addr", "tcp:"+ln.Addr().String())
	if o.listening != nil {
		o.listening(ln.Addr())
	}
	pipe.ready()
	// Reloads run in a goroutine of their own that nothing waits for: one
	// blocked on the configuration file (a hung network file system, a
	// FIFO) or on a queue holds up neither SIGTERM nor the stop.
	reloads := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reloads:
				if err := srv.Reload(); err != nil {
					logger.Error("cannot reload the configuration", "err", err)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				logger.Info("stopping", "signal", sig.String())
				cancel()
				return
			case <-hup:
				select {
				case reloads <- struct{}{}:
				default: // one is to run: it reads the file as it is then
				}
			}
		}
	}()
	err = srv.Serve(ctx)
	cancel()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// queueStatsHandler serves the stats as a JSON object.
func queueStatsHandler(srv *queue.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m := make(map[string]string)
		for _, kv := range srv.Stats() {
			m[kv[0]] = kv[1]
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m)
	})
}

// Package admin serves a corvid daemon's admin HTTP port: Prometheus
// metrics at /metrics, a live dashboard at / (its data at /api/stats),
// and Go's profiler under /debug/pprof/, so a running server can be
// profiled with "go tool pprof http://ADDR/debug/pprof/profile" (all of
// it but /debug/pprof/cmdline, which would show the daemon's command
// line and any secret on it to whoever reaches the port). The port
// only serves reads: another method than GET or HEAD gets 405, an
// unknown path 404.
//
// A daemon describes what it exports with a Config: its Prometheus
// collectors (NewMemcachedCollector for the server, NewTwemproxyCollector
// for the proxy and the router, NewRouteCollector for their route trees,
// NewKestrelCollector for the queue; a new daemon writes its own table of
// families the same way) and a Dashboard of charts and tables.
package admin

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	rpprof "runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corvidcache/corvid/internal/tcpnet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Route is a page a daemon adds to its admin port, such as the proxy's
// /stats.
type Route struct {
	// Pattern is an http.ServeMux pattern for GET, e.g. "GET /stats".
	Pattern string
	Handler http.Handler
}

// Config is what a daemon serves on its admin port. The zero value
// serves the profiler, the Go runtime's and process's metrics, and an
// empty dashboard.
type Config struct {
	// Routes are the daemon's own pages; each pattern starts with "GET ".
	Routes []Route
	// Collectors are registered for /metrics beside the Go runtime and
	// process collectors.
	Collectors []prometheus.Collector
	// Dashboard is the page at /; nil shows no charts.
	Dashboard *Dashboard
	// SampleInterval is how often the dashboard's charts are sampled
	// (default 1s); History how many samples they keep (default 300,
	// five minutes at one a second).
	SampleInterval time.Duration
	History        int
	// MetricsMaxAge is how long a rendered /metrics page is served again
	// (default 1s, so that any scrape rate costs at most one render a
	// second); negative renders it on every scrape.
	MetricsMaxAge time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request (default 1m).
	IdleTimeout time.Duration
	// MaxConns is how many connections the port holds at once (default
	// DefaultMaxConns); one more is closed as soon as it is accepted.
	MaxConns int
}

// DefaultMaxConns is Config.MaxConns's default: room for a few scrapers,
// dashboards and a profile being taken.
const DefaultMaxConns = 64

//go:embed ui
var ui embed.FS

// Server is a running admin port.
type Server struct {
	ln   net.Listener
	hs   *http.Server
	err  chan error
	stop chan struct{}
	done chan struct{} // closed when the sampler has stopped
}

// Listen opens the admin port on addr (host:port) and serves cfg on it
// until Close.
func Listen(addr string, cfg Config) (*Server, error) {
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, cfg.Collectors...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	for _, r := range cfg.Routes {
		if !strings.HasPrefix(r.Pattern, "GET ") {
			return nil, fmt.Errorf("cannot serve %q on the admin port: only GET routes", r.Pattern)
		}
		mux.Handle(r.Pattern, r.Handler)
	}
	d := &Dashboard{Title: "corvid"}
	if cfg.Dashboard != nil {
		dc := *cfg.Dashboard
		d = &dc
	}
	if d.Sample == nil {
		d.Sample = func() map[string]float64 { return nil }
	}
	h := newHistory(d, cmp.Or(cfg.History, 300))
	// Uncompressed: gzip was the largest part of a scrape's cost, and a
	// scrape is a few tens of kilobytes.
	mux.Handle("GET /metrics", &metricsPage{g: reg, maxAge: cmp.Or(cfg.MetricsMaxAge, time.Second)})
	mux.Handle("GET /api/stats", h)
	static, _ := fs.Sub(ui, "ui")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(static)))
	mux.Handle("GET /debug/pprof/", capSeconds(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/{$}", pprofIndex)
	// Not the command line: it may carry secrets (SASL password files,
	// TLS key paths, a proxy's credentials).
	mux.Handle("GET /debug/pprof/cmdline", http.NotFoundHandler())
	mux.Handle("GET /debug/pprof/profile", capSeconds(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.Handle("GET /debug/pprof/trace", capSeconds(pprof.Trace))

	ln, err := net.Listen(tcpnet.Network(addr), addr)
	if err != nil {
		return nil, fmt.Errorf("cannot open admin port: %w", err)
	}
	ln = &limitListener{Listener: ln, max: int64(cmp.Or(cfg.MaxConns, DefaultMaxConns))}
	s := &Server{
		ln:   ln,
		hs:   &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: cmp.Or(cfg.IdleTimeout, time.Minute)},
		err:  make(chan error, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go func() { s.err <- s.hs.Serve(ln) }()
	go func() {
		defer close(s.done)
		h.run(cmp.Or(cfg.SampleInterval, time.Second), s.stop)
	}()
	return s, nil
}

// Addr returns the address the admin port listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the admin port: requests in progress get a second to
// finish (a CPU profile being taken is cut short), then their
// connections are closed; the dashboard's sampling stops.
func (s *Server) Close() error {
	close(s.stop)
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.hs.Shutdown(ctx); err != nil {
		s.hs.Close()
	}
	if err := <-s.err; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MaxProfileSeconds is the longest CPU profile, trace or delta profile
// the admin port takes: Go's handlers take any length, and one request
// for a year would hold the CPU profiler (there is one per process) and
// a connection as long.
const MaxProfileSeconds = 300

// capSeconds refuses a profile whose seconds parameter is above
// MaxProfileSeconds.
func capSeconds(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.FormValue("seconds"); v != "" {
			if sec, err := strconv.ParseFloat(v, 64); err == nil && sec > MaxProfileSeconds {
				http.Error(w, fmt.Sprintf("seconds must be at most %d", MaxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		h(w, r)
	})
}

// pprofIndex lists the profiles the admin port serves: Go's own index
// would also link the command line, which it does not serve.
func pprofIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><title>/debug/pprof/</title></head><body>\n<h1>/debug/pprof/</h1>\n<table>\n")
	row := func(name, href string, count string) {
		fmt.Fprintf(&b, "<tr><td>%s</td><td><a href=\"%s\">%s</a></td></tr>\n", count, href, html.EscapeString(name))
	}
	profiles := rpprof.Profiles()
	slices.SortFunc(profiles, func(a, b *rpprof.Profile) int { return strings.Compare(a.Name(), b.Name()) })
	for _, p := range profiles {
		row(p.Name(), url.PathEscape(p.Name())+"?debug=1", strconv.Itoa(p.Count()))
	}
	row("profile", "profile?seconds=30", "")
	row("symbol", "symbol", "")
	row("trace", "trace?seconds=5", "")
	b.WriteString("</table>\n</body></html>\n")
	io.WriteString(w, b.String())
}

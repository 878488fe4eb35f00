// Package admin serves a corvid daemon's admin HTTP port. Today it serves
// Go's profiler under /debug/pprof/, so a running server can be profiled
// with "go tool pprof http://ADDR/debug/pprof/profile"; it is where the
// Prometheus metrics and the dashboard belong too.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Route is a page a daemon adds to its admin port, such as the proxy's
// /stats.
type Route struct {
	// Pattern is an http.ServeMux pattern, e.g. "GET /stats".
	Pattern string
	Handler http.Handler
}

// Handler returns the admin routes, with the daemon's own routes added.
func Handler(routes ...Route) http.Handler {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>corvid</title><p><a href="debug/pprof/">profiles</a></p>`)
	})
	return mux
}

// Server is a running admin port.
type Server struct {
	ln  net.Listener
	hs  *http.Server
	err chan error
}

// Listen opens the admin port on addr (host:port) and serves Handler(routes)
// on it until Close.
func Listen(addr string, routes ...Route) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot open admin port: %w", err)
	}
	s := &Server{
		ln:  ln,
		hs:  &http.Server{Handler: Handler(routes...), ReadHeaderTimeout: 10 * time.Second},
		err: make(chan error, 1),
	}
	go func() { s.err <- s.hs.Serve(ln) }()
	return s, nil
}

// Addr returns the address the admin port listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the admin port: requests in progress get a second to
// finish (a CPU profile being taken is cut short), then their
// connections are closed.
func (s *Server) Close() error {
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

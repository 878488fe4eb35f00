package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corvidcache/corvid/internal/tcpnet"
)

// NutcrackerVersion is the twemproxy release whose command line, stats and
// behaviour corvid proxy matches; the stats JSON reports it as "version",
// as corvid server reports memcached's version, so that tools which check
// it keep working.
const NutcrackerVersion = "0.5.0"

// statsWriteTimeout bounds how long a stats connection may take to read
// the JSON.
const statsWriteTimeout = 10 * time.Second

// StatsPortConfig configures a stats port. Its zero value is not usable:
// Stats is required.
type StatsPortConfig struct {
	// Addr is the host:port to listen on (twemproxy: -a and -s,
	// 0.0.0.0:22222 by default).
	Addr string
	// Stats returns the counters to print; it is called once per
	// connection, so every connection reads live counters.
	Stats func() Stats
	// Source is the "source" field; empty means this host's name.
	Source string
	// Version is the "version" field; empty means NutcrackerVersion.
	Version string
	// Logger receives accept errors; nil discards them.
	Logger *slog.Logger
}

// StatsPort is twemproxy's stats listener: each connection is sent the
// stats JSON and closed, so "nc host 22222" prints it. It is safe for
// concurrent use.
type StatsPort struct {
	cfg  StatsPortConfig
	ln   net.Listener
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// ListenStats opens a stats port on cfg.Addr and serves it until Close.
func ListenStats(cfg StatsPortConfig) (*StatsPort, error) {
	if cfg.Stats == nil {
		return nil, errors.New("proxy: a stats port needs a Stats function")
	}
	cfg.Source = statsSource(cfg.Source)
	if cfg.Version == "" {
		cfg.Version = NutcrackerVersion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen(tcpnet.Network(cfg.Addr), cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot open stats port: %w", err)
	}
	sp := &StatsPort{cfg: cfg, ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	sp.wg.Add(1)
	go sp.accept()
	return sp, nil
}

// Addr returns the address the stats port listens on.
func (sp *StatsPort) Addr() net.Addr { return sp.ln.Addr() }

// Close stops the stats port and closes the connections still being
// written to.
func (sp *StatsPort) Close() error {
	select {
	case <-sp.done:
		return nil
	default:
	}
	close(sp.done)
	err := sp.ln.Close()
	sp.mu.Lock()
	for c := range sp.conns {
		c.Close()
	}
	sp.mu.Unlock()
	sp.wg.Wait()
	return err
}

func (sp *StatsPort) accept() {
	defer sp.wg.Done()
	var delay time.Duration
	for {
		c, err := sp.ln.Accept()
		if err != nil {
			select {
			case <-sp.done:
				return
			default:
			}
			// Out of descriptors, most likely: back off rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			sp.cfg.Logger.Warn("stats port: accept failed", "err", err, "retry_in", delay)
			select {
			case <-sp.done:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		sp.mu.Lock()
		select {
		case <-sp.done:
			sp.mu.Unlock()
			c.Close()
			return
		default:
		}
		sp.conns[c] = struct{}{}
		sp.mu.Unlock()
		sp.wg.Add(1)
		go sp.send(c)
	}
}

// send writes the JSON to c and closes it; whatever c sends is ignored.
func (sp *StatsPort) send(c net.Conn) {
	defer sp.wg.Done()
	defer func() {
		sp.mu.Lock()
		delete(sp.conns, c)
		sp.mu.Unlock()
		c.Close()
	}()
	b := AppendStatsJSON(nil, sp.cfg.Stats(), sp.cfg.Source, sp.cfg.Version)
	c.SetWriteDeadline(time.Now().Add(statsWriteTimeout))
	c.Write(b)
}

// StatsHandler serves the stats JSON over HTTP, for the admin port's
// /stats. source and version are as in StatsPortConfig.
func StatsHandler(stats func() Stats, source, version string) http.Handler {
	source = statsSource(source)
	if version == "" {
		version = NutcrackerVersion
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b := AppendStatsJSON(nil, stats(), source, version)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
}

// statsSource returns source, or the host's name as twemproxy reports it
// ("unknown" when it has none) when source is empty.
func statsSource(source string) string {
	if source != "" {
		return source
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

// AppendStatsJSON appends s to dst as twemproxy's stats port prints it,
// byte for byte: the header fields, then each pool as an object holding its
// counters and then one object per server, pools and servers in the order
// twemproxy keeps them (sorted by name, shorter names first), and a final
// newline.
func AppendStatsJSON(dst []byte, s Stats, source, version string) []byte {
	j := statsJSON{b: dst}
	j.b = append(j.b, '{')
	j.str("service", "nutcracker")
	j.str("source", source)
	j.str("version", version)
	j.num("uptime", s.Uptime)
	j.num("timestamp", s.Timestamp)
	j.num("total_connections", s.TotalConnections)
	j.num("curr_connections", s.CurrConnections)
	pools := make([]*PoolStats, len(s.Pools))
	for i := range s.Pools {
		pools[i] = &s.Pools[i]
	}
	slices.SortStableFunc(pools, func(a, b *PoolStats) int { return nameOrder(a.Name, b.Name) })
	for _, p := range pools {
		j.begin(p.Name)
		for _, c := range p.Counters() {
			j.num(c.Name, c.Value)
		}
		servers := make([]*ServerStats, len(p.Servers))
		for i := range p.Servers {
			servers[i] = &p.Servers[i]
		}
		slices.SortStableFunc(servers, func(a, b *ServerStats) int { return nameOrder(a.Name, b.Name) })
		for _, sv := range servers {
			j.begin(sv.Name)
			for _, c := range sv.Counters() {
				j.num(c.Name, c.Value)
			}
			j.end()
		}
		j.end()
	}
	// corvid's route counters (route trees only): "routes", an object
	// per node by name, after the pools.
	if len(s.Routes) > 0 {
		j.begin("routes")
		for i := range s.Routes {
			r := &s.Routes[i]
			j.begin(r.Name)
			j.str("type", r.Type)
			for _, c := range r.Counters() {
				j.num(c.Name, c.Value)
			}
			j.end()
		}
		j.end()
	}
	// The last pool is followed by ",", which becomes the closing brace.
	// (Without pools, which a configuration cannot have, twemproxy's
	// would leave a comma before it.)
	if n := len(j.b); j.b[n-1] == ' ' {
		j.b = j.b[:n-2]
	} else {
		j.b = j.b[:n-1]
	}
	return append(j.b, "}\n"...)
}

// nameOrder is twemproxy's order of names: shorter first, then bytewise.
func nameOrder(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// statsJSON builds twemproxy's JSON: every field is followed by ", " and
// every object by ","; closing an object turns the separator that follows
// its last member into the brace.
type statsJSON struct{ b []byte }

func (j *statsJSON) key(k string) {
	j.b = appendJSONString(j.b, k)
	j.b = append(j.b, ':')
}

func (j *statsJSON) str(k, v string) {
	j.key(k)
	j.b = appendJSONString(j.b, v)
	j.b = append(j.b, ", "...)
}

func (j *statsJSON) num(k string, v int64) {
	j.key(k)
	j.b = strconv.AppendInt(j.b, v, 10)
	j.b = append(j.b, ", "...)
}

func (j *statsJSON) begin(k string) {
	j.key(k)
	j.b = append(j.b, " {"...)
}

// end closes the innermost open object. After a field the separator ", "
// becomes "},"; after a nested object, whose "}," ends the buffer, one more
// brace is added: "}},".
func (j *statsJSON) end() {
	n := len(j.b)
	if j.b[n-2] == ',' {
		j.b[n-2], j.b[n-1] = '}', ','
		return
	}
	j.b[n-1] = '}'
	j.b = append(j.b, ',')
}

// appendJSONString appends s quoted. twemproxy prints names as they are;
// corvid escapes the quote, the backslash and control characters so that a
// name holding them still gives valid JSON.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

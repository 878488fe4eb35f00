package top

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Errors a Poller returns, wrapped with the server's address.
var (
	// ErrNotMemcached is returned when the server answers "stats" with
	// something other than STAT lines.
	ErrNotMemcached = errors.New("top: not a memcached server")
	// ErrReplyTooLong is returned for a reply past the poller's bounds.
	ErrReplyTooLong = errors.New("top: reply too long")
)

const (
	defaultTimeout     = 2 * time.Second
	defaultWatchWindow = 500 * time.Millisecond
	maxLine            = 4096    // longest reply line read
	maxLines           = 1 << 16 // most lines in one stats reply
	maxHotKeys         = 32      // hot keys kept per sample
	maxWatchKeys       = 1 << 16 // distinct keys counted in one watch window
)

// HotKey is a key and how often it is requested, per second.
type HotKey struct {
	Key  string // as the server names it; may hold any byte
	Rate float64
}

// Sample is one poll of a server.
type Sample struct {
	Time  time.Time
	Stats map[string]string // "stats", by name
	// Classes holds "stats slabs" and "stats items" by class id, each
	// under its name without the "N:" or "items:N:" prefix.
	Classes map[int]map[string]string
	// HotKeys are the hottest keys, hottest first.
	HotKeys []HotKey
	// HotKeySource says where HotKeys came from: "stats hotkeys",
	// "watch fetchers", or "" when the server gave none.
	HotKeySource string
}

// Int returns the general stat name as an integer, or 0.
func (s *Sample) Int(name string) uint64 {
	v, _ := strconv.ParseUint(s.Stats[name], 10, 64)
	return v
}

// Poller fetches samples from one server. Its zero Timeout and
// WatchWindow mean 2 s and 500 ms. A Poller holds no connection between
// fetches and is safe for concurrent use.
type Poller struct {
	Addr string
	// Timeout bounds the dial and the stats replies together.
	Timeout time.Duration
	// WatchWindow is how long a server without "stats hotkeys" is
	// watched ("watch fetchers") to count its hottest keys; negative
	// turns the watching off.
	WatchWindow time.Duration
}

// Fetch polls the server once.
func (p Poller) Fetch(ctx context.Context) (Sample, error) {
	s, watch, err := p.fetchStats(ctx)
	if err != nil {
		return Sample{}, err
	}
	if watch && p.WatchWindow >= 0 {
		window := p.WatchWindow
		if window == 0 {
			window = defaultWatchWindow
		}
		if keys, err := p.watchFetchers(ctx, window); err == nil {
			s.HotKeys, s.HotKeySource = keys, "watch fetchers"
		}
	}
	return s, nil
}

func (p Poller) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return defaultTimeout
}

// dial connects within the poller's timeout and gives the connection a
// deadline of the timeout plus extra.
func (p Poller) dial(ctx context.Context, extra time.Duration) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(p.timeout() + extra))
	return nc, nil
}

// fetchStats sends the stats requests at once and reads their replies.
// watch reports that the server has no hot-key stats of its own.
func (p Poller) fetchStats(ctx context.Context) (s Sample, watch bool, err error) {
	nc, err := p.dial(ctx, 0)
	if err != nil {
		return s, false, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if _, err := nc.Write([]byte("stats\r\nstats slabs\r\nstats items\r\nstats hotkeys\r\n")); err != nil {
		return s, false, err
	}
	r := bufio.NewReaderSize(nc, maxLine)
	s.Time = time.Now()
	general, ok, err := readStats(r)
	if err != nil {
		return s, false, err
	}
	if !ok {
		return s, false, ErrNotMemcached
	}
	s.Stats = make(map[string]string, len(general))
	for _, kv := range general {
		s.Stats[kv[0]] = kv[1]
	}
	s.Classes = map[int]map[string]string{}
	for range 2 { // stats slabs, stats items
		kvs, _, err := readStats(r)
		if err != nil {
			return s, false, err
		}
		for _, kv := range kvs {
			name := strings.TrimPrefix(kv[0], "items:")
			id, field, ok := strings.Cut(name, ":")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(id)
			if err != nil {
				continue
			}
			if s.Classes[n] == nil {
				s.Classes[n] = map[string]string{}
			}
			s.Classes[n][field] = kv[1]
		}
	}
	hot, ok, err := readStats(r)
	if err != nil {
		return s, false, err
	}
	if !ok {
		return s, true, nil // memcached: ERROR
	}
	for _, kv := range hot {
		if kv[0] == "hotkeys" { // "STAT hotkeys disabled"
			return s, true, nil
		}
		if !strings.HasPrefix(kv[0], "requests:") {
			continue
		}
		// The value is "<key> <rate>"; the key holds no space.
		key, rate, ok := strings.Cut(kv[1], " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(rate, 64)
		if err != nil {
			continue
		}
		s.HotKeys = append(s.HotKeys, HotKey{Key: key, Rate: f})
	}
	s.HotKeySource = "stats hotkeys"
	return s, false, nil
}

// readStats reads one stats reply: STAT lines up to END. ok is false when
// the reply is one error line (ERROR, CLIENT_ERROR, SERVER_ERROR) instead,
// and err is ErrNotMemcached for any other line.
func readStats(r *bufio.Reader) (kvs [][2]string, ok bool, err error) {
	for range maxLines {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, false, ErrReplyTooLong
		}
		if err != nil {
			return nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.Equal(line, []byte("END")):
			return kvs, true, nil
		case bytes.HasPrefix(line, []byte("STAT ")):
			name, value, _ := strings.Cut(string(line[5:]), " ")
			kvs = append(kvs, [2]string{name, value})
		case bytes.Equal(line, []byte("ERROR")), bytes.HasPrefix(line, []byte("CLIENT_ERROR")),
			bytes.HasPrefix(line, []byte("SERVER_ERROR")):
			if len(kvs) > 0 {
				return nil, false, fmt.Errorf("%w: %q after STAT lines", ErrNotMemcached, line)
			}
			return nil, false, nil
		default:
			if len(line) > 40 {
				line = line[:40]
			}
			return nil, false, fmt.Errorf("%w: it answered %q", ErrNotMemcached, line)
		}
	}
	return nil, false, ErrReplyTooLong
}

// watchFetchers counts the keys a "watch fetchers" connection reports
// during window and returns the hottest, with their rate per second.
func (p Poller) watchFetchers(ctx context.Context, window time.Duration) ([]HotKey, error) {
	nc, err := p.dial(ctx, window)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if _, err := nc.Write([]byte("watch fetchers\r\n")); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(nc, maxLine)
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if string(bytes.TrimRight(line, "\r\n")) != "OK" {
		return nil, fmt.Errorf("%w: watch answered %q", ErrNotMemcached, bytes.TrimSpace(line))
	}
	start := time.Now()
	nc.SetReadDeadline(start.Add(window))
	counts := map[string]int{}
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line too long to be a log line: skip its rest.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			break // the window is over (or the server went away)
		}
		if key, ok := watchKey(line); ok {
			if _, seen := counts[key]; seen || len(counts) < maxWatchKeys {
				counts[key]++
			}
		}
	}
	secs := time.Since(start).Seconds()
	if secs < window.Seconds() {
		secs = window.Seconds()
	}
	keys := make([]HotKey, 0, len(counts))
	for k, n := range counts {
		keys = append(keys, HotKey{Key: k, Rate: float64(n) / secs})
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Rate != keys[j].Rate {
			return keys[i].Rate > keys[j].Rate
		}
		return keys[i].Key < keys[j].Key
	})
	if len(keys) > maxHotKeys {
		keys = keys[:maxHotKeys]
	}
	return keys, nil
}

// watchKey returns the URL-decoded key of a watch log line.
func watchKey(line []byte) (string, bool) {
	for _, f := range bytes.Fields(line) {
		if k, ok := bytes.CutPrefix(f, []byte("key=")); ok {
			if d, err := url.PathUnescape(string(k)); err == nil {
				return d, true
			}
			return string(k), true
		}
	}
	return "", false
}

package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/corvidcache/corvid/internal/testutil"
)

// twoPools is a snapshot with every counter distinct, its pools and servers
// in file order.
func twoPools() Stats {
	n := int64(0)
	next := func() int64 { n++; return n }
	server := func(name string) ServerStats {
		return ServerStats{Name: name, ServerEOF: next(), ServerErr: next(), ServerTimedout: next(),
			ServerConnections: next(), ServerEjectedAt: next(), Requests: next(), RequestBytes: next(),
			Responses: next(), ResponseBytes: next(), InQueue: next(), InQueueBytes: next(),
			OutQueue: next(), OutQueueBytes: next()}
	}
	pool := func(name string, servers ...ServerStats) PoolStats {
		return PoolStats{Name: name, ClientEOF: next(), ClientErr: next(), ClientConnections: next(),
			ServerEjects: next(), ForwardError: next(), Fragments: next(), Servers: servers}
	}
	return Stats{Uptime: 7, Timestamp: 1700000000, TotalConnections: 12, CurrConnections: 3,
		Pools: []PoolStats{
			pool("alpha", server("127.0.0.1"), server("second")),
			pool("b", server("127.0.0.1:11212")),
		}}
}

func TestStatsJSONLayout(t *testing.T) {
	got := string(AppendStatsJSON([]byte("prefix:"), twoPools(), "host1", "0.5.0"))
	// twemproxy's order: "b" before "alpha", "second" before "127.0.0.1".
	want := `prefix:{"service":"nutcracker", "source":"host1", "version":"0.5.0", "uptime":7, "timestamp":1700000000, "total_connections":12, "curr_connections":3, ` +
		`"b": {"client_eof":46, "client_err":47, "client_connections":48, "server_ejects":49, "forward_error":50, "fragments":51, ` +
		`"127.0.0.1:11212": {"server_eof":33, "server_err":34, "server_timedout":35, "server_connections":36, "server_ejected_at":37, "requests":38, "request_bytes":39, "responses":40, "response_bytes":41, "in_queue":42, "in_queue_bytes":43, "out_queue":44, "out_queue_bytes":45}},` +
		`"alpha": {"client_eof":27, "client_err":28, "client_connections":29, "server_ejects":30, "forward_error":31, "fragments":32, ` +
		`"second": {"server_eof":14, "server_err":15, "server_timedout":16, "server_connections":17, "server_ejected_at":18, "requests":19, "request_bytes":20, "responses":21, "response_bytes":22, "in_queue":23, "in_queue_bytes":24, "out_queue":25, "out_queue_bytes":26},` +
		`"127.0.0.1": {"server_eof":1, "server_err":2, "server_timedout":3, "server_connections":4, "server_ejected_at":5, "requests":6, "request_bytes":7, "responses":8, "response_bytes":9, "in_queue":10, "in_queue_bytes":11, "out_queue":12, "out_queue_bytes":13}}}` + "\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestStatsJSONIsValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Stats
	}{
		{"two pools", twoPools()},
		{"no pools", Stats{Uptime: 1}},
		{"pool without servers", Stats{Pools: []PoolStats{{Name: "p"}}}},
		{"names to escape", Stats{Pools: []PoolStats{{Name: "a\"b\\c\n", Servers: []ServerStats{{Name: "\x01"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendStatsJSON(nil, tc.s, "h\"ost", "0.5.0")
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			if m["source"] != "h\"ost" || m["service"] != "nutcracker" {
				t.Errorf("header: %s", b)
			}
			for _, p := range tc.s.Pools {
				pm, ok := m[p.Name].(map[string]any)
				if !ok {
					t.Fatalf("pool %q missing: %s", p.Name, b)
				}
				for _, s := range p.Servers {
					if _, ok := pm[s.Name].(map[string]any); !ok {
						t.Errorf("server %q missing: %s", s.Name, b)
					}
				}
			}
		})
	}
}

// numbers matches a JSON number value, to compare layouts whatever the
// counters.
var numbers = regexp.MustCompile(`":[0-9]+`)

func TestStatsJSONMatchesNutcracker(t *testing.T) {
	bin := testutil.NutcrackerPath()
	if bin == "" {
		t.Skip("nutcracker is not installed")
	}
	// Names of every length order, a named server, a server on memcached's
	// port (named by its host alone) and one on another port.
	conf := func(listen []string) string {
		return fmt.Sprintf(`alpha:
  listen: %s
  servers:
   - 127.0.0.1:11211:1
   - 127.0.0.1:11212:1 second
   - 127.0.0.1:11213:2
b:
  listen: %s
  distribution: modula
  servers:
   - 127.0.0.1:11212:1
`, listen[0], listen[1])
	}
	got := nutcrackerStats(t, bin, conf)

	s := Stats{Pools: []PoolStats{
		{Name: "alpha", Servers: []ServerStats{{Name: "127.0.0.1"}, {Name: "second"}, {Name: "127.0.0.1:11213"}}},
		{Name: "b", Servers: []ServerStats{{Name: "127.0.0.1:11212"}}},
	}}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("nutcracker's JSON: %v: %s", err, got)
	}
	source, _ := m["source"].(string)
	want := AppendStatsJSON(nil, s, source, NutcrackerVersion)
	g, w := numbers.ReplaceAll(got, []byte(`":0`)), numbers.ReplaceAll(want, []byte(`":0`))
	if string(g) != string(w) {
		t.Errorf("nutcracker:\n%s\ncorvid:\n%s", g, w)
	}
	if h, err := os.Hostname(); err == nil && h != source {
		t.Errorf("nutcracker's source %q, this host %q", source, h)
	}
}

// nutcrackerStats runs nutcracker on conf (given the two listen addresses)
// and returns what its stats port sends.
func nutcrackerStats(t *testing.T, bin string, conf func(listen []string) string) []byte {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		ports := testutil.FreePorts(t, 3)
		listen := []string{"127.0.0.1:" + strconv.Itoa(ports[0]), "127.0.0.1:" + strconv.Itoa(ports[1])}
		path := filepath.Join(dir, "nutcracker.yml")
		if err := os.WriteFile(path, []byte(conf(listen)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", path, "-s", strconv.Itoa(ports[2]), "-a", "127.0.0.1",
			"-o", filepath.Join(dir, "nutcracker.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		b, err := readStatsUntil(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])), exited)
		cmd.Process.Kill()
		<-exited
		if err == nil {
			return b
		}
		if attempt == 3 {
			log, _ := os.ReadFile(filepath.Join(dir, "nutcracker.log"))
			t.Fatalf("%v\n%s", err, log)
		}
	}
}

// readStatsUntil polls addr until it sends its stats, or exited is closed,
// or ten seconds pass.
func readStatsUntil(addr string, exited <-chan struct{}) ([]byte, error) {
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		b, err := readStats(addr)
		if err == nil {
			return b, nil
		}
		select {
		case <-exited:
			return nil, errors.New("nutcracker exited")
		default:
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(delay)
	}
}

// readStats connects to a stats port and reads until it closes.
func readStats(addr string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return io.ReadAll(c)
}

func TestStatsPortServesLiveCountersAndCloses(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var calls atomic.Int64
	sp, err := ListenStats(StatsPortConfig{
		Addr: "127.0.0.1:0",
		Stats: func() Stats {
			s := twoPools()
			s.Uptime = calls.Add(1)
			return s
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	host, _ := os.Hostname()
	for i := int64(1); i <= 3; i++ {
		b, err := readStats(sp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s := twoPools()
		s.Uptime = i
		if want := AppendStatsJSON(nil, s, statsSource(""), NutcrackerVersion); string(b) != string(want) {
			t.Fatalf("connection %d got\n%s\nwant\n%s", i, b, want)
		}
		if host != "" && !regexp.MustCompile(`"source":"`+regexp.QuoteMeta(host)+`"`).Match(b) {
			t.Errorf("source is not the host name %q: %.100s", host, b)
		}
	}
	// A client that sends something and never reads does not hold the
	// port, and Close does not wait for it.
	c, err := net.Dial("tcp", sp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("stats\r\n"))
	if _, err := readStats(sp.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", sp.Addr().String(), time.Second); err == nil {
		t.Error("the stats port still accepts connections after Close")
	}
}

func TestListenStatsErrors(t *testing.T) {
	if _, err := ListenStats(StatsPortConfig{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("no Stats function: no error")
	}
	sp, err := ListenStats(StatsPortConfig{Addr: "127.0.0.1:0", Stats: twoPools})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, err := ListenStats(StatsPortConfig{Addr: sp.Addr().String(), Stats: twoPools}); err == nil {
		t.Error("a port in use: no error")
	}
}

func TestStatsHandler(t *testing.T) {
	srv := httptest.NewServer(StatsHandler(twoPools, "h", ""))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if want := AppendStatsJSON(nil, twoPools(), "h", NutcrackerVersion); string(b) != string(want) {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
}

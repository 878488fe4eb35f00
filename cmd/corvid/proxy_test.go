//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/nutcracker"
	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/proxy"
	"github.com/spf13/pflag"
)

// runProxyCommand runs "corvid proxy args" in this process with start as
// the proxy, and returns its standard error and error.
func runProxyCommand(ctx context.Context, start func(*nutcracker.Config, *slog.Logger) (proxyServer, error), args ...string) (string, error) {
	cmd := proxyCommand(&proxyOptions{start: start})
	var stderr bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(ctx)
	return stderr.String(), err
}

func noProxy(*nutcracker.Config, *slog.Logger) (proxyServer, error) {
	panic("the proxy must not start")
}

func TestProxyFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want proxySettings
		opts func(o *proxyOptions) bool
	}{
		{"defaults", nil, proxySettings{logLevel: 5, statsPort: 22222, statsInterval: 30000, mbufSize: 16384},
			func(o *proxyOptions) bool {
				return o.confFile == "conf/nutcracker.yml" && o.statsAddr == "0.0.0.0" && o.output == "" &&
					o.pidFile == "" && !o.daemon && !o.testConf && o.admin == "" && !o.eventLoop
			}},
		{"event loop", []string{"--event-loop"}, proxySettings{logLevel: 5, statsPort: 22222, statsInterval: 30000, mbufSize: 16384},
			func(o *proxyOptions) bool { return o.eventLoop }},
		{"short", []string{"-v", "11", "-s", "1", "-i", "0", "-m", "512", "-c", "x.yml", "-a", "127.0.0.1",
			"-o", "log", "-p", "pid", "-d", "-t"},
			proxySettings{logLevel: 11, statsPort: 1, statsInterval: 0, mbufSize: 512},
			func(o *proxyOptions) bool {
				return o.confFile == "x.yml" && o.statsAddr == "127.0.0.1" && o.output == "log" &&
					o.pidFile == "pid" && o.daemon && o.testConf
			}},
		{"long", []string{"--verbose=0", "--stats-port=65535", "--stats-interval=100", "--mbuf-size=16777216",
			"--conf-file=y.yml", "--stats-addr=::1", "--output=l", "--pid-file=p", "--daemonize", "--test-conf",
			"--admin=127.0.0.1:0"},
			proxySettings{logLevel: 0, statsPort: 65535, statsInterval: 100, mbufSize: 16777216},
			func(o *proxyOptions) bool {
				return o.confFile == "y.yml" && o.statsAddr == "::1" && o.output == "l" && o.pidFile == "p" &&
					o.daemon && o.testConf && o.admin == "127.0.0.1:0"
			}},
		{"verbosity above the most verbose", []string{"-v", "99"},
			proxySettings{logLevel: 99, statsPort: 22222, statsInterval: 30000, mbufSize: 16384},
			func(o *proxyOptions) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &proxyOptions{}
			cmd := proxyCommand(o)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := o.settings()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("settings %+v, want %+v", got, tc.want)
			}
			if !tc.opts(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

func TestProxyUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the first line; nutcracker's usage follows
	}{
		{[]string{"-x"}, "nutcracker: invalid option -- 'x'"},
		{[]string{"-?"}, "nutcracker: invalid option -- '?'"},
		{[]string{"-v", "abc"}, "nutcracker: option -v requires a number"},
		{[]string{"-v", "-1"}, "nutcracker: option -v requires a number"},
		{[]string{"-v", ""}, "nutcracker: option -v requires a number"},
		{[]string{"-s", "0"}, "nutcracker: option -s value 0 is not a valid port"},
		{[]string{"-s", "65536"}, "nutcracker: option -s value 65536 is not a valid port"},
		{[]string{"-s", "99999999999"}, "nutcracker: option -s value 1215752191 is not a valid port"}, // wrapped as a C int
		{[]string{"-s", "2147483648"}, "nutcracker: option -s requires a number"},
		{[]string{"-i", "1s"}, "nutcracker: option -i requires a number"},
		{[]string{"-m", "0"}, "nutcracker: option -m requires a non-zero number"},
		{[]string{"-m", "511"}, "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes"},
		{[]string{"-m", "16777217"}, "nutcracker: mbuf chunk size must be between 512 and 16777216 bytes"},
		{[]string{"-c"}, "nutcracker: option -c requires a file name"},
		{[]string{"--output"}, "nutcracker: option -o requires a file name"},
		{[]string{"-p"}, "nutcracker: option -p requires a file name"},
		{[]string{"-a"}, "nutcracker: option -a requires a string"},
		{[]string{"-s"}, "nutcracker: option -s requires a number"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := runProxyCommand(context.Background(), noProxy, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			first, rest, _ := strings.Cut(err.Error(), "\n")
			if first != tc.want {
				t.Errorf("got %q, want %q", first, tc.want)
			}
			if !strings.HasPrefix(rest, "Usage: nutcracker ") {
				t.Errorf("no usage after the error: %q", rest)
			}
			if bin := testutil.NutcrackerPath(); bin != "" {
				out, err := exec.Command(bin, tc.args...).CombinedOutput()
				if code := exitCode(err); code != 1 {
					t.Errorf("nutcracker exits %d", code)
				}
				if nf, _, _ := strings.Cut(string(out), "\n"); nf != first {
					t.Errorf("nutcracker says %q, corvid %q", nf, first)
				}
			}
		})
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// nutcrackerStderr runs nutcracker with args and returns its standard
// error and exit code, skipping the test when it is not installed.
func nutcrackerStderr(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := testutil.NutcrackerPath()
	if bin == "" {
		t.Skip("nutcracker is not installed")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.String(), exitCode(err)
}

func TestProxyVersionHelpAndStatsDescription(t *testing.T) {
	// The defaults Debian's nutcracker is built with, and twemproxy's own.
	debian := strings.NewReplacer(
		"(default: /var/log/nutcracker/nutcracker.log)", "(default: stderr)",
		"(default: /etc/nutcracker/nutcracker.yml)", "(default: conf/nutcracker.yml)",
		"(default: /run/nutcracker/nutcracker.pid)", "(default: off)",
	)
	for _, args := range [][]string{{"-V"}, {"--version"}, {"-h"}, {"--help"}, {"-D"}, {"--describe-stats"}} {
		t.Run(args[0], func(t *testing.T) {
			got, err := runProxyCommand(context.Background(), noProxy, args...)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(got, "\n")
			if want := "This is nutcracker-0.5.0 (corvid " + version + ")"; first != want {
				t.Errorf("first line %q, want %q", first, want)
			}
			// corvid's own options follow nutcracker's usage.
			if args[0] == "-h" || args[0] == "--help" {
				i := strings.Index(got, "corvid:\r\n")
				if i < 0 {
					t.Fatalf("no corvid section in %q", got)
				}
				// nutcracker's options all have a letter; corvid's own
				// are listed in its section.
				proxyCommand(&proxyOptions{}).Flags().VisitAll(func(f *pflag.Flag) {
					if !f.Hidden && f.Shorthand == "" && !strings.Contains(got[i:], "--"+f.Name+"=") {
						t.Errorf("--%s is not in the corvid section of %q", f.Name, got[i:])
					}
				})
				got = got[:i]
			}
			want, code := nutcrackerStderr(t, args...)
			if code != 0 {
				t.Errorf("nutcracker exits %d", code)
			}
			want = debian.Replace(strings.Replace(want, "This is nutcracker-0.5.0\n", first+"\n", 1))
			if got != want {
				t.Errorf("got\n%q\nnutcracker\n%q", got, want)
			}
		})
	}
}

// proxyConfigs are nutcracker.yml files -t is checked on.
var proxyConfigs = map[string]string{
	"good.yml": `alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  servers:
   - 127.0.0.1:11211:1
   - 127.0.0.1:11212:1 second
beta:
  listen: /tmp/corvid-test-beta.sock 0666
  servers:
   - 127.0.0.1:11211:1
`,
	"unknown-directive.yml": "alpha:\n  listen: 127.0.0.1:22121\n  hashx: fnv1a_64\n  servers:\n   - 127.0.0.1:11211:1\n",
	"no-servers.yml":        "alpha:\n  listen: 127.0.0.1:22121\n",
	"bad-yaml.yml":          "alpha:\n  listen: 127.0.0.1:22121\n  timeout: [\n",
	"bad-hash.yml":          "alpha:\n  listen: 127.0.0.1:22121\n  hash: nope\n  servers:\n   - 127.0.0.1:11211:1\n",
	"redis.yml":             "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
	"unresolved.yml":        "alpha:\n  listen: no-such-host.invalid:22121\n  servers:\n   - 127.0.0.1:11211:1\n",
	"port-0.yml":            "alpha:\n  listen: 127.0.0.1:0\n  servers:\n   - 127.0.0.1:11211:1\n",
	"bracketed.yml":         "alpha:\n  listen: \"[::1]:22121\"\n  servers:\n   - 127.0.0.1:11211:1\n",
}

func TestProxyTestConf(t *testing.T) {
	dir := t.TempDir()
	for name, text := range proxyConfigs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		file   string
		ok     bool
		reason string // in the line before the verdict
	}{
		{"good.yml", true, ""},
		{"unknown-directive.yml", false, `unknown directive "hashx"`},
		{"no-servers.yml", false, `"servers" is missing`},
		{"bad-yaml.yml", false, "yaml"},
		{"bad-hash.yml", false, `unknown hash "nope"`},
		{"missing.yml", false, "no such file"},
		// nutcracker resolves a listen host as it reads the file.
		{"unresolved.yml", false, `listen host "no-such-host.invalid" does not resolve`},
		{"port-0.yml", false, `listen "127.0.0.1:0" has an invalid port`},
		{"bracketed.yml", false, `does not resolve`},
		// nutcracker accepts redis pools; corvid refuses them in one line.
		{"redis.yml", false, `pool "alpha": redis pools are not supported`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			stderr, err := runProxyCommand(context.Background(), noProxy, "-t", "-c", path)
			verdict := "nutcracker: configuration file '" + path + "' syntax is "
			if tc.ok {
				if err != nil || stderr != verdict+"ok\n" {
					t.Fatalf("stderr %q, err %v", stderr, err)
				}
			} else {
				if err == nil || stderr != "" {
					t.Fatalf("stderr %q, err %v", stderr, err)
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != 2 || !strings.Contains(lines[0], tc.reason) || lines[1] != verdict+"invalid" {
					t.Fatalf("error %q, want the reason (%q) then %q", err, tc.reason, verdict+"invalid")
				}
			}
			if tc.file == "redis.yml" {
				return
			}
			out, code := nutcrackerStderr(t, "-t", "-c", path)
			// nutcracker prints the verdict twice for some invalid files.
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			last := lines[len(lines)-1]
			if tc.ok != (code == 0) || (tc.ok && last != verdict+"ok") || (!tc.ok && last != verdict+"invalid") {
				t.Errorf("nutcracker exits %d with %q", code, out)
			}
		})
	}
}

// fakeProxy stands for package proxy's Proxy.
type fakeProxy struct {
	stats   proxy.Stats
	served  atomic.Bool
	closed  atomic.Bool
	reloads atomic.Int32
}

func (f *fakeProxy) Serve(ctx context.Context) error {
	f.served.Store(true)
	<-ctx.Done()
	return ctx.Err()
}
func (f *fakeProxy) Close() error               { f.closed.Store(true); return nil }
func (f *fakeProxy) Addrs() map[string]net.Addr { return map[string]net.Addr{} }
func (f *fakeProxy) Stats() proxy.Stats         { return f.stats }
func (f *fakeProxy) Reload(*nutcracker.Config) error {
	f.reloads.Add(1)
	return nil
}

// TestProxyRunsAndStopsOnSignal runs the command in this process: the stats
// port, the admin port's /stats and the pid file are served while it runs;
// SIGHUP reopens the log and does not stop it; SIGTERM does, and leaves no
// pid file.
func TestProxyRunsAndStopsOnSignal(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(proxyConfigs["good.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := &fakeProxy{stats: proxy.Stats{Uptime: 5, Pools: []proxy.PoolStats{
		{Name: "alpha", Fragments: 3, Servers: []proxy.ServerStats{{Name: "127.0.0.1", Requests: 42}, {Name: "second"}}},
		{Name: "beta", Servers: []proxy.ServerStats{{Name: "127.0.0.1"}}},
	}, Routes: []proxy.RouteStats{{Name: "fo", Type: "FailoverRoute", Requests: 7, Failovers: 2}}}}
	var gotPools []string
	start := func(cfg *nutcracker.Config, _ *slog.Logger) (proxyServer, error) {
		for _, p := range cfg.Pools {
			gotPools = append(gotPools, p.Name)
		}
		return fake, nil
	}
	ports := testutil.FreePorts(t, 2)
	statsAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	adminAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	pidFile := filepath.Join(dir, "proxy.pid")
	logPath := filepath.Join(dir, "proxy.log")
	done := make(chan error, 1)
	go func() {
		_, err := runProxyCommand(context.Background(), start, "-c", conf, "-s", strconv.Itoa(ports[0]),
			"-a", "127.0.0.1", "-p", pidFile, "-o", logPath, "--admin", adminAddr, "-v", "6")
		done <- err
	}()
	stopped := false
	defer func() {
		if !stopped {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
			<-done
		}
	}()

	var statsJSON []byte
	testutil.WaitFor(t, func() bool {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("the proxy command ended: %v", err)
		default:
		}
		// The pid file is written, whole, once the proxy's listeners are
		// open; Serve is called right after.
		pid, err := os.ReadFile(pidFile)
		return err == nil && string(pid) == strconv.Itoa(os.Getpid()) && fake.served.Load()
	})
	statsJSON, err := readAll(statsAddr)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := proxy.AppendStatsJSON(nil, fake.stats, host, proxy.NutcrackerVersion)
	if string(statsJSON) != string(want) {
		t.Errorf("stats port:\n%s\nwant\n%s", statsJSON, want)
	}
	if strings.Join(gotPools, ",") != "alpha,beta" {
		t.Errorf("the proxy was started with pools %v", gotPools)
	}
	resp, err := http.Get("http://" + adminAddr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != string(want) {
		t.Errorf("admin /stats:\n%s\nwant\n%s", body, want)
	}
	resp, err = http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`twemproxy_client_connections{cluster="alpha",twemproxy="`, `twemproxy_server_up{cluster="beta",server=`,
		`corvid_route_failovers_total{route="fo",type="FailoverRoute"} 2`} {
		if !strings.Contains(string(body), w) {
			t.Errorf("admin /metrics has no %q:\n%.2000s", w, body)
		}
	}

	// SIGHUP: the log file is reopened (a rotated log is written anew)
	// and the proxy keeps running.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "SIGHUP")
	})
	if b, _ := os.ReadFile(logPath + ".1"); !strings.Contains(string(b), "started on pid") {
		t.Errorf("the log before rotation: %q", b)
	}
	if _, err := readAll(statsAddr); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not stop the proxy command")
	}
	if !fake.closed.Load() {
		t.Error("the proxy was not closed")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the pid file is left: %v", err)
	}
	if _, err := readAll(statsAddr); err == nil {
		t.Error("the stats port is still open")
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "signal=terminated") {
		t.Errorf("log: %q", b)
	}
}

func TestProxyStartErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(proxyConfigs["good.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	redis := filepath.Join(dir, "redis.yml")
	if err := os.WriteFile(redis, []byte(proxyConfigs["redis.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	pidFile := filepath.Join(dir, "proxy.pid")
	start := func(*nutcracker.Config, *slog.Logger) (proxyServer, error) { return &fakeProxy{}, nil }
	failing := func(*nutcracker.Config, *slog.Logger) (proxyServer, error) { return nil, errors.New("no backend") }
	for _, tc := range []struct {
		name  string
		start func(*nutcracker.Config, *slog.Logger) (proxyServer, error)
		args  []string
		want  string
	}{
		{"proxy fails", failing, []string{"-c", conf, "-a", "127.0.0.1", "-s", strconv.Itoa(testutil.FreePorts(t, 1)[0]), "-p", pidFile}, "no backend"},
		{"redis pool", start, []string{"-c", redis}, "redis pools are not supported"},
		{"missing file", start, []string{"-c", filepath.Join(dir, "none.yml")}, "no such file"},
		{"stats port in use", start, []string{"-c", conf, "-a", "127.0.0.1", "-s", busy, "-p", pidFile}, "cannot open stats port"},
		{"log file", start, []string{"-c", conf, "-o", filepath.Join(dir, "no", "such", "dir")}, "opening log file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runProxyCommand(context.Background(), tc.start, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
				t.Errorf("pid file left: %v", err)
			}
		})
	}
}

// TestBinaryProxyDaemonFails checks that -d returns the daemon's error,
// here a stats port in use, and exits 1 leaving no pid file.
func TestBinaryProxyDaemonFails(t *testing.T) {
	bin := corvidBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(proxyConfigs["good.yml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pidFile := filepath.Join(dir, "proxy.pid")
	cmd := exec.Command(bin, "proxy", "-d", "-c", conf, "-a", "127.0.0.1",
		"-s", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "-p", pidFile)
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "cannot open stats port") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
}

// readAll connects to addr and reads until it closes.
func readAll(addr string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return io.ReadAll(c)
}

// TestProxyExampleConfig checks that the newcomer's file in examples/ is
// one corvid proxy and nutcracker accept.
func TestProxyExampleConfig(t *testing.T) {
	const path = "../../examples/nutcracker.yml"
	cfg, err := loadProxyConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pools) != 2 {
		t.Errorf("%d pools, want 2", len(cfg.Pools))
	}
	for _, p := range cfg.Pools {
		for _, s := range p.Servers {
			if s.Addr != "127.0.0.1:11211" && s.Addr != "127.0.0.1:11212" {
				t.Errorf("pool %s: server %s is not one of the README's", p.Name, s.Addr)
			}
		}
	}
	if out, code := nutcrackerStderr(t, "-t", "-c", path); code != 0 {
		t.Errorf("nutcracker: %s", out)
	}
}

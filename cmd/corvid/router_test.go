package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/route"
	"github.com/corvidcache/corvid/server"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runRouterCommand runs "corvid router args" in this process with start
// as the router, and returns its standard error and error.
func runRouterCommand(ctx context.Context, stderr io.Writer, start func(*route.Config, []string, *slog.Logger) (routerServer, error), args ...string) error {
	cmd := routerCommand(&routerOptions{start: start})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(stderr)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return cmd.ExecuteContext(ctx)
}

func noRouter(*route.Config, []string, *slog.Logger) (routerServer, error) {
	panic("the router must not start")
}

const routerConfig = `{"pools": {"A": {"servers": ["127.0.0.1:11311"]}}, "route": "PoolRoute|A"}`

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouterValidateConfig(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", `{
  "pools": {"A": {"servers": ["127.0.0.1:11311"], "protocol": "ascii"}},
  "route": "PoolRoute|A", // trailing comma next
}`)
	bad := writeFile(t, dir, "bad.json", `{"pools": {"A": {"servers": ["127.0.0.1:11311"]}},
  "route": {"type": "FailoverRoute", "children": ["PoolRoute|A", {"type": "FooRoute"}]}}`)
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		stderr  string
	}{
		{"good file", []string{"-f", good, "--validate-config"}, "",
			"warning: pools.A.protocol: ignored: corvid does not use pool property \"protocol\"\nconfiguration is valid\n"},
		{"good file, long flags", []string{"--config-file=" + good, "--validate-config=exit"}, "", ""},
		{"bad file", []string{"-f", bad, "--validate-config"}, bad + `: route.children[1]: unknown type "FooRoute"`, ""},
		{"config-str", []string{"--config-str", routerConfig, "--validate-config"}, "", "configuration is valid\n"},
		{"bad config-str", []string{"--config-str", `{"route": "PoolRoute|B"}`, "--validate-config"}, `route: pool "B" is not defined`, ""},
		{"JSON error", []string{"--config-str", "{\n\"route\" \"x\"}", "--validate-config"}, `2:9: want ':' after key "route", found '"'`, ""},
		{"--config file:", []string{"--config", "file:" + bad, "--validate-config"}, bad + `: route.children[1]: unknown type "FooRoute"`, ""},
		{"--config string", []string{"--config", routerConfig, "--validate-config"}, "", ""},
		{"missing file", []string{"-f", filepath.Join(dir, "none.json"), "--validate-config"}, "open " + filepath.Join(dir, "none.json") + ": no such file or directory", ""},
		{"no config", []string{"--validate-config"}, "no configuration: give -f/--config-file, --config-str or --config", ""},
		{"both", []string{"-f", good, "--config-str", routerConfig, "--validate-config"}, "give one of -f/--config-file and --config-str, not both", ""},
		{"route prefix", []string{"--config-str", `{"pools": {"A": {"servers": ["h:1"]}}, "routes": [{"aliases": ["/a/b/"], "route": "PoolRoute|A"}]}`, "-R", "/a/b/", "--validate-config"}, "", ""},
		{"other route prefix", []string{"--config-str", `{"pools": {"A": {"servers": ["h:1"]}}, "routes": [{"aliases": ["/a/b/"], "route": "PoolRoute|A"}]}`, "--validate-config"},
			`routes: no route for the routing prefix "/././"`, ""},
		{"bad validate value", []string{"-f", good, "--validate-config=maybe"}, "invalid argument for --validate-config: 'maybe' (want exit or run)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr lockedBuffer
			err := runRouterCommand(context.Background(), &stderr, noRouter, tc.args...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("error\n got %q\nwant %q", got, tc.wantErr)
			}
			if tc.stderr != "" && stderr.String() != tc.stderr {
				t.Errorf("stderr\n got %q\nwant %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// TestRouterExamples checks that every example configuration validates.
func TestRouterExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/mcrouter/*.json")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../examples/mcrouter.json")
	if len(files) < 6 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var stderr lockedBuffer
			if err := runRouterCommand(context.Background(), &stderr, noRouter, "-f", f, "--validate-config"); err != nil {
				t.Fatal(err)
			}
			if stderr.String() != "configuration is valid\n" {
				t.Errorf("stderr %q", stderr.String())
			}
		})
	}
}

// fakeRouter records what the router command starts it with.
type fakeRouter struct {
	mu      sync.Mutex // guards the fields below
	cfg     *route.Config
	listen  []string
	reloads []*route.Config
}

func (f *fakeRouter) start(cfg *route.Config, listen []string, _ *slog.Logger) (routerServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg, f.listen = cfg, listen
	return f, nil
}

func (f *fakeRouter) Serve(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeRouter) Close() error { return nil }

func (f *fakeRouter) ReloadRoutes(cfg *route.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads = append(f.reloads, cfg)
	return nil
}

// runFake runs the router command on a fakeRouter until the test ends.
func runFake(t *testing.T, args ...string) (*fakeRouter, *lockedBuffer, func() error) {
	t.Helper()
	f := &fakeRouter{}
	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runRouterCommand(ctx, stderr, f.start, args...) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				t.Error("the router did not stop")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	testutil.WaitFor(t, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the router stopped: %v\n%s", err, stderr)
		default:
		}
		// logged once the router serves, its file watched
		return strings.Contains(stderr.String(), "started on pid")
	})
	return f, stderr, stop
}

func TestRouterListen(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all addresses", []string{"-p", "5000"}, ":5000"},
		{"ports repeated and comma separated", []string{"-p", "5000,5001", "--port", "5002"}, ":5000 :5001 :5002"},
		{"listen addresses", []string{"-p", "5000", "--listen-addresses", "127.0.0.1,::1", "-p", "6000"},
			"127.0.0.1:5000 127.0.0.1:6000 [::1]:5000 [::1]:6000"},
		{"num-proxies accepted", []string{"-p", "5000", "--num-proxies", "4"}, ":5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, stop := runFake(t, append([]string{"--config-str", routerConfig}, tc.args...)...)
			f.mu.Lock()
			got := strings.Join(f.listen, " ")
			root := f.cfg.Root
			f.mu.Unlock()
			if got != tc.want {
				t.Errorf("listen %q, want %q", got, tc.want)
			}
			if root == nil || root.Pool != "A" {
				t.Errorf("route %+v", root)
			}
			if err := stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config-str", routerConfig}, "no ports to listen on: give -p/--port"},
		{[]string{"--config-str", routerConfig, "-p", "x"}, "invalid port 'x'"},
		{[]string{"--config-str", routerConfig, "-p", "70000"}, "invalid port '70000'"},
		{[]string{"--config-str", `{"route": "NullRoute", "pools": []}`, "-p", "5000"}, "pools: want an object of pool name: pool, not a list"},
	} {
		var stderr lockedBuffer
		err := runRouterCommand(context.Background(), &stderr, noRouter, tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %s", tc.args, err, tc.want)
		}
	}
}

func TestRouterReload(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "mcrouter.json", routerConfig)
	f, stderr, stop := runFake(t, "-f", path, "-p", "5000")

	writeFile(t, dir, "mcrouter.json", `{"pools": {"B": {"servers": ["127.0.0.1:11312"]}}, "route": "PoolRoute|B"}`)
	testutil.WaitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.reloads) == 1
	})
	f.mu.Lock()
	if r := f.reloads[0].Root; r.Pool != "B" {
		t.Errorf("reloaded route %+v", r)
	}
	f.mu.Unlock()

	writeFile(t, dir, "mcrouter.json", `{"route": "PoolRoute|C"}`)
	testutil.WaitFor(t, func() bool {
		return strings.Contains(stderr.String(), `configuration refused; the previous one keeps serving`)
	})
	if !strings.Contains(stderr.String(), `route: pool \"C\" is not defined`) {
		t.Errorf("the refusal does not say why:\n%s", stderr)
	}
	f.mu.Lock()
	n := len(f.reloads)
	f.mu.Unlock()
	if n != 1 {
		t.Errorf("%d reloads after a bad file, want 1", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRouterReloadImport: a change to a file the configuration imports
// (here from another directory) reloads it as a change to the file
// itself does; a bad imported file is refused and the old tree serves.
func TestRouterReloadImport(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "sub/pools.json", `{"A": {"servers": ["127.0.0.1:11311"]}}`)
	path := writeFile(t, dir, "mcrouter.json", `{"pools": "@import(sub/pools.json)", "route": "PoolRoute|A"}`)
	f, stderr, stop := runFake(t, "-f", path, "-p", "5000")
	reloads := func() []*route.Config {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.Clone(f.reloads)
	}
	addrOf := func(cfg *route.Config) string { return cfg.Pools["A"].Servers[0].Addr }

	writeFile(t, dir, "sub/pools.json", `{"A": {"servers": ["127.0.0.1:11312"]}}`)
	testutil.WaitFor(t, func() bool { return len(reloads()) == 1 })
	if a := addrOf(reloads()[0]); a != "127.0.0.1:11312" {
		t.Errorf("reloaded pool A on %s, want the imported file's new server", a)
	}

	writeFile(t, dir, "sub/pools.json", `{"A": {"servers": [`)
	testutil.WaitFor(t, func() bool {
		return strings.Contains(stderr.String(), "configuration refused; the previous one keeps serving")
	})
	if n := len(reloads()); n != 1 {
		t.Errorf("%d reloads after a bad imported file, want 1", n)
	}

	writeFile(t, dir, "sub/pools.json", `{"A": {"servers": ["127.0.0.1:11313"]}}`)
	testutil.WaitFor(t, func() bool { return len(reloads()) == 2 })
	if a := addrOf(reloads()[1]); a != "127.0.0.1:11313" {
		t.Errorf("reloaded pool A on %s after the fix", a)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRouterDisableReload(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "mcrouter.json", routerConfig)
	f, stderr, stop := runFake(t, "-f", path, "-p", "5000", "--disable-reload-configs")
	// Another router watches the same file: once it has seen the change,
	// this one has had as long to see it.
	_, otherErr, stopOther := runFake(t, "-f", path, "-p", "5001")
	writeFile(t, dir, "mcrouter.json", `{"route": "PoolRoute|C"}`)
	testutil.WaitFor(t, func() bool { return strings.Contains(otherErr.String(), "configuration refused") })
	if s := stderr.String(); strings.Contains(s, "configuration refused") || strings.Contains(s, "configuration reloaded") {
		t.Errorf("the file was reloaded:\n%s", s)
	}
	f.mu.Lock()
	n := len(f.reloads)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d reloads", n)
	}
	if err := stopOther(); err != nil {
		t.Error(err)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

// TestRouterServesMetrics runs the router on its engine with a failover
// route from a pool whose server is down to one that is up: the admin
// port's metrics, dashboard and stats JSON show the pools and the route
// counting the failovers.
func TestRouterServesMetrics(t *testing.T) {
	backend := testutil.StartCorvid(t, server.Config{})
	ports := testutil.FreePorts(t, 3)
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	adminAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	conf := `{"pools": {"down": {"servers": ["127.0.0.1:` + strconv.Itoa(ports[2]) + `"]}, "up": {"servers": ["` + backend + `"]}},
		"route": {"type": "FailoverRoute", "name": "fo", "children": ["PoolRoute|down", "PoolRoute|up"]}}`
	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runRouterCommand(ctx, stderr, (&routerOptions{}).startRouter, "--config-str", conf, "-p", strconv.Itoa(ports[0]),
			"--listen-addresses", "127.0.0.1", "--admin", adminAddr)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("router: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the router did not stop")
		}
	}()
	testutil.WaitFor(t, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the router stopped: %v\n%s", err, stderr)
		default:
		}
		return strings.Contains(stderr.String(), "started on pid")
	})
	c := testutil.Dial(t, listen)
	for i := range 3 {
		c.Send(fmt.Appendf(nil, "set k%d 0 0 1\r\nv\r\n", i))
		if r := c.ReadReply(testutil.LineReply); string(r) != "STORED\r\n" {
			t.Fatalf("set through the router: %q", r)
		}
	}
	for path, wants := range map[string][]string{
		"/metrics": {`corvid_route_requests_total{route="fo",type="FailoverRoute"} 3` + "\n",
			`corvid_route_failovers_total{route="fo",type="FailoverRoute"} 3` + "\n",
			`twemproxy_requests{cluster="up",server="` + backend + `",twemproxy="`,
			`twemproxy_server_up{cluster="down",server=`},
		"/api/stats": {`"title":"corvid router `, `"id":"routes"`, `["fo","FailoverRoute","3",`},
		"/stats":     {`"routes": {`, `"fo": {"type":"FailoverRoute", "requests":3,`},
	} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range wants {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s has no %q:\n%.3000s", path, w, body)
			}
		}
	}
}

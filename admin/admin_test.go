package admin

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestProfilesAreServed(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()

	code, body := get(t, base+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(string(body), `href="goroutine?debug=1"`) ||
		!strings.Contains(string(body), `href="profile?seconds=30"`) {
		t.Errorf("index: %d %.200q", code, body)
	}
	// The index links only what is served: not the command line.
	if strings.Contains(string(body), "cmdline") {
		t.Errorf("index links the command line: %q", body)
	}
	code, body = get(t, base+"/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("heap: %d %.200q", code, body)
	}
	// A CPU profile is a gzip-compressed protocol buffer.
	code, body = get(t, base+"/debug/pprof/profile?seconds=1")
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Errorf("profile: %d %.200q", code, body)
	}
	// Lengths past the cap are refused at once, for every handler that
	// takes one; the profiler stays free for the next request.
	for _, path := range []string{"profile?seconds=31536000", "trace?seconds=1e9", "heap?seconds=100000", "allocs?seconds=Inf"} {
		start := time.Now()
		code, body = get(t, base+"/debug/pprof/"+path)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "at most 300") || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %d %.200q after %v", path, code, body, time.Since(start))
		}
	}
	code, _ = get(t, base+"/nothing-here")
	if code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
	code, body = get(t, base+"/")
	if code != http.StatusOK || !strings.Contains(string(body), `href="debug/pprof/"`) {
		t.Errorf("root: %d %.200q", code, body)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/debug/pprof/"); err == nil {
		t.Error("the admin port still answers after Close")
	}
}

func TestListenRefusesBadAddress(t *testing.T) {
	if _, err := Listen("127.0.0.1:notaport", Config{}); err == nil || !strings.Contains(err.Error(), "admin port") {
		t.Fatalf("Listen: %v", err)
	}
}

func TestDaemonRoutesAreServed(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Listen("127.0.0.1:0", Config{Routes: []Route{{"GET /stats", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "counters")
	})}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	if code, body := get(t, base+"/stats"); code != http.StatusOK || string(body) != "counters" {
		t.Errorf("/stats: %d %q", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("profiles: %d", code)
	}
}

func TestRoutesMustBeGET(t *testing.T) {
	_, err := Listen("127.0.0.1:0", Config{Routes: []Route{{"POST /stats", http.NotFoundHandler()}}})
	if err == nil || !strings.Contains(err.Error(), "only GET") {
		t.Fatalf("Listen with a POST route: %v", err)
	}
}

// TestOnlyReads checks that the admin port answers GET and HEAD, 405 to
// any other method on its pages, and 404 for unknown paths.
func TestOnlyReads(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200}, {"HEAD", "/", 200}, {"GET", "/metrics", 200}, {"HEAD", "/metrics", 200},
		{"GET", "/api/stats", 200}, {"GET", "/ui/app.js", 200}, {"GET", "/ui/style.css", 200},
		{"GET", "/debug/pprof/", 200}, {"GET", "/debug/pprof/symbol", 200},
		{"POST", "/", 405}, {"PUT", "/metrics", 405}, {"DELETE", "/api/stats", 405}, {"PATCH", "/ui/app.js", 405},
		{"POST", "/debug/pprof/symbol", 405}, {"OPTIONS", "/metrics", 405}, {"POST", "/debug/pprof/profile", 405},
		{"GET", "/nothing-here", 404}, {"POST", "/nothing-here", 404}, {"GET", "/index.html", 404},
		{"GET", "/ui/missing.js", 404}, {"GET", "/api/", 404},
		// The command line may carry secrets (SASL files, TLS keys).
		{"GET", "/debug/pprof/cmdline", 404}, {"HEAD", "/debug/pprof/cmdline", 404},
	} {
		req, err := http.NewRequest(c.method, base+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
}

package admin

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

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
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()

	code, body := get(t, base+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("index: %d %.200q", code, body)
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
	code, _ = get(t, base+"/nothing-here")
	if code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
	code, body = get(t, base+"/")
	if code != http.StatusOK || !strings.Contains(string(body), "debug/pprof/") {
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
	if _, err := Listen("127.0.0.1:notaport"); err == nil || !strings.Contains(err.Error(), "admin port") {
		t.Fatalf("Listen: %v", err)
	}
}

func TestDaemonRoutesAreServed(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Listen("127.0.0.1:0", Route{"GET /stats", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "counters")
	})})
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

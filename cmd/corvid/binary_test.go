package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// corvidBinary builds the corvid command once for the tests that run it as
// a process.
func corvidBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "corvid-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "corvid")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitVersion polls addr until it answers "version", or fails the test.
func waitVersion(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if answersVersion(addr) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered version", addr)
}

// answersVersion reports whether a server at addr answers "version".
func answersVersion(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprint(nc, "version\r\n")
	line, _ := bufio.NewReader(nc).ReadString('\n')
	return strings.HasPrefix(line, "VERSION ")
}

// TestBinarySignalAndSlabClasses runs the server process: -vv prints the
// slab classes as memcached does, and SIGTERM stops it cleanly.
func TestBinarySignalAndSlabClasses(t *testing.T) {
	bin := corvidBinary(t)
	port := freePort(t)
	cmd := exec.Command(bin, "server", "-p", strconv.Itoa(port), "-l", "127.0.0.1", "-vv")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	waitVersion(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
	out := stderr.String()
	for _, want := range []string{
		"slab class   1: chunk size        96 perslab   10922\n",
		"slab class  39: chunk size    524288 perslab       2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-vv output lacks %q:\n%s", want, out)
		}
	}
}

// TestBinaryDaemon checks -d with -P: the command returns at once, the
// daemon serves, and its pid file names it.
func TestBinaryDaemon(t *testing.T) {
	bin := corvidBinary(t)
	port := freePort(t)
	pidFile := filepath.Join(t.TempDir(), "corvid.pid")
	out, err := exec.Command(bin, "server", "-d", "-P", pidFile, "-p", strconv.Itoa(port), "-l", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("corvid server -d: %v\n%s", err, out)
	}
	waitVersion(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	var pid int
	deadline := time.Now().Add(5 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if pid == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if pid == 0 {
		t.Fatal("no pid file")
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal daemon %d: %v", pid, err)
	}
	for deadline = time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := os.Stat(pidFile); os.IsNotExist(err) {
			return // the daemon removes its pid file on a clean stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	proc.Kill()
	t.Fatal("daemon did not stop on SIGTERM")
}

// TestBinaryUsageErrors checks that a bad option is refused with
// memcached's message and a non-zero exit.
func TestBinaryUsageErrors(t *testing.T) {
	bin := corvidBinary(t)
	out, err := exec.Command(bin, "server", "-o", "bogus").CombinedOutput()
	if err == nil {
		t.Fatalf("-o bogus accepted:\n%s", out)
	}
	if !strings.Contains(string(out), `Illegal suboption "bogus"`) {
		t.Errorf("output %q lacks memcached's message", out)
	}
}

// binRequest encodes a binary-protocol request without extras.
func binRequest(op byte, key, value string) []byte {
	n := len(key) + len(value)
	b := []byte{0x80, op, byte(len(key) >> 8), byte(len(key)), 0, 0, 0, 0,
		byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	return append(append(b, key...), value...)
}

// binStatus sends req on nc and returns the response's status and body.
func binStatus(t *testing.T, nc net.Conn, r *bufio.Reader, req []byte) (uint16, string) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("opcode 0x%02x: %v", req[1], err)
	}
	body := make([]byte, int(h[8])<<24|int(h[9])<<16|int(h[10])<<8|int(h[11]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	return uint16(h[6])<<8 | uint16(h[7]), string(body)
}

// TestBinarySASL runs the server with -S and the password database named
// by MEMCACHED_SASL_PWDB, as memcached is run: only the binary protocol is
// served, and commands need SASL PLAIN authentication first.
func TestBinarySASL(t *testing.T) {
	bin := corvidBinary(t)
	pwdb := filepath.Join(t.TempDir(), "pwdb")
	if err := os.WriteFile(pwdb, []byte("alice:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "server", "-S", "-p", strconv.Itoa(port), "-l", "127.0.0.1")
	cmd.Env = append(os.Environ(), "MEMCACHED_SASL_PWDB="+pwdb)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	var nc net.Conn
	for deadline := time.Now().Add(10 * time.Second); nc == nil; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted: %v", addr, err)
		}
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	for _, step := range []struct {
		req    []byte
		status uint16
		body   string
	}{
		{binRequest(0x0b, "", ""), 0, "1.6.18"},
		{binRequest(0x20, "", ""), 0, "PLAIN"},
		{binRequest(0x21, "PLAIN", "\x00alice\x00wrong"), 0x20, "Auth failure."},
		{binRequest(0x21, "PLAIN", "\x00alice\x00secret"), 0, "Authenticated"},
		{binRequest(0x0a, "", ""), 0, ""},
	} {
		status, body := binStatus(t, nc, r, step.req)
		if status != step.status || body != step.body {
			t.Errorf("opcode 0x%02x: status 0x%02x %q, want 0x%02x %q", step.req[1], status, body, step.status, step.body)
		}
	}
}

// --admin serves the profiler while the server runs, and the port closes
// with the server.
func TestServerAdminPort(t *testing.T) {
	adminAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	p := startServerProc(t, "--admin", adminAddr)
	resp, err := http.Get("http://" + adminAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "server.(*loop).run") {
		t.Fatalf("goroutine profile: %v %d %.300q", err, resp.StatusCode, body)
	}
	p.stop(t, syscall.SIGTERM)
	if nc, err := net.DialTimeout("tcp", adminAddr, time.Second); err == nil {
		nc.Close()
		t.Error("the admin port is still open after the server stopped")
	}
}

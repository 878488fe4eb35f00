//go:build unix

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
	"regexp"
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
	return buildCorvid(t)
}

// buildCorvid is corvidBinary for the tests that run in -short mode too.
func buildCorvid(t *testing.T) string {
	t.Helper()
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
	scaleProcs = false // TestProxyProcs turns it on
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

// answers connects to addr and reports what check finds there, within a
// couple of seconds.
func answers(addr string, check func(nc net.Conn) bool) bool {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * time.Second))
	return check(nc)
}

// answersVersion reports whether a server at addr answers "version".
func answersVersion(addr string) bool {
	return answers(addr, func(nc net.Conn) bool {
		fmt.Fprint(nc, "version\r\n")
		line, _ := bufio.NewReader(nc).ReadString('\n')
		return strings.HasPrefix(line, "VERSION ")
	})
}

// TestBinarySignalAndSlabClasses runs the server process: -vv prints the
// slab classes as memcached does, and SIGTERM stops it cleanly.
func TestBinarySignalAndSlabClasses(t *testing.T) {
	p := startServerProc(t, "-v") // with launchServerProc's own -v, -vv
	p.stop(t, syscall.SIGTERM)
	out := p.stderr.String()
	for _, want := range []string{
		"slab class   1: chunk size        96 perslab   10922\n",
		"slab class  39: chunk size    524288 perslab       2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-vv output lacks %q:\n%s", want, out)
		}
	}
}

// daemonProc is a corvid daemon started by a test.
type daemonProc struct {
	addr    string
	pidFile string
	pid     int // as the pid file gives it
}

// startDaemon runs the server with -d and -P on a port found free; the
// test's end kills the daemon.
func startDaemon(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	bin := corvidBinary(t)
	var d *daemonProc
	onFreePort(t, func(port int) (taken bool, err error) {
		d, err = launchDaemon(t, bin, port, args)
		return err != nil && strings.Contains(err.Error(), "address already in use"), err
	})
	return d
}

// launchDaemon runs the server with -d and -P on port. The command returns
// once the daemon serves, having written its pid file, or fails with the
// daemon's error; the test's end kills the daemon the pid file names.
func launchDaemon(t *testing.T, bin string, port int, args []string) (*daemonProc, error) {
	t.Helper()
	d := &daemonProc{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), pidFile: filepath.Join(t.TempDir(), "corvid.pid")}
	t.Cleanup(func() {
		if pid := readPidFile(d.pidFile); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	args = append([]string{"server", "-d", "-P", d.pidFile, "-p", strconv.Itoa(port), "-l", "127.0.0.1"}, args...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("corvid server -d: %v\n%s", err, out)
	}
	if d.pid = readPidFile(d.pidFile); d.pid == 0 {
		return nil, fmt.Errorf("corvid server -d returned before the daemon wrote %s", d.pidFile)
	}
	return d, nil
}

// readPidFile returns the pid in the file, or 0.
func readPidFile(name string) int {
	b, _ := os.ReadFile(name)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// TestBinaryDaemon checks -d with -P: the command returns once the daemon
// serves, and its pid file names it.
func TestBinaryDaemon(t *testing.T) {
	d := startDaemon(t)
	if !answersVersion(d.addr) {
		t.Fatalf("the daemon does not answer on %s", d.addr)
	}
	if err := syscall.Kill(d.pid, syscall.SIGTERM); err != nil {
		t.Fatalf("signal daemon %d: %v", d.pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := os.Stat(d.pidFile); os.IsNotExist(err) {
			return // the daemon removes its pid file on a clean stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("daemon did not stop on SIGTERM")
}

// TestBinaryDaemonCannotBind checks that -d fails with the daemon's error
// and exit status (memcached's EX_OSERR) when the daemon cannot listen,
// leaving no pid file.
func TestBinaryDaemonCannotBind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := launchDaemon(t, corvidBinary(t), ln.Addr().(*net.TCPAddr).Port, nil)
	if err == nil || !strings.Contains(err.Error(), "bind: address already in use") || !strings.Contains(err.Error(), "exit status 71") {
		t.Fatalf("launchDaemon on a port in use: %+v, %v", d, err)
	}
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

// answersBinaryVersion reports whether a server at addr answers a
// binary-protocol version request, which needs no SASL authentication.
func answersBinaryVersion(addr string) bool {
	return answers(addr, func(nc net.Conn) bool {
		if _, err := nc.Write(binRequest(0x0b, "", "")); err != nil {
			return false
		}
		var h [24]byte
		_, err := io.ReadFull(nc, h[:])
		return err == nil && h[0] == 0x81 && h[1] == 0x0b && h[6] == 0 && h[7] == 0
	})
}

// saslProc returns the settings of a server run with -S: a password
// database of pwdb named by MEMCACHED_SASL_PWDB, and the binary probe.
func saslProc(t *testing.T, pwdb string) procOptions {
	t.Helper()
	name := filepath.Join(t.TempDir(), "pwdb")
	if err := os.WriteFile(name, []byte(pwdb), 0o600); err != nil {
		t.Fatal(err)
	}
	return procOptions{env: []string{"MEMCACHED_SASL_PWDB=" + name}, probe: answersBinaryVersion}
}

// TestBinarySASL runs the server with -S and the password database named
// by MEMCACHED_SASL_PWDB, as memcached is run: only the binary protocol is
// served, and commands need SASL PLAIN authentication first.
func TestBinarySASL(t *testing.T) {
	p := startServerProcWith(t, saslProc(t, "alice:secret\n"), "-S")
	nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
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

// --admin serves the profiler, the metrics and the dashboard while the server runs, and the port closes
// with the server.
func TestServerAdminPort(t *testing.T) {
	// Port 0: the server picks a free one and logs it.
	p := startServerProc(t, "--admin", "127.0.0.1:0")
	m := regexp.MustCompile(`msg="admin port listening" addr=(127\.0\.0\.1:[1-9][0-9]*)\n`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no admin address in the log:\n%s", p.stderr)
	}
	adminAddr := m[1]
	resp, err := http.Get("http://" + adminAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "server.(*loop).run") {
		t.Fatalf("goroutine profile: %v %d %.300q", err, resp.StatusCode, body)
	}
	for path, want := range map[string][]string{
		"/metrics":   {"\nmemcached_up 1\n", "\nmemcached_max_connections 1024\n", "\ngo_goroutines ", "\nprocess_resident_memory_bytes "},
		"/api/stats": {`"title":"corvid server 127.0.0.1:`, `"id":"slabs"`, `"id":"hotkeys"`},
		"/":          {`src="ui/app.js"`},
	} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), w) {
				t.Errorf("%s: %v %d, no %q in %.300q", path, err, resp.StatusCode, w, body)
			}
		}
	}
	p.stop(t, syscall.SIGTERM)
	if nc, err := net.DialTimeout("tcp", adminAddr, time.Second); err == nil {
		nc.Close()
		t.Error("the admin port is still open after the server stopped")
	}
}

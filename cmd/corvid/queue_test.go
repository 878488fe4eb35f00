//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// startQueueCmd runs "corvid queue" in-process on 127.0.0.1 with args and
// returns its address; the test's end stops it.
func startQueueCmd(t *testing.T, args ...string) string {
	t.Helper()
	o := &queueOptions{}
	addrs := make(chan net.Addr, 1)
	o.listening = func(a net.Addr) { addrs <- a }
	cmd := queueCommand(o)
	cmd.SetArgs(append([]string{"-l", "127.0.0.1", "-p", "0", "--data-dir", t.TempDir()}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("corvid queue: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a.String()
	case err := <-done:
		done <- err
		t.Fatalf("corvid queue stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("corvid queue did not start")
	}
	return ""
}

func queueRoundTrip(t *testing.T, rw *bufio.ReadWriter, req string, want ...string) {
	t.Helper()
	rw.WriteString(req)
	rw.Flush()
	for _, w := range want {
		l, err := rw.ReadString('\n')
		if err != nil || strings.TrimSuffix(l, "\r\n") != w {
			t.Fatalf("%q: got %q (%v), want %q", req, l, err, w)
		}
	}
}

func TestQueueCommandServesAndReloads(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "queue.yml")
	if err := os.WriteFile(conf, []byte("default:\n  max_items: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startQueueCmd(t, "--config", conf, "--sync", "never")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	queueRoundTrip(t, rw, "set jobs 0 0 1\r\na\r\n", "STORED")
	queueRoundTrip(t, rw, "set jobs 0 0 1\r\nb\r\n", "NOT_STORED")
	if err := os.WriteFile(conf, []byte("default:\n  max_items: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	queueRoundTrip(t, rw, "reload\r\n", "Reloaded config.")
	queueRoundTrip(t, rw, "set jobs 0 0 1\r\nb\r\n", "STORED")
	queueRoundTrip(t, rw, "get jobs\r\n", "VALUE jobs 0 1", "a", "END")
	if err := os.WriteFile(conf, []byte("default:\n  bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	queueRoundTrip(t, rw, "reload\r\n", "SERVER_ERROR cannot reload the configuration")
	queueRoundTrip(t, rw, "get jobs\r\n", "VALUE jobs 0 1", "b", "END")
}

func TestQueueCommandRefusesBadStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"data dir is a file", []string{"--data-dir", file}, "data directory"},
		{"data dir under a file", []string{"--data-dir", filepath.Join(file, "q")}, "data directory"},
		{"bad sync", []string{"--sync", "sometimes"}, "bad --sync"},
		{"bad config", []string{"--config", filepath.Join(t.TempDir(), "missing.yml")}, "cannot read queue config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := queueCommand(&queueOptions{})
			cmd.SetArgs(append([]string{"-l", "127.0.0.1", "-p", "0", "--data-dir", t.TempDir()}, tc.args...))
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// startQueueProc runs the corvid binary's queue command on a free port
// and waits until it answers; the test's end kills it.
func startQueueProc(t *testing.T, args ...string) *serverProc {
	t.Helper()
	bin := corvidBinary(t)
	var p *serverProc
	onFreePort(t, func(port int) (bool, error) {
		p = &serverProc{
			addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			done:   make(chan error, 1),
			stderr: new(syncBuilder),
			probe:  answersVersion,
		}
		p.cmd = exec.Command(bin, append([]string{"queue", "-p", strconv.Itoa(port), "-l", "127.0.0.1", "-v"}, args...)...)
		p.cmd.Stderr = p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(func() {
			p.cmd.Process.Kill()
			err := <-p.done
			p.done <- err
		})
		if err := p.ready(10 * time.Second); err != nil {
			return strings.Contains(p.stderr.String(), "address already in use"), fmt.Errorf("%v\n%s", err, p.stderr)
		}
		return false, nil
	})
	return p
}

func TestQueueBinaryReloadsOnSIGHUPAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "queue.yml")
	if err := os.WriteFile(conf, []byte("default:\n  max_items: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startQueueProc(t, "--data-dir", filepath.Join(dir, "data"), "--config", conf)
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	queueRoundTrip(t, rw, "set q 0 0 1\r\na\r\nset q 0 0 1\r\nb\r\n", "STORED", "NOT_STORED")
	if err := os.WriteFile(conf, []byte("default:\n  max_items: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	testutil.WaitFor(t, func() bool { return strings.Contains(p.stderr.String(), "configuration reloaded") })
	queueRoundTrip(t, rw, "set q 0 0 1\r\nb\r\n", "STORED")
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Fatalf("data directory not made: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit on SIGTERM")
	}
}

func TestQueueBinaryDaemonizes(t *testing.T) {
	bin := corvidBinary(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "queue.pid")
	port := freePort(t)
	out, err := exec.Command(bin, "queue", "-d", "-P", pidFile, "-l", "127.0.0.1", "-p", strconv.Itoa(port),
		"--data-dir", filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("corvid queue -d: %v\n%s", err, out)
	}
	var pid int
	testutil.WaitFor(t, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	t.Cleanup(func() {
		if _, err := os.Stat(pidFile); err == nil {
			syscall.Kill(pid, syscall.SIGKILL) // the daemon did not stop
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !answersVersion(addr) {
		t.Fatal("the daemon does not answer")
	}
	syscall.Kill(pid, syscall.SIGTERM)
	testutil.WaitFor(t, func() bool { _, err := os.Stat(pidFile); return os.IsNotExist(err) })
}

// TestQueueBinaryPidFileInForeground checks that -P writes the pid file
// without -d too, as the server, proxy and router do (for a supervisor
// that keeps the process in the foreground), and removes it on a stop.
func TestQueueBinaryPidFileInForeground(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "queue.pid")
	p := startQueueProc(t, "--data-dir", filepath.Join(dir, "data"), "-P", pidFile)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid file once the queue serves: %v", err)
	}
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != p.cmd.Process.Pid {
		t.Fatalf("pid file holds %q, the process is %d", b, p.cmd.Process.Pid)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("no exit on SIGTERM")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after a clean stop: %v", err)
	}
}

func TestQueueBinaryKeepsAcknowledgedItemsOverSIGKILL(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := startQueueProc(t, "--data-dir", data, "--sync", "always")
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	for i := 0; i < 50; i++ {
		queueRoundTrip(t, rw, fmt.Sprintf("set jobs 0 0 %d\r\n%d\r\n", len(strconv.Itoa(i)), i), "STORED")
	}
	queueRoundTrip(t, rw, "get jobs\r\n", "VALUE jobs 0 1", "0", "END")
	queueRoundTrip(t, rw, "get jobs/open\r\n", "VALUE jobs 0 1", "1", "END")
	nc.Close()
	p.kill(t)

	p2 := startQueueProc(t, "--data-dir", data)
	nc2, err := net.Dial("tcp", p2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	nc2.SetDeadline(time.Now().Add(30 * time.Second))
	rw2 := bufio.NewReadWriter(bufio.NewReader(nc2), bufio.NewWriter(nc2))
	for i := 1; i < 50; i++ {
		v := strconv.Itoa(i)
		queueRoundTrip(t, rw2, "get jobs\r\n", fmt.Sprintf("VALUE jobs 0 %d", len(v)), v, "END")
	}
	queueRoundTrip(t, rw2, "get jobs\r\n", "END")
}

// TestQueueCommandServesMetrics checks the admin port of corvid queue:
// its queues' Prometheus metrics, its dashboard's table of queues and
// its stats JSON.
func TestQueueCommandServesMetrics(t *testing.T) {
	adminAddr := "127.0.0.1:" + strconv.Itoa(testutil.FreePorts(t, 1)[0])
	addr := startQueueCmd(t, "--sync", "never", "--admin", adminAddr)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	queueRoundTrip(t, rw, "set jobs 0 0 1\r\na\r\n", "STORED")
	queueRoundTrip(t, rw, "set jobs 0 0 1\r\nb\r\n", "STORED")
	queueRoundTrip(t, rw, "get jobs\r\n", "VALUE jobs 0 1", "a", "END")

	for path, wants := range map[string][]string{
		"/metrics": {"kestrel_up 1\n", `kestrel_queue_items{queue="jobs"} 1` + "\n",
			`kestrel_queue_total_items_total{queue="jobs"} 2` + "\n", "kestrel_cmd_get_total 1\n", "kestrel_current_connections 1\n"},
		"/api/stats": {`"title":"corvid queue ` + addr + `"`, `"id":"queues"`, `["jobs","1","1",`},
		"/stats":     {`"queue_jobs_items":"1"`},
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

// TestQueueExampleConfig checks that examples/queue.yml, which the README's
// first command reads, loads, and holds the configuration the README shows.
func TestQueueExampleConfig(t *testing.T) {
	const path = "../../examples/queue.yml"
	fc, err := loadQueueConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fc.Queues["orders+audit"]; !ok || fc.MaxOpenTransactions != 1 {
		t.Errorf("queues %v, max_open_transactions %d", fc.Queues, fc.MaxOpenTransactions)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, queue, _ := strings.Cut(string(readme), "## Queue (Kestrel drop-in)")
	if !strings.Contains(queue, "--config examples/queue.yml") {
		t.Error("the README's queue command does not read examples/queue.yml")
	}
	_, block, _ := strings.Cut(queue, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if block == "" || !strings.HasSuffix(string(file), "\n"+block) {
		t.Errorf("examples/queue.yml does not end with the README's configuration:\n%s", block)
	}
}

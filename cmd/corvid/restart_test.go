package main

import (
	"bufio"
	"fmt"
	"net"
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

// serverProc is a corvid server process started by a test.
type serverProc struct {
	addr   string
	cmd    *exec.Cmd
	done   chan error
	stderr *syncBuilder
}

// syncBuilder is a strings.Builder safe for the process's output copier
// and the test to use at once.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServerProc(t *testing.T, args ...string) *serverProc {
	t.Helper()
	bin := corvidBinary(t)
	// A port found free can be taken by another process before the server
	// binds it: then pick another.
	const attempts = 5
	for i := 1; ; i++ {
		p := launchServerProc(t, bin, freePort(t), args)
		err := p.ready(10 * time.Second)
		if err == nil {
			return p
		}
		if i == attempts || !strings.Contains(p.stderr.String(), "address already in use") {
			t.Fatalf("%v\n%s", err, p.stderr)
		}
	}
}

// launchServerProc starts the server on port; the test's end kills it.
func launchServerProc(t *testing.T, bin string, port int, args []string) *serverProc {
	t.Helper()
	p := &serverProc{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		done:   make(chan error, 1),
		stderr: new(syncBuilder),
	}
	p.cmd = exec.Command(bin, append([]string{"server", "-p", strconv.Itoa(port), "-l", "127.0.0.1", "-v"}, args...)...)
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
	return p
}

// ready waits until the server answers version, or reports that it exited
// or never answered.
func (p *serverProc) ready(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("server exited before answering: %v", err)
		default:
		}
		if answersVersion(p.addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered version", p.addr)
}

// stop sends sig and waits for a clean exit.
func (p *serverProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after %v: %v\n%s", sig, err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop on %v", sig)
	}
}

// roundTrip sends request lines and reads until a line equal to last.
func roundTrip(t *testing.T, addr, req, last string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprint(nc, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	var out strings.Builder
	for {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			t.Fatalf("reading reply to %q: %v (got %q)", req, err, out.String())
		}
		if line == last+"\r\n" {
			return out.String()
		}
	}
}

// TestBinaryWarmRestart saves the cache with -e on SIGUSR1 (and on
// SIGTERM) and restores it with flags, CAS and expiry on the next start;
// a damaged file makes the server start empty.
func TestBinaryWarmRestart(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")

	p := startServerProc(t, "-e", snap)
	var req strings.Builder
	for i := range 500 {
		v := strings.Repeat("v", i)
		fmt.Fprintf(&req, "set key%d %d 0 %d noreply\r\n%s\r\n", i, i, len(v), v)
	}
	req.WriteString("set soon 0 2 1\r\nx\r\nset later 5 3600 2\r\nhi\r\ngets key7 later\r\n")
	before := roundTrip(t, p.addr, req.String(), "END")
	before = before[strings.Index(before, "VALUE"):]
	p.stop(t, syscall.SIGUSR1)
	if !strings.Contains(p.stderr.String(), "cache saved") {
		t.Fatalf("no save logged:\n%s", p.stderr)
	}

	time.Sleep(2100 * time.Millisecond) // let "soon" expire while down
	p = startServerProc(t, "-e", snap)
	if got := roundTrip(t, p.addr, "gets key7 later\r\n", "END"); got != before {
		t.Fatalf("after restart gets answers\n%q\nwant (same CAS)\n%q", got, before)
	}
	if got := roundTrip(t, p.addr, "get soon key499\r\n", "END"); !strings.HasPrefix(got, "VALUE key499 499 499\r\n") || strings.Contains(got, "soon") {
		t.Fatalf("after restart: %q", got)
	}
	stats := roundTrip(t, p.addr, "stats\r\n", "END")
	if !strings.Contains(stats, "STAT curr_items 501\r\n") {
		t.Fatalf("curr_items after restart, want 501:\n%s", stats)
	}
	p.stop(t, syscall.SIGTERM)

	// Damage the file: the server starts empty and says why.
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(snap, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startServerProc(t, "-e", snap)
	if got := roundTrip(t, p.addr, "get key7\r\n", "END"); got != "END\r\n" {
		t.Fatalf("damaged snapshot loaded: %q", got)
	}
	if !strings.Contains(p.stderr.String(), "starting empty") || !strings.Contains(p.stderr.String(), "bad snapshot") {
		t.Fatalf("no reason logged for the damaged snapshot:\n%s", p.stderr)
	}
}

// A server whose port another process holds exits at once, with the error
// startServerProc retries on.
func TestServerProcPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := launchServerProc(t, corvidBinary(t), ln.Addr().(*net.TCPAddr).Port, nil)
	if err := p.ready(10 * time.Second); err == nil || !strings.Contains(p.stderr.String(), "address already in use") {
		t.Fatalf("ready: %v; stderr:\n%s", err, p.stderr)
	}
}

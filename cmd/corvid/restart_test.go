//go:build unix

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
	probe  func(addr string) bool
}

// procOptions are the settings of a server process besides its arguments.
type procOptions struct {
	env   []string               // added to the test's environment
	probe func(addr string) bool // whether the server answers; answersVersion if nil
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

// startServerProc starts the server with args on a port found free and
// waits until it answers; the test's end kills it.
func startServerProc(t *testing.T, args ...string) *serverProc {
	t.Helper()
	return startServerProcWith(t, procOptions{}, args...)
}

// startServerProcWith is startServerProc with the settings in o.
func startServerProcWith(t *testing.T, o procOptions, args ...string) *serverProc {
	t.Helper()
	bin := corvidBinary(t)
	var p *serverProc
	onFreePort(t, func(port int) (taken bool, err error) {
		p = launchServerProc(t, bin, port, o, args)
		if err := p.ready(10 * time.Second); err != nil {
			return strings.Contains(p.stderr.String(), "address already in use"), fmt.Errorf("%v\n%s", err, p.stderr)
		}
		return false, nil
	})
	return p
}

// onFreePort calls start with a port found free until it succeeds. A port
// found free can be taken by another process before the server binds it:
// when start reports that, it is called again with another port.
func onFreePort(t *testing.T, start func(port int) (taken bool, err error)) {
	t.Helper()
	const attempts = 5
	for i := 1; ; i++ {
		taken, err := start(freePort(t))
		if err == nil {
			return
		}
		if i == attempts || !taken {
			t.Fatal(err)
		}
	}
}

// launchServerProc starts the server on port; the test's end kills it.
func launchServerProc(t *testing.T, bin string, port int, o procOptions, args []string) *serverProc {
	t.Helper()
	p := &serverProc{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		done:   make(chan error, 1),
		stderr: new(syncBuilder),
		probe:  o.probe,
	}
	if p.probe == nil {
		p.probe = answersVersion
	}
	p.cmd = exec.Command(bin, append([]string{"server", "-p", strconv.Itoa(port), "-l", "127.0.0.1", "-v"}, args...)...)
	if o.env != nil {
		p.cmd.Env = append(os.Environ(), o.env...)
	}
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

// ready waits until the server has logged that it listens on its port and
// answers the probe there, or reports that it exited or never answered.
// The log comes first so that another server holding the port is not
// taken for this one.
func (p *serverProc) ready(timeout time.Duration) error {
	listening := "msg=listening addr=tcp:" + p.addr + "\n"
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("server exited before answering: %v", err)
		default:
		}
		if strings.Contains(p.stderr.String(), listening) && p.probe(p.addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered", p.addr)
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
	p := launchServerProc(t, corvidBinary(t), ln.Addr().(*net.TCPAddr).Port, procOptions{}, nil)
	if err := p.ready(10 * time.Second); err == nil || !strings.Contains(p.stderr.String(), "address already in use") {
		t.Fatalf("ready: %v; stderr:\n%s", err, p.stderr)
	}
}

// A server whose port another corvid holds is not ready, though the other
// answers its probe: with the ASCII probe or with the binary one of -S.
func TestServerProcPortTakenByServer(t *testing.T) {
	other := startServerProc(t)
	_, port, err := net.SplitHostPort(other.addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	for _, c := range []struct {
		o    procOptions
		args []string
	}{
		{procOptions{probe: answersVersion}, nil},
		{saslProc(t, "alice:secret\n"), []string{"-S"}},
	} {
		if !c.o.probe(other.addr) {
			t.Fatalf("the other server does not answer the probe of %q", c.args)
		}
		p := launchServerProc(t, corvidBinary(t), n, c.o, c.args)
		if err := p.ready(10 * time.Second); err == nil || !strings.Contains(p.stderr.String(), "address already in use") {
			t.Fatalf("%q: ready: %v; stderr:\n%s", c.args, err, p.stderr)
		}
	}
}

// mgLastAccess answers mg key l h: the seconds since the item's last
// access and whether it had been fetched.
func mgLastAccess(t *testing.T, addr, key string) (idle int, fetched bool) {
	t.Helper()
	reply := roundTrip(t, addr, "mg "+key+" l h\r\nmn\r\n", "MN")
	var h int
	if _, err := fmt.Sscanf(reply, "HD l%d h%d\r\n", &idle, &h); err != nil {
		t.Fatalf("mg %s l h: %q: %v", key, reply, err)
	}
	return idle, h == 1
}

// TestWarmRestartKeepsLastAccess restarts a server with -e: an item keeps
// its last access and whether it was fetched, as memcached's restart keeps
// them, instead of coming back as just stored.
func TestWarmRestartKeepsLastAccess(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	p := startServerProc(t, "-e", snap)
	roundTrip(t, p.addr, "set k 0 0 1\r\nv\r\nmn\r\n", "MN")
	time.Sleep(2100 * time.Millisecond)
	if idle, fetched := mgLastAccess(t, p.addr, "k"); idle < 2 || fetched {
		t.Fatalf("before the restart: mg k l h gives l%d, fetched %v; want l2 or more, never fetched", idle, fetched)
	}
	p.stop(t, syscall.SIGTERM)
	p = startServerProc(t, "-e", snap)
	// The first mg fetched k and left its last access (memcached bumps it
	// on a second fetch).
	if idle, fetched := mgLastAccess(t, p.addr, "k"); idle < 2 || !fetched {
		t.Fatalf("after the restart: mg k l h gives l%d, fetched %v; want l2 or more, fetched", idle, fetched)
	}
	p.stop(t, syscall.SIGTERM)
}

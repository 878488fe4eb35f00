package testutil

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long StartMemcached waits for the port.
	startTimeout = 5 * time.Second
	// startAttempts is how often StartMemcached tries a new port when the
	// one it picked was taken before memcached could bind it.
	startAttempts = 3
)

// MemcachedPath returns the path of the memcached binary, or "" when it is
// not installed.
func MemcachedPath() string {
	p, err := exec.LookPath("memcached")
	if err != nil {
		return ""
	}
	return p
}

// StartMemcached starts a real memcached listening on a free loopback TCP
// port, with UDP off and args appended (for example "-m", "64"), waits until
// it accepts connections and returns its address. It skips the test when
// memcached is not installed. The process is killed and reaped when the
// test ends.
func StartMemcached(t testing.TB, args ...string) (addr string) {
	t.Helper()
	return StartMemcachedEnv(t, nil, args...)
}

// StartMemcachedEnv is StartMemcached with env ("NAME=value") added to
// memcached's environment, for settings it reads from there, such as
// SASL_CONF_PATH.
func StartMemcachedEnv(t testing.TB, env []string, args ...string) (addr string) {
	t.Helper()
	bin := MemcachedPath()
	if bin == "" {
		t.Skip("memcached is not installed")
	}
	var lastErr error
	for range startAttempts {
		addr, err := startMemcached(t, bin, env, args)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("cannot start memcached: %v", lastErr)
	return ""
}

// inheritOnce runs closeInheritedOnExec before the first memcached
// starts.
var inheritOnce sync.Once

func startMemcached(t testing.TB, bin string, env, args []string) (string, error) {
	t.Helper()
	inheritOnce.Do(closeInheritedOnExec)
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
	if os.Geteuid() == 0 {
		argv = append(argv, "-u", "nobody") // memcached refuses to run as root
	}
	argv = append(argv, args...)
	cmd := exec.Command(bin, argv...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr := &limitedBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(startTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		select {
		case <-exited:
			return "", errors.New("memcached " + addr + " exited: " + errString(waitErr) + ": " + stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", errors.New("memcached " + addr + " did not accept connections: " + err.Error())
		}
		time.Sleep(delay)
	}
	t.Cleanup(stop)
	return addr, nil
}

func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// programs that cannot be told to listen on port 0.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// limitedBuffer keeps the first max bytes written to it. It is safe for
// concurrent use (exec copies stderr from its own goroutine).
type limitedBuffer struct {
	mu  sync.Mutex // guards buf
	buf []byte
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

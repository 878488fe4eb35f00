package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NutcrackerPath returns the path of twemproxy's nutcracker binary, or ""
// when it is not installed.
func NutcrackerPath() string {
	p, err := exec.LookPath("nutcracker")
	if err != nil {
		return ""
	}
	return p
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// StartNutcracker runs nutcracker with the configuration conf returns for
// n listen addresses on 127.0.0.1 (the text of a nutcracker.yml) and waits
// until it accepts connections on all of them, which it returns. Ports are
// picked free, and picked again when another process takes one first. It
// skips the test when nutcracker is not installed. The process is killed
// and reaped when the test ends.
func StartNutcracker(t testing.TB, n int, conf func(listen []string) string) []string {
	t.Helper()
	bin := NutcrackerPath()
	if bin == "" {
		t.Skip("nutcracker is not installed")
	}
	const attempts = 5
	for i := 1; ; i++ {
		ports := FreePorts(t, n+1)
		listen := make([]string, n)
		for j := range listen {
			listen[j] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[j]))
		}
		log, err := startNutcracker(t, bin, conf(listen), ports[n], listen)
		if err == nil {
			return listen
		}
		if i == attempts || !strings.Contains(log, "Address already in use") {
			t.Fatalf("%v\n%s", err, log)
		}
	}
}

// startNutcracker starts bin with conf and its stats on port stats, and
// waits for the addresses in listen. On failure it returns the error with
// nutcracker's log, the process reaped.
func startNutcracker(t testing.TB, bin, conf string, stats int, listen []string) (string, error) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", err
	}
	logFile := filepath.Join(dir, "nutcracker.log")
	readLog := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	cmd := exec.Command(bin, "-c", path, "-s", strconv.Itoa(stats), "-a", "127.0.0.1",
		"-o", logFile, "-p", filepath.Join(dir, "nutcracker.pid"))
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() { cmd.Process.Kill(); <-exited }
	for _, addr := range listen {
		deadline := time.Now().Add(startTimeout)
		for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				return readLog(), errors.New("nutcracker exited")
			default:
			}
			if time.Now().After(deadline) {
				stop()
				return readLog(), fmt.Errorf("nutcracker does not accept connections on %s: %v", addr, err)
			}
			time.Sleep(delay)
		}
	}
	t.Cleanup(stop)
	return "", nil
}

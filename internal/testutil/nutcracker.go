package testutil

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// StartNutcracker runs nutcracker with the configuration conf (the text of
// a nutcracker.yml) and waits until it accepts connections on every
// address in listen. It skips the test when nutcracker is not installed.
// The process is killed and reaped when the test ends.
func StartNutcracker(t testing.TB, conf string, listen ...string) {
	t.Helper()
	bin := NutcrackerPath()
	if bin == "" {
		t.Skip("nutcracker is not installed")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	stats := FreePorts(t, 1)[0]
	logFile := filepath.Join(dir, "nutcracker.log")
	cmd := exec.Command(bin, "-c", path, "-s", strconv.Itoa(stats), "-a", "127.0.0.1",
		"-o", logFile, "-p", filepath.Join(dir, "nutcracker.pid"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
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
				log, _ := os.ReadFile(logFile)
				t.Fatalf("nutcracker exited: %s", log)
			default:
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logFile)
				t.Fatalf("nutcracker does not accept connections on %s: %v\n%s", addr, err, log)
			}
			time.Sleep(delay)
		}
	}
}

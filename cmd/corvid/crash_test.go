package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWarmProc starts a server with -e snap and the extra args, in -short
// mode too, and waits until it answers.
func startWarmProc(t *testing.T, snap string, args ...string) *serverProc {
	t.Helper()
	bin := buildCorvid(t)
	var p *serverProc
	onFreePort(t, func(port int) (bool, error) {
		p = launchServerProc(t, bin, port, procOptions{}, append([]string{"-e", snap}, args...))
		if err := p.ready(10 * time.Second); err != nil {
			return strings.Contains(p.stderr.String(), "address already in use"), fmt.Errorf("%v\n%s", err, p.stderr)
		}
		return false, nil
	})
	return p
}

// kill SIGKILLs the server and waits for it to be gone. It reports
// whether the server had already exited by itself, cleanly.
func (p *serverProc) kill(t *testing.T) (exitedCleanly bool) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err == nil
	default:
	}
	p.cmd.Process.Kill()
	select {
	case err := <-p.done:
		p.done <- err
		return err == nil
	case <-time.After(30 * time.Second):
		t.Fatal("server did not die on SIGKILL")
		return false
	}
}

// TestWarmRestartCrashForgetsSnapshot is issue 12's sequence: after a warm
// start, a deleted item must not come back when the server crashes.
func TestWarmRestartCrashForgetsSnapshot(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	p := startWarmProc(t, snap)
	roundTrip(t, p.addr, "set session 0 0 3\r\nold\r\n", "STORED")
	p.stop(t, syscall.SIGTERM)

	p = startWarmProc(t, snap)
	if got := roundTrip(t, p.addr, "get session\r\n", "END"); got != "VALUE session 0 3\r\nold\r\nEND\r\n" {
		t.Fatalf("after a clean stop: %q", got)
	}
	roundTrip(t, p.addr, "delete session\r\n", "DELETED")
	p.kill(t)

	p = startWarmProc(t, snap)
	if got := roundTrip(t, p.addr, "get session\r\n", "END"); got != "END\r\n" {
		t.Fatalf("a deleted item came back after a crash: %q\n%s", got, p.stderr)
	}
}

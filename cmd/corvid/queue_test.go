package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

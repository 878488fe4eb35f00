//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// tmuxSession is a detached tmux server of its own, running one command
// in a 120×40 window.
type tmuxSession struct {
	t    *testing.T
	sock string
}

func startTmux(t *testing.T, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	s := &tmuxSession{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() { exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	s.run("new-session", "-d", "-x", "120", "-y", "40", "-s", "top", command)
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen returns what the window shows.
func (s *tmuxSession) screen() string {
	s.t.Helper()
	return s.run("capture-pane", "-p", "-t", "top")
}

// waitScreen polls the screen until ok accepts it, doing between polls,
// for at most 30 seconds.
func (s *tmuxSession) waitScreen(what string, ok func(string) bool, between func()) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if between != nil {
			between()
		}
		scr := s.screen()
		if ok(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %s:\n%s", what, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func contains(sub string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, sub) }
}

// TestTopInTmux drives corvid top as a user would: in a terminal, over a
// corvid server under traffic and a port nobody listens on, pressing its
// keys and reading the screen.
func TestTopInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	bin := corvidBinary(t)
	addr := testutil.StartCorvid(t, server.Config{})
	down := testutil.RefusedAddr(t)
	exitFile := filepath.Join(t.TempDir(), "exit")
	s := startTmux(t, "'"+bin+"' top -s "+addr+","+down+" --interval 200ms; echo $? > '"+exitFile+"'")

	const hot = "tmux:hot:key"
	c := testutil.Dial(t, addr)
	c.Send([]byte("set " + hot + " 0 0 3\r\nabc\r\n"))
	c.ReadReply(testutil.LineReply)
	traffic := func() {
		c.Send([]byte(strings.Repeat("get "+hot+"\r\n", 100)))
		for range 100 {
			c.ReadReply(testutil.ValuesReply)
		}
	}
	busy := regexp.MustCompile(`ops/s +total [1-9][0-9.]* +get [1-9]`)
	scr := s.waitScreen("nonzero gets and the hot key", func(scr string) bool {
		return busy.MatchString(scr) && strings.Contains(scr, hot) && strings.Contains(scr, "hot keys (stats hotkeys)")
	}, traffic)
	for _, want := range []string{"[1 " + addr + "]", "2 " + down + " DOWN", "sort: class", "class*", "q quit"} {
		if !strings.Contains(scr, want) {
			t.Errorf("screen lacks %q:\n%s", want, scr)
		}
	}

	s.run("send-keys", "-t", "top", "s")
	s.waitScreen("the class table sorted by items", contains("sort: items"), nil)

	s.run("send-keys", "-t", "top", "p")
	s.waitScreen("PAUSED", contains("PAUSED"), nil)
	s.run("send-keys", "-t", "top", "p")
	s.waitScreen("PAUSED gone", func(scr string) bool { return !strings.Contains(scr, "PAUSED") }, nil)

	s.run("send-keys", "-t", "top", "Tab")
	scr = s.waitScreen("the down server's tab", contains("["+"2 "+down+" DOWN]"), nil)
	if !strings.Contains(scr, "connection refused") {
		t.Errorf("the down tab does not say why:\n%s", scr)
	}

	s.run("send-keys", "-t", "top", "q")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(exitFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			if code := strings.TrimSpace(string(b)); code != "0" {
				t.Errorf("corvid top exited with %s", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("corvid top did not exit on q:\n%s", s.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTopBadAddress: a malformed address is one clear line and a non-zero
// exit, before any terminal is touched.
func TestTopBadAddress(t *testing.T) {
	for _, a := range []string{"127.0.0.1:notaport", "127.0.0.1:70000", ":11211", "[::1"} {
		root := newRootCommand()
		root.SetArgs([]string{"top", "-s", a})
		var out strings.Builder
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), a) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v", a, err)
		}
	}
}

// TestTopNeedsTerminal: without a terminal, top says so in one line
// instead of writing escape sequences to a pipe.
func TestTopNeedsTerminal(t *testing.T) {
	root := newRootCommand()
	root.SetArgs([]string{"top", "-s", "127.0.0.1:11211"})
	var out strings.Builder
	root.SetIn(strings.NewReader(""))
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "needs a terminal") {
		t.Errorf("err %v", err)
	}
	if out.Len() > 0 {
		t.Errorf("wrote %q", out.String())
	}
}

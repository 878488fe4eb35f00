package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// dropPrivileges assumes the identity of name when running as root, as
// memcached's -u does. memcached refuses to run as root without -u; corvid
// runs, and warns, so that "go run ./cmd/corvid server" works in a root
// container: use -u in production.
func dropPrivileges(name string, logger *slog.Logger) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if name == "" {
		logger.Warn("running as root: memcached would refuse this without -u; give -u USER to drop privileges")
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("can't find the user %s to switch to", name)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("can't find the user %s to switch to", name)
	}
	return setIdentity(name, uid, gid)
}

// daemonize starts this command again (with --daemon-child, which the
// server and proxy commands both take) as a daemon in a new session with its
// standard streams on /dev/null, as memcached's and nutcracker's -d do, and returns once
// the daemon serves, or with the error and exit status that stopped it:
// where memcached returns at once, a script can tell from the exit status
// that the server started. Go cannot fork, so the daemon is a fresh process; it reports
// through a pipe on descriptor daemonPipeFD.
func daemonize() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot daemonize: %w", err)
	}
	args := append(os.Args[1:len(os.Args):len(os.Args)], "--daemon-child")
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("cannot daemonize: %w", err)
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cannot daemonize: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w} // descriptor 3 = daemonPipeFD
	if err := detach(cmd); err != nil {
		return err
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("cannot daemonize: %w", err)
	}
	// The daemon closes its end once it serves or stops; so does its exit.
	msg, _ := io.ReadAll(r)
	if string(msg) == daemonReady {
		return cmd.Process.Release()
	}
	werr := cmd.Wait()
	if len(msg) == 0 {
		return fmt.Errorf("the daemon stopped before it served: %v", werr)
	}
	// The daemon's status too: memcached's 71 for a port in use, say.
	code := 1
	var ee *exec.ExitError
	if errors.As(werr, &ee) && ee.ExitCode() > 0 {
		code = ee.ExitCode()
	}
	return exitError{strings.TrimSpace(string(msg)), code}
}

const (
	// daemonPipeFD is the descriptor of the daemon's end of the pipe its
	// parent waits on.
	daemonPipeFD = 3
	// daemonReady is what the daemon writes there once it serves; else it
	// writes the error that stops it.
	daemonReady = "ready\n"
)

// daemonPipe is the daemon's end of the pipe its parent waits on.
type daemonPipe struct{ f *os.File }

// openDaemonPipe returns the daemon's end of the pipe, or a pipe that
// reports nowhere when descriptor daemonPipeFD is not one.
func openDaemonPipe() *daemonPipe {
	f := os.NewFile(daemonPipeFD, "daemon-pipe")
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return &daemonPipe{}
	}
	return &daemonPipe{f: f}
}

// ready tells the parent that the daemon serves.
func (p *daemonPipe) ready() { p.close(daemonReady) }

// fail tells the parent why the daemon stops, unless it said it was ready.
func (p *daemonPipe) fail(err error) {
	if err != nil {
		p.close(err.Error())
	}
	p.close("")
}

func (p *daemonPipe) close(msg string) {
	if p.f == nil {
		return
	}
	p.f.WriteString(msg)
	p.f.Close()
	p.f = nil
}

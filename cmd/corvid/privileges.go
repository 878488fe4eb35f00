package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
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
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("failed to drop supplementary groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("failed to assume identity of user %s: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("failed to assume identity of user %s: %w", name, err)
	}
	return nil
}

// daemonize starts this command again as a daemon in a new session with its
// standard streams on /dev/null, and returns once it has started, as
// memcached's -d does. Go cannot fork, so the daemon is a fresh process.
func daemonize(o *serverOptions) error {
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
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot daemonize: %w", err)
	}
	return cmd.Process.Release()
}

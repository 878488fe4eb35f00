//go:build unix

package main

import (
	"fmt"
	"os/exec"
	"syscall"
)

// setIdentity makes the process run as user name (uid, gid), with gid as
// its only group.
func setIdentity(name string, uid, gid int) error {
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

// detach makes cmd start in a new session, away from the terminal.
func detach(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return nil
}

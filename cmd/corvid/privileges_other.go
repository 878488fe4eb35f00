//go:build !unix

package main

import (
	"errors"
	"os/exec"
)

// setIdentity is not supported where there are no Unix users to switch
// to, as on Windows; it is not reached there (os.Geteuid reports -1, not
// root), but refuses if it is.
func setIdentity(name string, _, _ int) error {
	return errors.New("cannot switch to user " + name + " on this system")
}

// detach refuses: without Unix sessions and inherited descriptors, as on
// Windows, the daemon cannot be started; run corvid under a service
// manager instead.
func detach(*exec.Cmd) error {
	return errors.New("cannot daemonize: -d is not supported on this system; run corvid as a service instead")
}

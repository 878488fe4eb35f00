//go:build !linux

package testutil

// closeInheritedOnExec is a no-op where /proc/self/fd is missing.
func closeInheritedOnExec() {}

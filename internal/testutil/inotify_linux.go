package testutil

import (
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// DirWatch records what happens in a directory (inotify), for tests that
// check the order of file system calls, such as a directory opened to be
// fsynced after a file is created or renamed in it.
type DirWatch struct {
	t  testing.TB
	fd int
}

// WatchDir starts recording creations, renames into and opens in dir; the
// test's end stops it.
func WatchDir(t testing.TB, dir string) *DirWatch {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_OPEN|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	return &DirWatch{t: t, fd: fd}
}

// Events returns what happened since the last call, in order: "created
// NAME", "renamed NAME" (renamed into the directory), "opened NAME", or
// "opened the directory".
func (w *DirWatch) Events() []string {
	w.t.Helper()
	var events []string
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(w.fd, buf)
		if err == syscall.EAGAIN {
			return events
		}
		if err != nil {
			w.t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&syscall.IN_CREATE != 0:
				events = append(events, "created "+name)
			case ev.Mask&syscall.IN_MOVED_TO != 0:
				events = append(events, "renamed "+name)
			case name == "" && ev.Mask&syscall.IN_ISDIR != 0:
				events = append(events, "opened the directory")
			default:
				events = append(events, "opened "+name)
			}
		}
	}
}

// OpenedAfter reports whether the directory was opened after the last
// event for which match is true, and whether there was such an event.
func OpenedAfter(events []string, match func(string) bool) (opened, found bool) {
	last := -1
	for i, e := range events {
		if match(e) {
			last = i
		}
	}
	if last < 0 {
		return false, false
	}
	for _, e := range events[last+1:] {
		if e == "opened the directory" {
			return true, true
		}
	}
	return false, true
}

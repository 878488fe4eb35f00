//go:build linux

package queue_test

import (
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/corvidcache/corvid/queue"
)

// TestJournalBackendNameFileSyncsDirectory watches the data directory
// while a queue with a shortened name is opened: once its name file has
// its name, the directory is opened, to be fsynced, so that after a power
// cut the journal is not found without its name file.
func TestJournalBackendNameFileSyncsDirectory(t *testing.T) {
	dir := t.TempDir()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_OPEN|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	st, err := queue.NewJournalBackend(dir, nil).Open(strings.Repeat("n", queue.MaxNameLength), queue.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// The events, in order: "renamed NAME", "opened NAME", or "opened the
	// directory".
	var events []string
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&syscall.IN_MOVED_TO != 0:
				events = append(events, "renamed "+name)
			case name == "" && ev.Mask&syscall.IN_ISDIR != 0:
				events = append(events, "opened the directory")
			default:
				events = append(events, "opened "+name)
			}
		}
	}
	renamed := -1
	for i, e := range events {
		if strings.HasPrefix(e, "renamed ") && strings.HasSuffix(e, ".name") {
			renamed = i
		}
	}
	if renamed < 0 {
		t.Fatalf("no name file renamed into place; events %q", events)
	}
	for _, e := range events[renamed+1:] {
		if e == "opened the directory" {
			return
		}
	}
	t.Fatalf("the directory was not opened to be synced after the name file was; events %q", events)
}

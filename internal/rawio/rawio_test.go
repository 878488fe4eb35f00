//go:build linux

package rawio

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const childEnv = "CORVID_RAWIO_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		racy(mode)
		return
	}
	os.Exit(m.Run())
}

// pipe returns a pipe's read and write ends, non-blocking.
func pipe(t testing.TB) (r, w int) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		if t != nil {
			t.Fatal(err)
		}
		panic(err)
	}
	if t != nil {
		t.Cleanup(func() { syscall.Close(p[0]); syscall.Close(p[1]) })
	}
	return p[0], p[1]
}

// racy writes a buffer on another goroutine, unordered with a Read into
// it (mode "read") or a Write of it ("write").
func racy(mode string) {
	r, w := pipe(nil)
	b := make([]byte, 64)
	if _, err := Write(w, []byte("ping")); err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		b[0] = 1
		close(done)
	}()
	if mode == "read" {
		Read(r, b)
	} else {
		Write(w, b)
	}
	<-done
}

// Read and Write move bytes, and report EAGAIN and the end of the stream
// as read(2) does.
func TestReadWrite(t *testing.T) {
	r, w := pipe(t)
	b := make([]byte, 16)
	if n, err := Read(r, b); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("read of an empty pipe = %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Write(w, []byte("STORED\r\n")); n != 8 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	if n, err := Read(r, b); err != nil || string(b[:n]) != "STORED\r\n" {
		t.Fatalf("read = %q, %v", b[:n], err)
	}
	syscall.Close(w)
	if n, err := Read(r, b); n != 0 || err != nil {
		t.Fatalf("read after the writer closed = %d, %v; want 0, nil", n, err)
	}
}

// The race detector sees what Read and Write do with a buffer: a
// goroutine writing it at the same time is a race.
func TestRaceNotes(t *testing.T) {
	if !raceEnabled {
		t.Skip("the race detector is off")
	}
	for _, mode := range []string{"read", "write"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "DATA RACE") {
			t.Errorf("%s: a goroutine writing the buffer was not reported (err %v):\n%s", mode, err, out)
		}
	}
}

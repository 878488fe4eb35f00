package race

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const childEnv = "CORVID_RACE_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "write":
		racy(WriteRange)
		return
	case "read":
		racy(ReadRange)
		return
	}
	os.Exit(m.Run())
}

// racy notes b with note while another goroutine writes it, unordered.
func racy(note func([]byte)) {
	b := make([]byte, 64)
	done := make(chan struct{})
	go func() {
		b[10] = 1
		close(done)
	}()
	note(b)
	<-done
}

// The notes make the race detector see what a raw system call does with
// a buffer: a goroutine writing it at the same time is a race.
func TestNotesSeen(t *testing.T) {
	if !Enabled {
		t.Skip("the race detector is off")
	}
	for _, mode := range []string{"write", "read"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "DATA RACE") {
			t.Errorf("%s: a goroutine writing the buffer was not reported (err %v):\n%s", mode, err, out)
		}
	}
}

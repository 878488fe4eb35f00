//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/mctool"
	"github.com/corvidcache/corvid/internal/testutil"
)

// endlessServer lists a key every millisecond in a metadump that never
// ends and answers every mg with a one-byte value; served counts the
// values sent.
func endlessServer(t *testing.T, served *atomic.Int64) string {
	return testutil.FakeMetadump(t, time.Millisecond, 0, func(string) string {
		served.Add(1)
		return "VA 1 f7 t-1\r\nv\r\n"
	})
}

// SIGINT stops corvid dump with exit status 1 and one line saying so,
// leaving a file that holds every record read, each complete (only the
// END line is missing): load then stores them all and names the end.
func TestDumpInterrupted(t *testing.T) {
	bin := corvidBinary(t)
	var served atomic.Int64
	addr := endlessServer(t, &served)
	file := filepath.Join(t.TempDir(), "x.dump")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "dump", "-s", addr, "-o", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for served.Load() < 300 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond) // poll, bounded by ctx
	}
	sent := served.Load()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "interrupted") {
		t.Errorf("dump after SIGINT: exit %d (%v), stderr:\n%s\nwant exit 1 and one line saying it was interrupted", code, err, stderr.String())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mctool.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%v; file:\n%.300q", err, data)
	}
	for {
		rec, err := r.Next()
		if err == nil {
			if rec.Flags != 7 || string(rec.Value) != "v" {
				t.Fatalf("record %d: %+v", r.Records(), rec)
			}
			continue
		}
		var fe *mctool.FileError
		if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "without its END line") || fe.Offset != int64(len(data)) {
			t.Errorf("end of the interrupted file (%d bytes): %v, want the END line missing at its end", len(data), err)
		}
		break
	}
	// The values sent before SIGINT were read, but for the batch of
	// 100 keys whose values may still have been on their way.
	if n := r.Records(); n < 200 || n < sent-100 {
		t.Errorf("the interrupted file holds %d records, want all but the last batch of the %d sent before SIGINT", n, sent)
	}
}

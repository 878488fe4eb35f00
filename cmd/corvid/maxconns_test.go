//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

func TestMaxConnsFastOption(t *testing.T) {
	for opts, want := range map[string]bool{
		"maxconns_fast":                  false,
		"no_maxconns_fast":               true,
		"no_maxconns_fast,maxconns_fast": false,
		"no_modern":                      true,
		"no_modern,maxconns_fast":        false,
		"modern":                         false,
	} {
		o := &serverOptions{}
		cmd := serverCommand(o)
		if err := cmd.Flags().Parse([]string{"-o", opts}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("-o %s: %v", opts, err)
			continue
		}
		if cfg.NoMaxConnsFast != want {
			t.Errorf("-o %s: NoMaxConnsFast %v, want %v", opts, cfg.NoMaxConnsFast, want)
		}
		if len(cfg.Unsupported) != 0 {
			t.Errorf("-o %s: reported unsupported: %v", opts, cfg.Unsupported)
		}
	}
}

// exitOf runs bin with args, which must make it exit, and returns its
// status and what it wrote to stderr.
func exitOf(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q still runs", bin, args)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String())
}

// TestStartupMaxConnsMatchesMemcached checks the -c values memcached
// 1.6.18 refuses to start with, whose message and status corvid gives:
// one that leaves no room beyond the 5 descriptors per thread memcached
// reserves, and one above the descriptor limit it may set.
func TestStartupMaxConnsMatchesMemcached(t *testing.T) {
	mc := testutil.MemcachedPath()
	if mc == "" {
		t.Skip("memcached is not installed")
	}
	bin := corvidBinary(t)
	for _, args := range [][]string{
		{"-c", "42", "-t", "8"},
		{"-c", "2000000"},
	} {
		port, err := testutil.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args = append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}, args...)
		if os.Geteuid() == 0 {
			args = append(args, "-u", "nobody")
		}
		code, msg := exitOf(t, bin, append([]string{"server"}, args...)...)
		mcCode, mcMsg := exitOf(t, mc, args...)
		if code != mcCode || msg != mcMsg {
			t.Errorf("%q: corvid exits %d %q, memcached %d %q", args, code, msg, mcCode, mcMsg)
		}
	}
}

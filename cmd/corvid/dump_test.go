//go:build unix

package main

import (
	"bytes"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// fillN stores n items "k<i>" with flags i and value "v<i>".
func fillN(t *testing.T, addr string, n int) {
	t.Helper()
	var req strings.Builder
	for i := range n {
		v := "v" + strconv.Itoa(i)
		req.WriteString("set k" + strconv.Itoa(i) + " " + strconv.Itoa(i) + " 0 " + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n")
	}
	req.WriteString("mn\r\n")
	if got := sendText(t, addr, req.String(), "MN\r\n"); strings.Count(got, "STORED") != n {
		t.Fatalf("sets: %q", got)
	}
}

// countKeys returns how many of "k0".."k<n-1>" addr holds with the
// right flags and value.
func countKeys(t *testing.T, addr string, n int) int {
	t.Helper()
	var req strings.Builder
	for i := range n {
		req.WriteString("mg k" + strconv.Itoa(i) + " k f v\r\n")
	}
	req.WriteString("mn\r\n")
	got := sendText(t, addr, req.String(), "MN\r\n")
	found := 0
	for i := range n {
		s := strconv.Itoa(i)
		if strings.Contains(got, "VA "+strconv.Itoa(len(s)+1)+" kk"+s+" f"+s+"\r\nv"+s+"\r\n") {
			found++
		}
	}
	return found
}

func TestDumpLoadFile(t *testing.T) {
	statServers(t, func(t *testing.T, src string) {
		const n = 250
		fillN(t, src, n)
		file := filepath.Join(t.TempDir(), "cache.dump")
		out, err := runCorvid(t, "dump", "-s", src, "-o", file, "--progress")
		if err != nil {
			t.Fatalf("dump: %v\n%s", err, out)
		}
		if !strings.Contains(out, "dumped 250 items of "+src) || !strings.Contains(out, "250/250") {
			t.Errorf("dump output (summary and progress bar):\n%s", out)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "corvid-dump 1 ") || !strings.HasSuffix(string(data), "\nEND 250\n") {
			t.Fatalf("dump file starts %q, ends %q", data[:30], data[len(data)-20:])
		}
		for name, dst := range map[string]string{
			"corvid":    testutil.StartCorvid(t, server.Config{}),
			"memcached": testutil.StartMemcached(t),
		} {
			out, err := runCorvid(t, "load", "-i", file, "--to", dst)
			if err != nil {
				t.Fatalf("load into %s: %v\n%s", name, err, out)
			}
			if got := countKeys(t, dst, n); got != n || !strings.Contains(out, "loaded 250 items into "+dst) {
				t.Errorf("load into %s: %d of %d keys there; output:\n%s", name, got, n, out)
			}
		}
	})
}

func TestLoadServerToServer(t *testing.T) {
	src := testutil.StartMemcached(t)
	dst := testutil.StartCorvid(t, server.Config{})
	const n = 120
	fillN(t, src, n)
	start := time.Now()
	out, err := runCorvid(t, "load", "--from", src, "--to", dst, "--rate", "400")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := countKeys(t, dst, n); got != n {
		t.Errorf("%d of %d keys copied; output:\n%s", got, n, out)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("120 items at --rate 400 took %v, want at least 0.25s", took)
	}
	for _, args := range [][]string{
		{"load", "--to", dst},
		{"load", "--from", src},
		{"load", "--from", src, "-i", "x", "--to", dst},
		{"load", "--from", src, "--to", dst, "--rate", "-1"},
	} {
		if _, err := runCorvid(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestLoadIntoItself refuses a copy whose source and target are one
// server, however the two addresses spell it, and stores nothing.
func TestLoadIntoItself(t *testing.T) {
	srv := testutil.StartCorvid(t, server.Config{})
	fillN(t, srv, 10)
	_, port, _ := net.SplitHostPort(srv)
	for _, to := range []string{srv, "localhost:" + port, "127.0.0.1:" + port} {
		out, err := runCorvid(t, "load", "--from", srv, "--to", to)
		if err == nil || !strings.Contains(err.Error()+out, "same server") {
			t.Errorf("load --from %s --to %s: err %v, output:\n%s", srv, to, err, out)
		}
	}
	other := testutil.StartCorvid(t, server.Config{})
	if _, err := runCorvid(t, "load", "--from", srv, "--to", other); err != nil {
		t.Errorf("load into another server: %v", err)
	}
}

// TestLoadCorruptFile cuts and damages a dump file: load stores the
// records before the bad one, names it, and fails.
func TestLoadCorruptFile(t *testing.T) {
	src := testutil.StartCorvid(t, server.Config{})
	const n = 5
	fillN(t, src, n)
	dir := t.TempDir()
	file := filepath.Join(dir, "good.dump")
	if out, err := runCorvid(t, "dump", "-s", src, "-o", file); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(good)
	// The third record, wherever metadump put it.
	third := 0
	for range 3 {
		third += strings.Index(text[third:], "\nI ") + 1
	}
	valueAt := third + strings.IndexByte(text[third:], '\n') + 1
	damaged := []byte(text)
	damaged[valueAt] ^= 0x20
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"flipped byte": {damaged, "bad record 3 at byte " + strconv.Itoa(third) + ": checksum mismatch"},
		"truncated":    {good[:valueAt+1], "bad record 3 at byte " + strconv.Itoa(third) + ": the file ends inside"},
		"no END":       {good[:strings.LastIndex(text, "END")], "bad record 6 at byte"},
	} {
		t.Run(name, func(t *testing.T) {
			dst := testutil.StartCorvid(t, server.Config{})
			bad := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(bad, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runCorvid(t, "load", "-i", bad, "--to", dst)
			if err == nil || !strings.Contains(err.Error(), bad+": "+c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			wantLoaded := 2
			if name == "no END" {
				wantLoaded = n
			}
			if got := countKeys(t, dst, n); got != wantLoaded || !strings.Contains(out, "loaded "+strconv.Itoa(wantLoaded)+" items") {
				t.Errorf("%d keys loaded, want %d; output:\n%s", got, wantLoaded, out)
			}
		})
	}
}

// The bar of a walk starts from the server's item count, an estimate: it
// must neither fill nor stall when more items come, and end on the count
// there was.
func TestEstimateBar(t *testing.T) {
	for _, c := range []struct{ estimate, n int64 }{{10, 25}, {40, 25}, {25, 25}} {
		var out bytes.Buffer
		b := &estimateBar{bar: progressbar.NewOptions64(c.estimate, progressbar.OptionSetWriter(&out), progressbar.OptionShowCount()), max: c.estimate}
		for i := int64(1); i <= c.n; i++ {
			b.add()
			if s := b.bar.State(); s.CurrentNum != i || s.Max <= i {
				t.Fatalf("estimate %d, item %d: bar at %d of %d", c.estimate, i, s.CurrentNum, s.Max)
			}
		}
		b.finish()
		if s := b.bar.State(); s.CurrentNum != c.n || s.Max != c.n || !strings.Contains(out.String(), "(25/25)") {
			t.Errorf("estimate %d: finished at %d of %d, output %q", c.estimate, s.CurrentNum, s.Max, out.String())
		}
	}
}

// TestDumpLoadBinaryKeys copies keys with a space and control bytes,
// which only base64 meta commands name, with corvid dump and load, and
// replays corvid stat dump's output.
func TestDumpLoadBinaryKeys(t *testing.T) {
	keys := []string{"a b", "c\x00\x01\x1f\r\n"}
	b64 := func(k string) string { return base64.StdEncoding.EncodeToString([]byte(k)) }
	statServers(t, func(t *testing.T, src string) {
		for i, k := range keys {
			if got := sendText(t, src, "ms "+b64(k)+" 2 b F3\r\nv"+strconv.Itoa(i)+"\r\n", "\r\n"); got != "HD\r\n" {
				t.Fatalf("ms %q: %q", k, got)
			}
		}
		file := filepath.Join(t.TempDir(), "cache.dump")
		if out, err := runCorvid(t, "dump", "-s", src, "-o", file); err != nil || !strings.Contains(out, "dumped 2 items") {
			t.Fatalf("dump: %v\n%s", err, out)
		}
		stat, err := runCorvid(t, "stat", "-s", src, "dump")
		if err != nil || !strings.Contains(stat, "ms "+b64(keys[0])+" 2 b F3 T0 ME\r\nv0\r\n") {
			t.Fatalf("stat dump: %v\n%q", err, stat)
		}
		want := "VA 2 f3\r\nv0\r\nVA 2 f3\r\nv1\r\nEN\r\n"
		get := "mg " + b64(keys[0]) + " b f v\r\nmg " + b64(keys[1]) + " b f v\r\nmg x v\r\n"
		dst := testutil.StartCorvid(t, server.Config{})
		if out, err := runCorvid(t, "load", "-i", file, "--to", dst); err != nil || !strings.Contains(out, "loaded 2 items") {
			t.Fatalf("load: %v\n%s", err, out)
		}
		if got := sendText(t, dst, get, "EN\r\n"); got != want {
			t.Errorf("after load: %q, want %q", got, want)
		}
		dst = testutil.StartCorvid(t, server.Config{})
		if got := sendText(t, dst, stat, "HD\r\nHD\r\n"); got != "HD\r\nHD\r\n" {
			t.Fatalf("replaying stat dump: %q", got)
		}
		if got := sendText(t, dst, get, "EN\r\n"); got != want {
			t.Errorf("after replaying stat dump: %q, want %q", got, want)
		}
	})
}

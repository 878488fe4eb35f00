package storage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// These tests compare corvid with a real memcached when one is installed
// (they skip otherwise): the same inputs must give the same results.

func memcachedPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed")
	}
	return p
}

// liveClasses runs "memcached -vv" with args and parses the class table
// it prints before it starts serving (the last class is slab_chunk_max,
// 512 KiB by default).
func liveClasses(t *testing.T, args ...string) []ClassInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, memcachedPath(t), append([]string{"-u", "nobody", "-vv", "-p", "0", "-U", "0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var cls []ClassInfo
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var ci ClassInfo
		if _, err := fmt.Sscanf(sc.Text(), "slab class %d: chunk size %d perslab %d", &ci.ID, &ci.ChunkSize, &ci.ChunksPerPage); err == nil {
			cls = append(cls, ci)
			if ci.ChunkSize == 512<<10 {
				break
			}
		}
	}
	return cls
}

func TestLiveClasses(t *testing.T) {
	for _, tt := range []struct {
		n int
		f float64
	}{{48, 1.25}, {10, 1.1}, {200, 1.8}, {64, 3}} {
		want := liveClasses(t, "-n", fmt.Sprint(tt.n), "-f", fmt.Sprint(tt.f))
		c := newCache(t, Config{ChunkSizeMin: tt.n, GrowthFactor: tt.f, NoCrawler: true})
		got := c.Classes()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("-n %d -f %v:\n corvid    %v\n memcached %v", tt.n, tt.f, got, want)
		}
		if table, err := ClassTable(Config{ChunkSizeMin: tt.n, GrowthFactor: tt.f}); err != nil || fmt.Sprint(table) != fmt.Sprint(want) {
			t.Errorf("ClassTable -n %d -f %v: %v, %v", tt.n, tt.f, table, err)
		}
	}
}

// liveConn starts memcached on a free local port and returns a connection.
func liveConn(t *testing.T, args ...string) (net.Conn, *bufio.Reader) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(memcachedPath(t), append([]string{"-u", "nobody", "-l", "127.0.0.1", "-U", "0", "-p", fmt.Sprint(port)}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var conn net.Conn
	waitFor(t, "memcached to listen", func() bool {
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		return err == nil
	})
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}

func TestLiveIncr(t *testing.T) {
	conn, r := liveConn(t)
	c, _ := newFakeCache(t)
	call := func(req string) string {
		t.Helper()
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(line, "\r\n")
	}
	getValue := func(key string) string {
		t.Helper()
		conn.Write([]byte("get " + key + "\r\n"))
		hdr, _ := r.ReadString('\n')
		if strings.HasPrefix(hdr, "END") {
			return "<miss>"
		}
		var k string
		var flags, n int
		fmt.Sscanf(hdr, "VALUE %s %d %d", &k, &flags, &n)
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		r.ReadString('\n') // END
		return string(buf[:n])
	}
	values := []string{"0", "1", "99", "100", "  12", "12 abc", "+5", "-0", "-1", "1\x00", "\n7",
		"18446744073709551615", "18446744073709551616", "-18446744073709551615",
		"-9223372036854775808", "-9223372036854775809", "0x10", "12a", " ", "abc", "007"}
	for i, v := range values {
		for _, op := range []struct {
			decr  bool
			delta uint64
		}{{false, 0}, {false, 1}, {true, 1}, {false, 1000}, {true, 1000}} {
			key := fmt.Sprintf("k%d", i)
			if got := call(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(v), v)); got != "STORED" {
				t.Fatalf("memcached set: %s", got)
			}
			mustSet(t, c, key, v)
			cmd := "incr"
			if op.decr {
				cmd = "decr"
			}
			want := call(fmt.Sprintf("%s %s %d\r\n", cmd, key, op.delta))
			n, res := c.Incr([]byte(key), op.delta, op.decr)
			got := fmt.Sprint(n)
			if res == NonNumeric {
				got = "CLIENT_ERROR cannot increment or decrement non-numeric value"
			}
			if got != want {
				t.Errorf("%s %q by %d: corvid %q, memcached %q", cmd, v, op.delta, got, want)
			}
			ours, _ := value(c, key)
			if theirs := getValue(key); ours != theirs {
				t.Errorf("%s %q by %d: corvid stores %q, memcached %q", cmd, v, op.delta, ours, theirs)
			}
		}
	}
}

// TestLiveSlabSizes checks the class table of -o slab_sizes against
// memcached's: one class per size, rounded up to 8 bytes, then
// slab_chunk_max.
func TestLiveSlabSizes(t *testing.T) {
	for _, sizes := range [][]int{{48, 100, 1000, 100000}, {60, 69, 1234, 524280}, {500}} {
		var arg []string
		for _, s := range sizes {
			arg = append(arg, fmt.Sprint(s))
		}
		want := liveClasses(t, "-o", "slab_sizes="+strings.Join(arg, "-"))
		c := newCache(t, Config{SlabSizes: sizes, NoCrawler: true})
		if got := c.Classes(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("slab_sizes %v:\n corvid    %v\n memcached %v", sizes, got, want)
		}
		if got, err := ClassTable(Config{SlabSizes: sizes}); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ClassTable with slab_sizes %v: %v, %v\n memcached %v", sizes, got, err, want)
		}
	}
}

//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// startProxyProc runs "corvid proxy -c conf" with its stats port on
// 127.0.0.1:statsPort and waits until it has logged that it started; the
// test's end kills it.
func startProxyProc(t *testing.T, conf string, statsPort int) *serverProc {
	t.Helper()
	bin := corvidBinary(t)
	p := &serverProc{done: make(chan error, 1), stderr: new(syncBuilder)}
	p.cmd = exec.Command(bin, "proxy", "-c", conf, "-a", "127.0.0.1", "-s", strconv.Itoa(statsPort), "-v", "6")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
	})
	waitLog(t, p, "started on pid")
	return p
}

// waitLog waits until the process has logged a line containing want.
func waitLog(t *testing.T, p *serverProc, want string) {
	t.Helper()
	testutil.WaitFor(t, func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("the proxy exited (%v) before logging %q:\n%s", err, want, p.stderr)
		default:
		}
		return strings.Contains(p.stderr.String(), want)
	})
}

// exampleConf is examples/nutcracker.yml's two pools on the given ports in
// front of servers a and b.
func exampleConf(alphaPort, betaPort int, a, b string) string {
	return fmt.Sprintf(`alpha:
  listen: 127.0.0.1:%d
  hash: fnv1a_64
  distribution: ketama
  timeout: 400
  auto_eject_hosts: true
  server_retry_timeout: 30000
  server_failure_limit: 2
  servers:
   - %s:1
   - %s:1
beta:
  listen: 127.0.0.1:%d
  hash: murmur
  hash_tag: "{}"
  distribution: ketama
  servers:
   - %s:1 cache-a
   - %s:1 cache-b
`, alphaPort, a, b, betaPort, a, b)
}

// TestBinaryProxyEndToEnd runs the built proxy with the example file's
// pools in front of two corvid servers: sets, gets and a multi-get
// through each pool, and the stats port counts the requests on both
// servers of each pool.
func TestBinaryProxyEndToEnd(t *testing.T) {
	a := testutil.StartCorvid(t, server.Config{})
	b := testutil.StartCorvid(t, server.Config{})
	ports := testutil.FreePorts(t, 3)
	conf := filepath.Join(t.TempDir(), "nutcracker.yml")
	if err := os.WriteFile(conf, []byte(exampleConf(ports[0], ports[1], a, b)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProxyProc(t, conf, ports[2])
	for i, port := range ports[:2] {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		var keys []string
		var want strings.Builder
		for k := range 20 {
			key := fmt.Sprintf("user:{%d}:%d", k, i)
			keys = append(keys, key)
			if got := roundTrip(t, addr, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(key), key), "STORED"); got != "STORED\r\n" {
				t.Fatalf("set %s: %q", key, got)
			}
			fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", key, len(key), key)
		}
		if got := roundTrip(t, addr, "get "+keys[3]+"\r\n", "END"); got != fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", keys[3], len(keys[3]), keys[3]) {
			t.Errorf("get: %q", got)
		}
		want.WriteString("END\r\n")
		if got := roundTrip(t, addr, "get "+strings.Join(keys, " ")+"\r\n", "END"); got != want.String() {
			t.Errorf("multi-get through pool %d:\n got %q\nwant %q", i, got, want.String())
		}
	}
	raw, err := readAll("127.0.0.1:" + strconv.Itoa(ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]any
	if err := json.Unmarshal(raw, &stats); err != nil {
		t.Fatalf("stats JSON: %v\n%s", err, raw)
	}
	for _, tc := range []struct{ pool, s1, s2 string }{{"alpha", a, b}, {"beta", "cache-a", "cache-b"}} {
		pool, _ := stats[tc.pool].(map[string]any)
		for _, name := range []string{tc.s1, tc.s2} {
			srv, _ := pool[name].(map[string]any)
			if n, _ := srv["requests"].(float64); n < 1 {
				t.Errorf("pool %s server %s: %v requests in %s", tc.pool, name, srv["requests"], raw)
			}
		}
	}
	p.stop(t, syscall.SIGTERM)
}

// TestBinaryProxyReload runs the built proxy and changes its
// configuration: a file renamed over the configuration is loaded (a pool
// added), an invalid one is refused with the old configuration serving,
// and SIGHUP loads a change the watcher cannot see (the pool removed). A
// client connected from the start keeps its connection throughout.
//
// The configuration is a symbolic link, as a deployment tool switches
// it: the watched directory holds the link; the files it points to are in
// another, which is not watched.
func TestBinaryProxyReload(t *testing.T) {
	a := testutil.StartCorvid(t, server.Config{})
	b := testutil.StartCorvid(t, server.Config{})
	ports := testutil.FreePorts(t, 3)
	alpha := "127.0.0.1:" + strconv.Itoa(ports[0])
	beta := "127.0.0.1:" + strconv.Itoa(ports[1])
	confDir, files := t.TempDir(), t.TempDir()
	conf := filepath.Join(confDir, "nutcracker.yml")
	only := fmt.Sprintf("alpha:\n  listen: %s\n  servers:\n   - %s:1\n", alpha, a)
	both := only + fmt.Sprintf("beta:\n  listen: %s\n  servers:\n   - %s:1\n", beta, b)
	write := func(name, text string) string {
		path := filepath.Join(files, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// point switches the link as editors and deployment tools do: a new
	// link renamed over the old.
	point := func(target string) {
		tmp := conf + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	point(write("v1.yml", only))
	p := startProxyProc(t, conf, ports[2])

	nc, err := net.Dial("tcp", alpha)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rd := bufio.NewReader(nc)
	n := 0
	// check sets and gets a key on the client's connection.
	check := func(when string) {
		t.Helper()
		n++
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		v := strconv.Itoa(n)
		fmt.Fprintf(nc, "set k 0 0 %d\r\n%s\r\nget k\r\n", len(v), v)
		var got strings.Builder
		for !strings.HasSuffix(got.String(), "END\r\n") {
			line, err := rd.ReadString('\n')
			got.WriteString(line)
			if err != nil {
				break
			}
		}
		if want := fmt.Sprintf("STORED\r\nVALUE k 0 %d\r\n%s\r\nEND\r\n", len(v), v); got.String() != want {
			t.Fatalf("%s: %q, want %q", when, got.String(), want)
		}
	}
	check("at start")

	point(write("v2.yml", both))
	waitLog(t, p, `msg="configuration reloaded" reason="file changed"`)
	testutil.WaitFor(t, func() bool { return answersVersion(beta) })
	check("after the file changed")

	point(write("bad.yml", "alpha: [\n"))
	waitLog(t, p, `msg="configuration refused; the previous one keeps serving" reason="file changed"`)
	check("after an invalid file")
	if !answersVersion(beta) {
		t.Error("pool beta stopped with the invalid file")
	}

	write("bad.yml", only) // not seen by the watcher
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, `msg="configuration reloaded" reason=SIGHUP`)
	testutil.WaitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", beta, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	check("after SIGHUP")
	if c := strings.Count(p.stderr.String(), "configuration reloaded"); c != 2 {
		t.Errorf("%d reloads, want 2:\n%s", c, p.stderr)
	}
	p.stop(t, syscall.SIGTERM)
}

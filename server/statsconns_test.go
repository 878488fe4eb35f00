package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// statsConns returns the lines of "stats conns" on a new connection from
// dial, which is closed before it returns.
func statsConns(t *testing.T, dial func() net.Conn) []string {
	t.Helper()
	nc := dial()
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(replyTimeout))
	io.WriteString(nc, "stats conns\r\n")
	r := bufio.NewReader(nc)
	var lines []string
	for range 1000 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stats conns: %q, %v", lines, err)
		}
		if l == "END\r\n" {
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\r\n"))
	}
	t.Fatalf("stats conns: no END after %d lines", len(lines))
	return nil
}

var statsConnRE = regexp.MustCompile(`^STAT (\d+):(\S+) (.*)$`)

// connsShape rewrites "stats conns" lines so that two servers' can be
// compared: one line per descriptor with its fields, the addresses named
// in names replaced by those names and the seconds dropped, sorted (the
// order of descriptors depends on which ones the server reused). It fails
// unless the descriptors ascend.
func connsShape(t *testing.T, lines []string, names map[string]string) []string {
	t.Helper()
	var out []string
	last := -1
	for _, l := range lines {
		m := statsConnRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("stats conns line %q", l)
		}
		fd, _ := strconv.Atoi(m[1])
		if fd < last {
			t.Fatalf("descriptor %d after %d in %q", fd, last, lines)
		}
		if fd != last {
			out = append(out, "")
			last = fd
		}
		v := m[3]
		if n, ok := names[v]; ok {
			v = n
		} else if m[2] == "addr" && names["*"] != "" {
			v = names["*"] // the connection asking
		}
		if m[2] == "secs_since_last_cmd" {
			v = "N"
		}
		out[len(out)-1] += m[2] + "=" + v + " "
	}
	slices.Sort(out)
	return out
}

// connsScenario opens client connections in the states memcached names
// (new, reading a value, half a line, idle after a command, a watcher) and
// returns "stats conns" in connsShape form, with the port of each
// connection's client as its name.
func connsScenario(t *testing.T, tcpAddr, udpAddr string) []string {
	t.Helper()
	dial := func() net.Conn {
		nc, err := net.DialTimeout("tcp", tcpAddr, replyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		return nc
	}
	names := map[string]string{"tcp:" + tcpAddr: "tcp-listener", "udp:" + udpAddr: "udp-socket", "*": "stats"}
	add := func(nc net.Conn, name string) {
		names["tcp:"+nc.LocalAddr().String()] = name
	}
	fresh := dial()
	add(fresh, "fresh")
	idle := dial()
	add(idle, "idle")
	io.WriteString(idle, "version\r\n")
	bufio.NewReader(idle).ReadString('\n')
	watcher := dial()
	add(watcher, "watcher")
	io.WriteString(watcher, "watch fetchers\r\n")
	wr := bufio.NewReader(watcher)
	if l, err := wr.ReadString('\n'); l != "OK\r\n" {
		t.Fatalf("watch: %q %v", l, err)
	}
	nread := dial()
	add(nread, "nread")
	io.WriteString(nread, "set k 0 0 10\r\nabc")
	half := dial()
	add(half, "half")
	io.WriteString(half, "get k")

	// The watcher's lines name the client by the descriptor that stats
	// conns lists it under.
	getter := dial()
	add(getter, "getter")
	io.WriteString(getter, "get nokey\r\n")
	bufio.NewReader(getter).ReadString('\n')
	l, err := wr.ReadString('\n')
	m := regexp.MustCompile(` cfd=(\d+) `).FindStringSubmatch(l)
	if err != nil || m == nil {
		t.Fatalf("watcher line %q, %v", l, err)
	}
	cfd := m[1]

	var lines []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Wait until the partial requests have been read, and the
		// getter, whose reply may be written before its state goes
		// back to waiting, is waiting: only the asking connection
		// parses a command then.
		lines = statsConns(t, dial)
		all := strings.Join(lines, "\n")
		// The connections of earlier rounds are listed until the
		// server has seen them close: seven clients in all.
		settled := strings.Contains(all, "conn_nread") && strings.Count(all, "conn_read") >= 3 &&
			strings.Count(all, "conn_parse_cmd") <= 1 && strings.Count(all, ":listen_addr ") == 7
		if settled || time.Now().After(deadline) {
			break
		}
	}
	found := false
	for _, l := range lines {
		if l == "STAT "+cfd+":addr tcp:"+getter.LocalAddr().String() {
			found = true
		}
	}
	if !found {
		t.Errorf("watcher's cfd=%s is not the getter's id in %q", cfd, lines)
	}
	return connsShape(t, lines, names)
}

// TestStatsConnsMatchesMemcached compares "stats conns" between corvid (in
// both connection modes) and memcached with one TCP port, one UDP port and
// clients in each state.
func TestStatsConnsMatchesMemcached(t *testing.T) {
	want := []string{
		"UDP=UDP addr=udp-socket state=conn_read secs_since_last_cmd=N ",
		"addr=fresh listen_addr=tcp-listener state=conn_new_cmd secs_since_last_cmd=N ",
		"addr=getter listen_addr=tcp-listener state=conn_read secs_since_last_cmd=N ",
		"addr=half listen_addr=tcp-listener state=conn_read secs_since_last_cmd=N ",
		"addr=idle listen_addr=tcp-listener state=conn_read secs_since_last_cmd=N ",
		"addr=nread listen_addr=tcp-listener state=conn_nread secs_since_last_cmd=N ",
		"addr=stats listen_addr=tcp-listener state=conn_parse_cmd secs_since_last_cmd=N ",
		"addr=tcp-listener state=conn_listening secs_since_last_cmd=N ",
		"addr=watcher listen_addr=tcp-listener state=conn_watch secs_since_last_cmd=N ",
	}
	check := func(t *testing.T, tcp, udp string) {
		got := connsScenario(t, tcp, udp)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("stats conns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	for _, loops := range []int{0, 2} {
		t.Run(fmt.Sprintf("corvid_loops_%d", loops), func(t *testing.T) {
			srv := startUDPCorvid(t, server.Config{TCPAddrs: []string{"127.0.0.1:0"}, EventLoops: loops})
			check(t, srv.Addrs()[0].String(), srv.UDPAddrs()[0].String())
		})
	}
	t.Run("memcached", func(t *testing.T) {
		tcp, udp := startUDPMemcached(t, "-t", "1")
		check(t, tcp, udp)
	})
}

// TestStatsConnsUnix checks the lines of a Unix socket and its clients,
// which are memcached's: the socket's path, and an empty client address.
func TestStatsConnsUnix(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "corvid.sock")
	testutil.ServeCorvid(t, server.Config{UnixPath: sock})
	dial := func() net.Conn {
		nc, err := net.DialTimeout("unix", sock, replyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	dial()
	got := connsShape(t, statsConns(t, dial), map[string]string{"unix:" + sock: "unix-listener"})
	want := []string{
		"addr=?:<AF 0> listen_addr=unix-listener state=conn_new_cmd secs_since_last_cmd=N ",
		"addr=?:<AF 0> listen_addr=unix-listener state=conn_parse_cmd secs_since_last_cmd=N ",
		"addr=unix-listener state=conn_listening secs_since_last_cmd=N ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stats conns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

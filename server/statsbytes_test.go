package server_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

// statValues returns the "STAT name value" pairs of a "stats [group]" reply.
func statValues(t *testing.T, addr, group string) map[string]string {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	cmd := "stats"
	if group != "" {
		cmd += " " + group
	}
	c.Send([]byte(cmd + "\r\n"))
	m := map[string]string{}
	for _, line := range strings.Split(string(c.ReadReply(testutil.StatsReply)), "\r\n") {
		if f := strings.SplitN(line, " ", 3); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}

// sumStat adds up the values of the stats whose names end in suffix.
func sumStat(m map[string]string, suffix string) uint64 {
	var n uint64
	for name, v := range m {
		if strings.HasSuffix(name, suffix) {
			u, _ := strconv.ParseUint(v, 10, 64)
			n += u
		}
	}
	return n
}

// sizedStores are stores of assorted key and value sizes, flags (which
// take memcached 4 more bytes when nonzero) and TTLs, into several slab
// classes, with one item over slab_chunk_max (chained) and some
// overwritten, appended to, incremented or deleted.
var sizedStores = []string{
	"set a 0 0 1\r\nx\r\n",
	"set empty 0 0 0\r\n\r\n",
	"set " + strings.Repeat("k", 250) + " 7 0 3\r\nabc\r\n",
	"set f 4294967295 100 100\r\n" + strings.Repeat("v", 100) + "\r\n",
	"set mid 0 3600 5000\r\n" + strings.Repeat("m", 5000) + "\r\n",
	"set big 1 0 700000\r\n" + strings.Repeat("b", 700000) + "\r\n",
	"set n 0 0 2\r\n10\r\n",
	"incr n 5\r\n",
	"set n2 3 0 2\r\n99\r\n",
	"incr n2 1\r\n",
	"set a 0 0 30\r\n" + strings.Repeat("y", 30) + "\r\n",
	"append mid 0 0 10\r\n0123456789\r\n",
	"prepend f 0 0 3\r\nabc\r\n",
	"set gone 0 0 4\r\ngone\r\n",
	"delete gone\r\n",
}

// TestStatsBytesMatchMemcached stores the same items into memcached and
// corvid and checks that "bytes" the classes' "mem_requested" are
// memcached's figures (its 48-byte item header, key, a NUL, value and
// CRLF, 4 bytes of nonzero flags and 8 of CAS), with and without -C,
// although corvid's own item header is smaller.
func TestStatsBytesMatchMemcached(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCAS=%v", noCAS), func(t *testing.T) {
			args := []string{"-m", "64", "-o", "no_lru_crawler,no_lru_maintainer"}
			if noCAS {
				args = append(args, "-C")
			}
			mc := testutil.StartMemcached(t, args...)
			cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{
				MemoryLimit: 64 << 20, DisableCAS: noCAS, NoCrawler: true, NoLRUMaintainer: true}})
			for _, addr := range []string{mc, cv} {
				c := testutil.Dial(t, addr)
				for _, s := range sizedStores {
					c.Send([]byte(s))
					c.ReadReply(testutil.LineReply)
				}
				c.Close()
			}
			want, got := statValues(t, mc, ""), statValues(t, cv, "")
			for _, name := range []string{"curr_items", "bytes"} {
				if got[name] != want[name] {
					t.Errorf("stats %s: corvid %s, memcached %s", name, got[name], want[name])
				}
			}
			// corvid's smaller header puts some items in smaller classes
			// than memcached, so the classes' figures are compared summed.
			if w, g := sumStat(statValues(t, mc, "items"), ":mem_requested"), sumStat(statValues(t, cv, "items"), ":mem_requested"); g != w {
				t.Errorf("stats items mem_requested summed over the classes: corvid %d, memcached %d", g, w)
			}
		})
	}
}

// waitAlone waits (10 s at most) until the server, asked on c, lists no
// TCP client connection but c in "stats conns", and udp UDP connections
// unless udp is negative. memcached's worker thread sees a client's close
// some time after it (later still when the machine is busy), and until
// then lists the connection and counts it in curr_connections: those
// closed before (its start-up probe's, ones that read stats) must be gone
// before its counts are read. Its worker threads also make their UDP
// connections when they get to it, after it accepts TCP clients.
func waitAlone(t *testing.T, c *testutil.Conn, udp int) {
	t.Helper()
	testutil.WaitFor(t, func() bool {
		conns := string(readStatsRaw(t, c, "stats conns\r\n"))
		return strings.Count(conns, ":listen_addr tcp:") == 1 && (udp < 0 || strings.Count(conns, ":addr udp:") == udp)
	})
}

// TestConnectionStatsMatchMemcached compares the connection counts of
// "stats" with memcached's for the same listeners and -t: memcached makes a
// connection for each listening socket and one per worker thread for each
// UDP socket, counts them in connection_structures, curr_connections (less
// one) and total_connections (until "stats reset"), and reports five
// reserved descriptors per thread. memcached's connection_structures and
// total_connections also count the connection that saw it start, when it
// got that far, so corvid's are checked against its curr_connections.
func TestConnectionStatsMatchMemcached(t *testing.T) {
	for _, udp := range []bool{false, true} {
		t.Run(fmt.Sprintf("udp=%v", udp), func(t *testing.T) {
			var mc string
			cfg := server.Config{Threads: 3}
			mcUDP := 0 // memcached's UDP connections: one per thread
			if udp {
				mcUDP = 3
				mc, _ = startUDPMemcached(t, "-t", "3")
				cfg.UDPAddrs = []string{"127.0.0.1:0"}
			} else {
				mc = testutil.StartMemcached(t, "-t", "3")
			}
			cv := testutil.StartCorvid(t, cfg)
			read := func(addr string, udp int) map[string]string {
				c := testutil.Dial(t, addr) // open while the stats are read
				defer c.Close()
				waitAlone(t, c, udp)
				m := readStats(t, c, "stats\r\n")
				c.Send([]byte("stats reset\r\n"))
				c.ReadReply(testutil.LineReply)
				m["total_connections after reset"] = statValues(t, addr, "")["total_connections"]
				return m
			}
			want, got := read(mc, mcUDP), read(cv, -1)
			for _, n := range []string{"curr_connections", "reserved_fds"} {
				if got[n] != want[n] {
					t.Errorf("%s: corvid %s, memcached %s", n, got[n], want[n])
				}
			}
			curr, _ := strconv.Atoi(got["curr_connections"])
			for n, w := range map[string]string{
				"connection_structures":         strconv.Itoa(curr + 1),
				"total_connections":             strconv.Itoa(curr + 1), // none has closed
				"total_connections after reset": "1",
			} {
				if got[n] != w {
					t.Errorf("corvid: %s %s, want %s (curr_connections %d)", n, got[n], w, curr)
				}
			}
		})
	}
}

// TestMaintainerStatsMatchMemcached checks that the general stats
// memcached lists only while its LRU maintainer runs are listed by corvid
// exactly when memcached lists them.
func TestMaintainerStatsMatchMemcached(t *testing.T) {
	names := []string{"evicted_active", "moves_to_cold", "moves_to_warm", "moves_within_lru",
		"direct_reclaims", "lru_bumps_dropped", "lru_maintainer_juggles"}
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("no_lru_maintainer=%v", off), func(t *testing.T) {
			var args []string
			if off {
				args = []string{"-o", "no_lru_maintainer"}
			}
			mc := testutil.StartMemcached(t, args...)
			cv := testutil.StartCorvid(t, server.Config{Storage: storage.Config{NoLRUMaintainer: off}})
			want, got := statValues(t, mc, ""), statValues(t, cv, "")
			for _, n := range names {
				_, w := want[n]
				_, g := got[n]
				if g != w {
					t.Errorf("stats %s listed: corvid %v, memcached %v", n, g, w)
				}
			}
		})
	}
}

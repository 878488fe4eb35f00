//go:build unix

package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestProxyConfDiff writes random nutcracker.yml files, valid pools and
// then mutations of them, and checks that corvid proxy -t accepts and
// refuses what nutcracker -t does, with the same exit status. Of the files
// both accept, some are started for real under nutcracker, whose stats
// JSON names its pools and servers: corvid must read the same pools and
// the same server names (the names place keys on the continuum).
//
// CORVID_CONFDIFF_FILES sets how many files (300 by default) and
// CORVID_CONFDIFF_SEED the first seed (each file has its own: a mismatch
// names it, and CORVID_CONFDIFF_FILES=1 with that seed replays it).
func TestProxyConfDiff(t *testing.T) {
	bin := testutil.NutcrackerPath()
	if bin == "" {
		t.Skip("nutcracker is not installed")
	}
	files, seed := 300, int64(1)
	if s := os.Getenv("CORVID_CONFDIFF_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("CORVID_CONFDIFF_FILES=%q", s)
		}
		files = n
	}
	if s := os.Getenv("CORVID_CONFDIFF_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("CORVID_CONFDIFF_SEED=%q", s)
		}
		seed = n
	}
	dir := t.TempDir()
	ports := testutil.FreePorts(t, 8)
	path := filepath.Join(dir, "nutcracker.yml")
	accepted, started, mismatches := 0, 0, 0
	for i := 0; i < files && mismatches < 10; i++ {
		s := seed + int64(i)
		g := &confGen{r: rand.New(rand.NewSource(s)), dir: dir, ports: ports}
		text := g.file()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, ncode := nutcrackerStderr(t, "-t", "-c", path)
		_, err := runProxyCommand(context.Background(), noProxy, "-t", "-c", path)
		if err != nil && ncode == 0 && (strings.Contains(err.Error(), "has an empty name") || strings.Contains(err.Error(), "has no host")) {
			continue // README: a server with an empty name or host
		}
		if (err == nil) != (ncode == 0) {
			mismatches++
			t.Errorf("seed %d: nutcracker -t exits %d (%s), corvid: %v\n%s", s, ncode, lastLine(out), err, text)
			continue
		}
		if err != nil {
			continue
		}
		accepted++
		// Start a share of the accepted files, those whose listeners can
		// all be bound at once.
		if g.r.Intn(4) != 0 || !g.startable {
			continue
		}
		cfg, err := loadProxyConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, p := range cfg.Pools {
			for _, srv := range p.Servers {
				// The name on the continuum, which the stats show too.
				name := srv.KetamaName()
				if stats := cmp.Or(srv.Name, srv.Addr); stats != name {
					name += " (stats " + stats + ")"
				}
				got[p.Name] = append(got[p.Name], name)
			}
			sort.Strings(got[p.Name])
		}
		want, err := nutcrackerPools(t, bin, path)
		if err != nil {
			t.Logf("seed %d: not started: %v", s, err)
			continue
		}
		started++
		if fmt.Sprint(got) != fmt.Sprint(want) {
			mismatches++
			t.Errorf("seed %d: corvid reads pools and servers %v, nutcracker serves %v\n%s", s, got, want, text)
		}
	}
	t.Logf("%d files, %d accepted by both, %d started under nutcracker", files, accepted, started)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// nutcrackerPools runs nutcracker on the file at path and returns the
// pools and (sorted) server names of its stats JSON.
func nutcrackerPools(t *testing.T, bin, path string) (map[string][]string, error) {
	stats := testutil.FreePorts(t, 1)[0]
	cmd := exec.Command(bin, "-c", path, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-v", "0")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(stats))
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case err := <-done:
			done <- err
			return nil, fmt.Errorf("nutcracker exited: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var b strings.Builder
			_, err = bufio.NewReader(c).WriteTo(&b)
			c.Close()
			if err == nil && b.Len() > 0 {
				body = []byte(b.String())
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no stats on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	pools := map[string][]string{}
	for name, raw := range top {
		var pool map[string]json.RawMessage
		if json.Unmarshal(raw, &pool) != nil {
			continue // service, version, uptime and the other numbers
		}
		for k, v := range pool {
			if v[0] == '{' {
				pools[name] = append(pools[name], k)
			}
		}
		sort.Strings(pools[name])
	}
	return pools, nil
}

// confGen writes one nutcracker.yml from its random source.
type confGen struct {
	r     *rand.Rand
	dir   string
	ports []int
	// startable is false once the file may not be started for real: a
	// listen address that cannot be bound, or that another pool shares.
	startable bool
	// odd is how rarely a value is an odd one (one in odd); 0: never.
	odd int
}

// oddOne reports whether the next value is to be an odd one.
func (g *confGen) oddOne() bool { return g.odd > 0 && g.chance(g.odd) }

// confEntry is one directive of a pool: a scalar value, or a sequence.
type confEntry struct {
	key   string
	val   string
	seq   []string
	block string // the value is a block scalar of this style
	bare  bool   // the key alone, no colon after it
}

type confPool struct {
	name    string
	entries []confEntry
}

func (g *confGen) pick(s ...string) string { return s[g.r.Intn(len(s))] }

func (g *confGen) chance(n int) bool { return g.r.Intn(n) == 0 }

func (g *confGen) port(i int) string { return strconv.Itoa(g.ports[i%len(g.ports)]) }

// server returns a servers entry, usually a good one.
func (g *confGen) server(i int) string {
	port := strconv.Itoa(11211 + g.r.Intn(3))
	weight := strconv.Itoa(1 + g.r.Intn(3))
	name := ""
	if g.chance(3) {
		name = " s" + strconv.Itoa(i)
	}
	if !g.oddOne() {
		return "127.0.0.1:" + port + ":" + weight + name
	}
	return g.pick(
		"127.0.0.1:"+port,
		"127.0.0.1:"+port+":0",
		"127.0.0.1:"+port+":-1",
		"127.0.0.1:"+port+":+1",
		"127.0.0.1:"+port+":1x",
		"127.0.0.1:"+port+":99999999999",
		"127.0.0.1:"+port+":1 two words",
		"127.0.0.1:"+port+":1  spaced",
		"127.0.0.1:0:1",
		"127.0.0.1:65536:1",
		"127.0.0.1::1",
		":"+port+":1",
		"localhost:"+port+":"+weight+name,
		"no-such-host.invalid:"+port+":"+weight+name,
		"::1:"+port+":"+weight+name,
		"[::1]:"+port+":"+weight+name,
		"::1:11211:1",
		"[::1]:11211:1",
		"/tmp/corvid-confdiff.sock:"+weight+name,
		"/tmp/corvid-confdiff.sock",
		"/tmp/a:b.sock:1",
		"/tmp/corvid-confdiff.sock:0",
		"127.0.0.1:11211:1 s"+strconv.Itoa(i),
		"127.0.0.1:"+port+":"+weight+" "+g.pick("x", "127.0.0.1:11211", "é"),
		"", `""`, `"127.0.0.1:11211:1 "`,
	)
}

func (g *confGen) number(good string) string {
	if !g.oddOne() {
		return good
	}
	return g.pick("0", "-1", "+5", "0x10", "010", "1e3", "5.0", "2147483647", "2147483648",
		"4294967297", "99999999999", `"7"`, "'7'", "~", "null", "abc", "true", "1_000", " 12")
}

func (g *confGen) boolean() string {
	if !g.oddOne() {
		return g.pick("true", "false")
	}
	return g.pick("True", "TRUE", "yes", "no", "on", "1", "0", `"true"`, "'false'", "~", "t")
}

// listen returns pool i's listen address.
func (g *confGen) listen(i int) string {
	p := g.port(i)
	if !g.oddOne() {
		return "127.0.0.1:" + p
	}
	sock := filepath.Join(g.dir, "p"+strconv.Itoa(i)+".sock")
	l := g.pick(
		"localhost:"+p, "0.0.0.0:"+p, "::1:"+p, "[::1]:"+p, ":"+p, "127.0.0.1:0", "127.0.0.1:70000",
		"127.0.0.1:-5", "127.0.0.1", "no-such-host.invalid:"+p, "127.0.0.1:0"+p, "127.0.0.1:"+p+" 0666",
		sock, sock+" 0666", sock+" 0777", sock+" 0778", sock+" 1000", sock+" -1", sock+" abc",
		sock+" 0666 0600", sock+" 06x", sock+"  0600", "/"+strings.Repeat("x", 120)+" 0666",
		// The longest socket path nutcracker takes, and one byte more.
		"/tmp/"+strings.Repeat("x", 102)+" 0666", "/tmp/"+strings.Repeat("x", 103), sock+" 0",
		sock+" +0644", sock+" 0644 ", sock+"\t0644",
	)
	switch l {
	case "localhost:" + p, "::1:" + p, sock, sock + " 0666", sock + " 0777", sock + " abc":
	default:
		g.startable = false
	}
	return l
}

func (g *confGen) pool(i int) confPool {
	p := confPool{name: g.pick("alpha", "beta", "gamma", "delta", "pool_"+strconv.Itoa(i), "123", "a b", "Alpha")}
	p.entries = append(p.entries, confEntry{key: "listen", val: g.listen(i)})
	opt := []func() confEntry{
		func() confEntry {
			if g.oddOne() {
				return confEntry{key: "hash", val: g.pick("MD5", "Fnv1a_64", "sha1", `"md5 "`, "md5,")}
			}
			return confEntry{key: "hash", val: g.pick("one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
				"fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins")}
		},
		func() confEntry {
			if g.oddOne() {
				return confEntry{key: "hash_tag", val: g.pick(`"{"`, `"{}}"`, `""`, "é", `"é"`, "{}", "a b")}
			}
			return confEntry{key: "hash_tag", val: g.pick(`"{}"`, `"[]"`, `"::"`, "ab", "'<>'")}
		},
		func() confEntry {
			if g.oddOne() {
				return confEntry{key: "distribution", val: g.pick("Ketama", "MODULA", "jump", `"random"`)}
			}
			return confEntry{key: "distribution", val: g.pick("ketama", "modula", "random")}
		},
		func() confEntry { return confEntry{key: "timeout", val: g.number(strconv.Itoa(g.r.Intn(5000)))} },
		func() confEntry { return confEntry{key: "backlog", val: g.number(strconv.Itoa(g.r.Intn(2048)))} },
		func() confEntry {
			return confEntry{key: "client_connections", val: g.number(strconv.Itoa(g.r.Intn(100)))}
		},
		func() confEntry { return confEntry{key: "preconnect", val: g.boolean()} },
		func() confEntry { return confEntry{key: "tcpkeepalive", val: g.boolean()} },
		func() confEntry { return confEntry{key: "auto_eject_hosts", val: g.boolean()} },
		func() confEntry {
			return confEntry{key: "server_connections", val: g.number(strconv.Itoa(1 + g.r.Intn(4)))}
		},
		func() confEntry {
			return confEntry{key: "server_retry_timeout", val: g.number(strconv.Itoa(g.r.Intn(60000)))}
		},
		func() confEntry {
			return confEntry{key: "server_failure_limit", val: g.number(strconv.Itoa(g.r.Intn(5)))}
		},
		func() confEntry { return confEntry{key: "redis", val: "false"} },
		func() confEntry { return confEntry{key: "redis_db", val: g.number("0")} },
	}
	for _, j := range g.r.Perm(len(opt))[:g.r.Intn(len(opt)+1)] {
		p.entries = append(p.entries, opt[j]())
	}
	var servers []string
	for j := 0; j < 1+g.r.Intn(4); j++ {
		servers = append(servers, g.server(j))
	}
	p.entries = append(p.entries, confEntry{key: "servers", seq: servers})
	g.r.Shuffle(len(p.entries), func(a, b int) { p.entries[a], p.entries[b] = p.entries[b], p.entries[a] })
	return p
}

// mutate changes the pools in one of the ways nutcracker's checks are
// about.
func (g *confGen) mutate(pools []confPool) []confPool {
	p := &pools[g.r.Intn(len(pools))]
	e := g.r.Intn(len(p.entries))
	switch g.r.Intn(17) {
	case 0: // a directive missing
		p.entries = append(p.entries[:e], p.entries[e+1:]...)
	case 1: // a directive twice
		p.entries = append(p.entries, p.entries[e])
	case 2: // a pool's name twice
		if len(pools) > 1 {
			pools[1].name = pools[0].name
		}
	case 3: // a listen address twice
		if len(pools) > 1 {
			pools[1].entries = append(pools[1].entries, pools[0].entries[0])
			g.startable = false
		}
	case 4: // an unknown directive
		p.entries = append(p.entries, confEntry{key: g.pick("colour", "Listen", "hash-tag", "route_x", "reuseport", "redis_auth"), val: "x"})
	case 5: // a list for a scalar
		if p.entries[e].seq == nil {
			p.entries[e] = confEntry{key: p.entries[e].key, seq: []string{p.entries[e].val}}
		}
	case 6: // a scalar for the list
		if p.entries[e].seq != nil {
			p.entries[e] = confEntry{key: "servers", val: p.entries[e].seq[0]}
		}
	case 7: // a flow list or mapping, an empty value
		p.entries[e] = confEntry{key: p.entries[e].key, val: g.pick("[]", "{}", "[1]", "", `""`, "~")}
	case 8: // an anchor and an alias
		if p.entries[e].seq == nil {
			v := p.entries[e].val
			p.entries[e].val = "&v " + v
			p.entries = append(p.entries, confEntry{key: p.entries[e].key, val: "*v"})
		}
	case 9: // a tag
		if p.entries[e].seq == nil {
			p.entries[e].val = g.pick("!!str ", "!!int ", "!x ") + p.entries[e].val
		}
	case 10: // a mapping a level down
		p.entries = append(p.entries, confEntry{key: "nested", val: "\n    a: b"})
	case 11: // a second servers list
		p.entries = append(p.entries, confEntry{key: "servers", seq: []string{g.server(9)}})
	case 12: // no pools at all
		return nil
	case 13: // a server list in a pool-level scalar position
		p.entries[e].key = g.pick("servers", "listen", "hash")
	case 14: // a block scalar (| keeps the line end, |- and >- do not)
		if p.entries[e].seq == nil {
			p.entries[e].block = g.pick("|", "|-", ">-", ">")
		}
	case 16: // no space after a colon: a key with no value
		if p.entries[e].seq == nil && p.entries[e].block == "" {
			p.entries[e].key += ":" + p.entries[e].val
			p.entries[e].val = ""
			p.entries[e].bare = true
		}
	case 15: // a quoted directive or pool name
		if g.chance(2) {
			p.name = `"` + p.name + `"`
		} else {
			p.entries[e].key = "'" + p.entries[e].key + "'"
		}
	}
	return pools
}

func (g *confGen) file() string {
	g.startable = true
	g.odd = []int{0, 0, 30, 12, 4}[g.r.Intn(5)]
	var pools []confPool
	for i := 0; i < 1+g.r.Intn(3); i++ {
		pools = append(pools, g.pool(i))
	}
	for n := g.r.Intn(5) - 2; n > 0; n-- {
		pools = g.mutate(pools)
		if pools == nil {
			break
		}
	}
	var b strings.Builder
	if g.chance(10) {
		b.WriteString("\ufeff")
	}
	if g.chance(8) {
		b.WriteString(g.pick("---\n", "# nutcracker.yml\n", "%YAML 1.1\n---\n", "\n\n"))
	}
	indent := g.pick("  ", "  ", "    ", "\t", " ")
	item := g.pick("   - ", "  - ", "- ", "    - ", "\t- ")
	for _, p := range pools {
		fmt.Fprintf(&b, "%s:%s\n", p.name, g.pickComment())
		for _, e := range p.entries {
			switch {
			case e.block != "":
				fmt.Fprintf(&b, "%s%s: %s\n%s%s%s\n", indent, e.key, e.block, indent, indent, e.val)
			case e.bare:
				fmt.Fprintf(&b, "%s%s\n", indent, e.key)
			case e.seq == nil:
				fmt.Fprintf(&b, "%s%s: %s%s\n", indent, e.key, e.val, g.pickComment())
			default:
				fmt.Fprintf(&b, "%s%s:\n", indent, e.key)
				for j, s := range e.seq {
					if j > 0 && g.chance(10) {
						fmt.Fprintf(&b, "%s# between\n", indent)
					}
					fmt.Fprintf(&b, "%s%s%s%s\n", indent, item, s, g.pickComment())
				}
			}
		}
		if g.chance(4) {
			b.WriteString("\n")
		}
	}
	if g.chance(10) {
		b.WriteString(g.pick("...\n", "---\n", "---\nz:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:11211:1\n", "# end\n"))
	}
	if g.chance(20) {
		return g.pick("", "\n", "# only a comment\n", "\ufeff", "---\n", "...\n", "alpha\n", "- a\n")
	}
	if g.chance(15) {
		return strings.ReplaceAll(b.String(), "\n", "\r\n")
	}
	return b.String()
}

func (g *confGen) pickComment() string {
	if g.chance(6) {
		return g.pick(" # note", "\t# tab", " #")
	}
	return ""
}

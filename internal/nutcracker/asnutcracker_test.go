package nutcracker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asNutcracker are files read as nutcracker 0.5.0 reads them (its
// src/nc_conf.c): values by their text, its YAML subset, servers and
// listen parsed from their end.
var asNutcracker = []struct {
	name string
	file string
	ok   bool
}{
	{"quoted number", pool("  timeout: \"400\"\n" + srvs), true},
	{"leading zero", pool("  timeout: 010\n" + srvs), true},
	{"wraps to 1", pool("  timeout: 4294967297\n" + srvs), true},
	{"wraps negative", pool("  timeout: 2147483648\n" + srvs), false},
	{"plus sign", pool("  timeout: +5\n" + srvs), false},
	{"hex", pool("  backlog: 0x10\n" + srvs), false},
	{"empty number", pool("  timeout:\n" + srvs), false},
	{"null number", pool("  timeout: ~\n" + srvs), false},
	{"quoted bool", pool("  preconnect: \"true\"\n" + srvs), true},
	{"yes", pool("  preconnect: yes\n" + srvs), false},
	{"True", pool("  auto_eject_hosts: True\n" + srvs), false},
	{"empty hash_tag", pool("  hash_tag: \"\"\n" + srvs), false},
	{"anchor and alias", pool("  timeout: &t 400\n  backlog: *t\n" + srvs), false},
	{"tag", pool("  timeout: !!int 400\n" + srvs), false},
	{"flow list", pool("  servers: [\"127.0.0.1:11211:1\"]\n"), false},
	{"document start", "---\na:\n  listen: 127.0.0.1:22121\n" + srvs, false},
	{"document end", "a:\n  listen: 127.0.0.1:22121\n" + srvs + "...\n", false},
	{"directive", "%YAML 1.1\n---\na:\n  listen: 127.0.0.1:22121\n" + srvs, false},
	{"only a comment", "# nothing\n", false},
	{"BOM", "\ufeffa:\n  listen: 127.0.0.1:22121\n" + srvs, true},
	{"CRLF", "a:\r\n  listen: 127.0.0.1:22121\r\n  servers:\r\n   - 127.0.0.1:11211:1\r\n", true},
	{"name with a space", pool("  servers:\n   - 127.0.0.1:11211:1 two words\n"), false},
	{"two spaces before the name", pool("  servers:\n   - 127.0.0.1:11211:1  name\n"), false},
	{"colon in a socket path", pool("  servers:\n   - /tmp/a:b.sock:1\n"), false},
	{"socket without weight", pool("  servers:\n   - /tmp/a.sock\n"), false},
	{"a list for listen, servers a value", "a:\n  listen:\n   - 127.0.0.1:22121\n  servers: 127.0.0.1:11211:1\n", true},
	{"two lists", pool("  servers:\n   - 127.0.0.1:11211:1\n  hash:\n   - md5\n"), false},
	{"no list", pool("  servers: 127.0.0.1:11211:1\n"), false},
	{"redis_auth without redis", pool("  redis_auth: pw\n" + srvs), false},
	{"nested mapping", pool("  hash:\n    a: b\n" + srvs), false},
	{"named as the address, and unnamed", pool("  servers:\n   - 127.0.0.1:11211:1 127.0.0.1:11211\n   - 127.0.0.1:11211:1\n"), true},
	{"empty pool name", "\"\":\n  listen: 127.0.0.1:22121\n" + srvs, false},
}

func TestServerEmptyNameOrHost(t *testing.T) {
	// nutcracker takes the space that ends the entry for the start of an
	// empty name, and places keys on a server called "": corvid refuses
	// the entry.
	_, err := Parse([]byte(pool("  servers:\n   - \"127.0.0.1:11211:1 \"\n")))
	if err == nil || !strings.Contains(err.Error(), "has an empty name") {
		t.Errorf("got %v", err)
	}
	// nutcracker cannot resolve an empty host; Go would dial this host.
	_, err = Parse([]byte(pool("  servers:\n   - :11211:1\n")))
	if err == nil || !strings.Contains(err.Error(), "has no host") {
		t.Errorf("got %v", err)
	}
}

const srvs = "  servers:\n   - 127.0.0.1:11211:1\n"

// pool is a file of one pool with a listen address and lines.
func pool(lines string) string { return "a:\n  listen: 127.0.0.1:22121\n" + lines }

func TestParseAsNutcracker(t *testing.T) {
	bin, _ := exec.LookPath("nutcracker")
	dir := t.TempDir()
	for _, tc := range asNutcracker {
		text := tc.file
		c, err := Parse([]byte(text))
		if (err == nil) != tc.ok {
			t.Errorf("%s: Parse: %v, want ok %v\n%s", tc.name, err, tc.ok, text)
		}
		if bin != "" {
			path := filepath.Join(dir, "n.yml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if nerr := exec.Command(bin, "-t", "-c", path).Run(); (nerr == nil) != tc.ok {
				t.Errorf("%s: nutcracker -t: %v, want ok %v", tc.name, nerr, tc.ok)
			}
		}
		if err != nil {
			continue
		}
		switch tc.name {
		case "wraps to 1":
			if c.Pools[0].Timeout != time.Millisecond {
				t.Errorf("%s: timeout %v", tc.name, c.Pools[0].Timeout)
			}
		case "leading zero":
			if c.Pools[0].Timeout != 10*time.Millisecond {
				t.Errorf("%s: timeout %v", tc.name, c.Pools[0].Timeout)
			}
		case "a list for listen, servers a value":
			if c.Pools[0].Listen != "127.0.0.1:22121" || len(c.Pools[0].Servers) != 1 {
				t.Errorf("%s: %+v", tc.name, c.Pools[0])
			}
		}
	}
}

// TestServerNamesAsNutcracker checks servers' addresses and their names
// on the continuum, the names nutcracker's stats show for them.
func TestServerNamesAsNutcracker(t *testing.T) {
	for _, tc := range []struct{ entry, addr, name string }{
		{"127.0.0.1:11211:1", "127.0.0.1:11211", "127.0.0.1"},
		{"127.0.0.1:11212:1", "127.0.0.1:11212", "127.0.0.1:11212"},
		{"127.0.0.1:011212:1", "127.0.0.1:11212", "127.0.0.1:011212"},
		{"localhost:011211:2", "localhost:11211", "localhost"},
		{"::1:11211:1", "[::1]:11211", "::1"},
		{"::1:11212:1", "[::1]:11212", "::1:11212"},
		{"/tmp/corvid.sock:1", "/tmp/corvid.sock", "/tmp/corvid.sock:"},
		{"/tmp/corvid.sock:1 sock", "/tmp/corvid.sock", "sock"},
		{"127.0.0.1:11211:3 name", "127.0.0.1:11211", "name"},
		// A name that is the address, which unnamed it is not.
		{"127.0.0.1:11211:1 127.0.0.1:11211", "127.0.0.1:11211", "127.0.0.1:11211"},
	} {
		s, err := ParseServer(tc.entry)
		if err != nil {
			t.Errorf("%s: %v", tc.entry, err)
			continue
		}
		if s.Addr != tc.addr || s.KetamaName() != tc.name {
			t.Errorf("%s: address %q name %q, want %q %q", tc.entry, s.Addr, s.KetamaName(), tc.addr, tc.name)
		}
	}
}

func TestListenAsNutcracker(t *testing.T) {
	for _, tc := range []struct {
		listen, addr string
		perm         os.FileMode
		ok           bool
	}{
		{"127.0.0.1:22121", "127.0.0.1:22121", 0, true},
		{"::1:22121", "[::1]:22121", 0, true},
		{"127.0.0.1:022121", "127.0.0.1:22121", 0, true},
		{"127.0.0.1:70000", "", 0, false},
		{"127.0.0.1", "", 0, false},
		{"/tmp/s", "/tmp/s", 0, true},
		{"/tmp/s 0666", "/tmp/s", 0o666, true},
		{"/tmp/s 0778", "/tmp/s", 0o77, true}, // strtol stops at the 8
		{"/tmp/s abc", "/tmp/s", 0, true},
		{"/tmp/a b 0600", "/tmp/a b", 0o600, true},
		{"/tmp/s 1000", "", 0, false},
		{"/tmp/s -1", "", 0, false},
		{"/" + strings.Repeat("x", 120), "", 0, false},
	} {
		addr, perm, err := parseListen(tc.listen)
		if (err == nil) != tc.ok || addr != tc.addr || perm != tc.perm {
			t.Errorf("%q: %q %o %v, want %q %o ok %v", tc.listen, addr, perm, err, tc.addr, tc.perm, tc.ok)
		}
	}
}

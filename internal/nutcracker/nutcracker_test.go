package nutcracker

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/ring"
)

const sample = `alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6379:1

beta:
  listen: 127.0.0.1:22122
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: false
  timeout: 400
  redis: true
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2

gamma:
  listen: /tmp/gamma 0666
  hash: murmur
  distribution: modula
  preconnect: true
  server_connections: 2
  servers:
   - 127.0.0.1:11212:1
   - 127.0.0.1:11213:3
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 3 || c.Pools[0].Name != "alpha" || c.Pools[2].Name != "gamma" {
		t.Fatalf("pools %+v", c.Pools)
	}
	a, b, g := c.Pools[0], c.Pools[1], c.Pools[2]
	if !a.AutoEjectHosts || !a.Redis || a.ServerRetryTimeout != 2*time.Second || a.ServerFailureLimit != 1 || a.Timeout != 0 {
		t.Errorf("alpha %+v", a)
	}
	if b.HashTag != "{}" || b.Timeout != 400*time.Millisecond || b.ServerFailureLimit != DefaultServerFailureLimit {
		t.Errorf("beta %+v", b)
	}
	if want := (ring.Server{Addr: "127.0.0.1:6381", Weight: 1, Name: "server2"}); b.Servers[1] != want {
		t.Errorf("beta server %+v, want %+v", b.Servers[1], want)
	}
	if g.Listen != "/tmp/gamma" || g.ListenPerm != 0o666 || !g.Preconnect || g.ServerConnections != 2 || g.Servers[1].Weight != 3 {
		t.Errorf("gamma %+v", g)
	}
	if g.Backlog != DefaultBacklog || g.ServerRetryTimeout != DefaultServerRetryTimeout {
		t.Errorf("gamma defaults %+v", g)
	}
	if _, err := g.Ring(); err != nil {
		t.Error(err)
	}
	if p, ok := c.Pool("beta"); !ok || p.Name != "beta" {
		t.Error("Pool(beta) not found")
	}
}

func TestParseErrors(t *testing.T) {
	for name, text := range map[string]string{
		"empty":            "",
		"not a mapping":    "- a\n- b\n",
		"no listen":        "a:\n  servers:\n   - 127.0.0.1:1:1\n",
		"no servers":       "a:\n  listen: 127.0.0.1:1\n",
		"unknown":          "a:\n  listen: 127.0.0.1:1\n  colour: red\n  servers:\n   - 127.0.0.1:1:1\n",
		"bad hash":         "a:\n  listen: 127.0.0.1:1\n  hash: sha1\n  servers:\n   - 127.0.0.1:1:1\n",
		"bad distribution": "a:\n  listen: 127.0.0.1:1\n  distribution: jump\n  servers:\n   - 127.0.0.1:1:1\n",
		"bad weight":       "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:0\n",
		"bad port":         "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:99999:1\n",
		"no port":          "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1\n",
		"bad tag":          "a:\n  listen: 127.0.0.1:1\n  hash_tag: \"{\"\n  servers:\n   - 127.0.0.1:1:1\n",
		"negative":         "a:\n  listen: 127.0.0.1:1\n  timeout: -5\n  servers:\n   - 127.0.0.1:1:1\n",
		"same listen":      "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:1\nb:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:1\n",
		"same name":        "a:\n  listen: 127.0.0.1:1\n  servers:\n   - 127.0.0.1:1:1 x\n   - 127.0.0.1:2:1 x\n",
		"not yaml":         "a: [\n",
	} {
		if _, err := Parse([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestNutcrackerAgrees checks that nutcracker -t accepts what Parse
// accepts and refuses what it refuses.
func TestNutcrackerAgrees(t *testing.T) {
	bin, err := exec.LookPath("nutcracker")
	if err != nil {
		t.Skip("nutcracker is not installed")
	}
	dir := t.TempDir()
	pool := func(lines ...string) string {
		return "a:\n  listen: 127.0.0.1:30001\n" + strings.Join(lines, "\n") + "\n"
	}
	srv := "  servers:\n   - 127.0.0.1:11211:1"
	cases := map[string]string{
		"sample":             strings.ReplaceAll(sample, "/tmp/gamma", filepath.Join(dir, "gamma")),
		"minimal":            pool(srv),
		"unknown directive":  pool("  colour: red", srv),
		"unknown hash":       pool("  hash: sha1", srv),
		"every hash":         pool("  hash: jenkins", srv),
		"unknown dist":       pool("  distribution: jump", srv),
		"random":             pool("  distribution: random", srv),
		"tcpkeepalive":       pool("  tcpkeepalive: true", srv),
		"timeout 0":          pool("  timeout: 0", srv),
		"hash tag":           pool("  hash_tag: \"{}\"", srv),
		"no servers":         pool(),
		"weight 0":           pool("  servers:\n   - 127.0.0.1:11211:0"),
		"no weight":          pool("  servers:\n   - 127.0.0.1:11211"),
		"named":              pool("  servers:\n   - 127.0.0.1:11211:1 one\n   - 127.0.0.1:11212:1 two"),
		"duplicate name":     pool("  servers:\n   - 127.0.0.1:11211:1 one\n   - 127.0.0.1:11212:1 one"),
		"duplicate address":  pool("  servers:\n   - 127.0.0.1:11211:1\n   - 127.0.0.1:11211:1"),
		"bad port":           pool("  servers:\n   - 127.0.0.1:70000:1"),
		"server conns 0":     pool("  server_connections: 0", srv),
		"negative timeout":   pool("  timeout: -1", srv),
		"auto eject":         pool("  auto_eject_hosts: true\n  server_retry_timeout: 100\n  server_failure_limit: 3", srv),
		"redis":              pool("  redis: true\n  redis_auth: pw\n  redis_db: 2", srv),
		"no listen":          "a:\n" + srv + "\n",
		"same listen":        pool(srv) + "b:\n  listen: 127.0.0.1:30001\n" + srv + "\n",
		"unix socket listen": "a:\n  listen: " + filepath.Join(dir, "s") + " 0666\n" + srv + "\n",
	}
	for name, text := range cases {
		path := filepath.Join(dir, "n.yml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, perr := Parse([]byte(text))
		out, nerr := exec.Command(bin, "-t", "-c", path).CombinedOutput()
		if (perr == nil) != (nerr == nil) {
			t.Errorf("%s: Parse: %v; nutcracker -t: %v %s", name, perr, nerr, bytes.TrimSpace(out))
		}
	}
}

package nutcracker

import (
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

// TestNutcrackerAgrees checks that nutcracker's own -t accepts the sample
// and refuses a file Parse refuses.
func TestNutcrackerAgrees(t *testing.T) {
	bin, err := exec.LookPath("nutcracker")
	if err != nil {
		t.Skip("nutcracker is not installed")
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		text string
		ok   bool
	}{
		{strings.ReplaceAll(sample, "/tmp/gamma", filepath.Join(dir, "gamma")), true},
		{"a:\n  listen: 127.0.0.1:1\n  colour: red\n  servers:\n   - 127.0.0.1:1:1\n", false},
		{"a:\n  listen: 127.0.0.1:1\n  hash: sha1\n  servers:\n   - 127.0.0.1:1:1\n", false},
	} {
		path := filepath.Join(dir, "n.yml")
		if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, perr := Parse([]byte(tt.text))
		out, nerr := exec.Command(bin, "-t", "-c", path).CombinedOutput()
		if (perr == nil) != tt.ok || (nerr == nil) != tt.ok {
			t.Errorf("Parse: %v; nutcracker -t: %v %s; want ok=%v", perr, nerr, out, tt.ok)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/ring"
)

func runCorvid(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestRingLookup(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	text := `alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  servers:
   - 10.0.0.1:11211:1
   - 10.0.0.2:11211:1
   - 10.0.0.3:11211:1
beta:
  listen: 127.0.0.1:22122
  hash: md5
  distribution: modula
  servers:
   - 10.0.1.1:11211:1
   - 10.0.1.2:11211:1
`
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCorvid(t, "ring", "-c", conf, "--pool", "alpha", "user:1", "user:2", "session:{x}")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ring.New(ring.Config{Servers: []ring.Server{{Addr: "10.0.0.1:11211"}, {Addr: "10.0.0.2:11211"}, {Addr: "10.0.0.3:11211"}}, Hash: "fnv1a_64"})
	var want strings.Builder
	for _, k := range []string{"user:1", "user:2", "session:{x}"} {
		want.WriteString(k + "\t" + r.Servers()[r.PickString(k)].Addr + "\n")
	}
	if out != want.String() {
		t.Errorf("got\n%s\nwant\n%s", out, want.String())
	}
	if _, err := runCorvid(t, "ring", "-c", conf, "k"); err == nil || !strings.Contains(err.Error(), "alpha, beta") {
		t.Errorf("no --pool with two pools: %v", err)
	}
	if _, err := runCorvid(t, "ring", "-c", conf, "--pool", "gamma", "k"); err == nil {
		t.Error("unknown pool accepted")
	}
}

// kept returns the "kept %" of a distribution in corvid ring's output.
func kept(t *testing.T, out, dist string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + dist + `\s+\d+\s+\d+\s+([0-9.]+)%`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s line in\n%s", dist, out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestRingCompare(t *testing.T) {
	out, err := runCorvid(t, "ring", "--servers", "a:11211,b:11211,c:11211", "--add", "d:11211", "--keys", "40000")
	if err != nil {
		t.Fatal(err)
	}
	// Adding a 4th server to 3 keeps 1/4 of the keys with modula and about
	// n/(n+m) = 3/4 with consistent hashing.
	if m := kept(t, out, "modula"); m < 23 || m > 27 {
		t.Errorf("modula kept %.1f%%, want ~25%%\n%s", m, out)
	}
	if k := kept(t, out, "ketama"); k < 70 || k > 82 {
		t.Errorf("ketama kept %.1f%%, want ~75%%\n%s", k, out)
	}
	if !strings.Contains(out, "d:11211") {
		t.Errorf("no share for the added server:\n%s", out)
	}
	out, err = runCorvid(t, "ring", "--servers", "a:11211,b:11211:3", "--remove", "a:11211", "--keys", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if k := kept(t, out, "ketama"); k < 70 || k > 80 {
		t.Errorf("removing the weight-1 server kept %.1f%% with ketama, want ~75%%", k)
	}
	for _, args := range [][]string{
		{"ring"},
		{"ring", "--servers", "a:1", "--remove", "x:1"},
		{"ring", "--servers", "a"},
		{"ring", "--servers", "a:1", "--keys", "0"},
		{"ring", "--servers", "a:1", "--hash", "sha1"},
		{"ring", "--servers", "a:1", "key"},
	} {
		if _, err := runCorvid(t, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

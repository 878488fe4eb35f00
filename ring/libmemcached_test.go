package ring

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libmemcachedSetups are the pools checked against libmemcached: addresses
// are only hashed, never contacted.
func libmemcachedSetups() []vectors {
	srv := func(spec ...string) []Server {
		var out []Server
		for _, s := range spec {
			var w int
			i := strings.LastIndexByte(s, ':')
			fmt.Sscan(s[i+1:], &w)
			out = append(out, Server{Addr: s[:i], Weight: w})
		}
		return out
	}
	var out []vectors
	add := func(name, hash string, dist Distribution, servers []Server) {
		out = append(out, vectors{
			Name: name, Hash: hash, Distribution: dist, Servers: servers,
			Prefix: fmt.Sprintf("l%02d:", len(out)), Keys: keysPerSetup,
		})
	}
	add("ketama/3 servers", "one_at_a_time", LibmemcachedKetama, srv("127.0.0.1:11311:1", "127.0.0.1:11312:1", "127.0.0.1:11313:1"))
	add("ketama/3 servers, md5", "md5", LibmemcachedKetama, srv("127.0.0.1:11311:1", "127.0.0.1:11312:1", "127.0.0.1:11313:1"))
	add("ketama/port 11211", "one_at_a_time", LibmemcachedKetama, srv("127.0.0.2:11211:1", "127.0.0.3:11211:1", "127.0.0.4:11211:1", "127.0.0.5:11211:1"))
	add("ketama/port 11211, md5", "md5", LibmemcachedKetama, srv("127.0.0.2:11211:1", "127.0.0.3:11211:1", "127.0.0.4:11211:1", "127.0.0.5:11211:1"))
	add("ketama/5 servers", "one_at_a_time", LibmemcachedKetama, srv("127.0.0.1:20001:1", "127.0.0.1:20002:1", "127.0.0.2:11211:1", "127.0.0.1:20004:1", "127.0.0.1:20005:1"))
	add("ketama/5 servers, md5", "md5", LibmemcachedKetama, srv("127.0.0.1:20001:1", "127.0.0.1:20002:1", "127.0.0.2:11211:1", "127.0.0.1:20004:1", "127.0.0.1:20005:1"))
	add("ketama/weights 1,2,3", "one_at_a_time", LibmemcachedKetama, srv("127.0.0.1:11311:1", "127.0.0.1:11312:2", "127.0.0.1:11313:3"))
	add("ketama/weights 1,2,3, md5", "md5", LibmemcachedKetama, srv("127.0.0.1:11311:1", "127.0.0.1:11312:2", "127.0.0.1:11313:3"))
	add("ketama weighted/weights 1,1,1", "md5", LibmemcachedKetamaWeighted, srv("127.0.0.1:11311:1", "127.0.0.1:11312:1", "127.0.0.1:11313:1"))
	add("ketama weighted/port 11211, weights 5,1,2,1", "md5", LibmemcachedKetamaWeighted, srv("127.0.0.2:11211:5", "127.0.0.3:11211:1", "127.0.0.4:11211:2", "127.0.0.5:11211:1"))
	return out
}

// TestLibmemcached compiles internal/libmemcached/placement.c against the
// installed libmemcached, asks it where each key goes and checks that Ring
// agrees. With -update it records testdata/libmemcached.json.
func TestLibmemcached(t *testing.T) {
	if _, err := os.Stat("/usr/include/libmemcached-1.0/memcached.h"); err != nil {
		t.Skip("libmemcached's headers are not installed")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	bin := filepath.Join(t.TempDir(), "placement")
	if out, err := exec.Command(cc, "-O2", "-o", bin, "internal/libmemcached/placement.c", "-lmemcached").CombinedOutput(); err != nil {
		t.Fatalf("cannot build placement.c: %v\n%s", err, out)
	}
	setups := libmemcachedSetups()
	for i := range setups {
		v := &setups[i]
		args := []string{"0", "default"}
		if v.Distribution == LibmemcachedKetamaWeighted {
			args[0] = "1"
		}
		if v.Hash == "md5" {
			args[1] = "md5"
		}
		for _, s := range v.Servers {
			args = append(args, fmt.Sprintf("%s:%d", s.Addr, s.Weight))
		}
		keys := testKeys(v.Prefix, v.Keys)
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: placement: %v", v.Name, err)
		}
		lines := strings.Fields(string(bytes.TrimSpace(out)))
		if len(lines) != len(keys) {
			t.Fatalf("%s: %d answers for %d keys", v.Name, len(lines), len(keys))
		}
		v.Placement = strings.Join(lines, "")
	}
	n := checkVectors(t, setups)
	t.Logf("%d setups, %d keys placed as libmemcached placed them", len(setups), n)
	if *update && !t.Failed() {
		writeVectors(t, "libmemcached.json", vectorFile{Source: "libmemcached 1.1.4", Setups: setups})
	}
}

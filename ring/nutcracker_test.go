package ring

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the real nutcracker and libmemcached")

// keysPerSetup is how many keys each setup places.
const keysPerSetup = 400

// nutcrackerSetups returns the pools the live test runs: every hash with
// ketama and with modula, then weights, names, a hash tag, servers on the
// default port (whose ketama names leave the port out) and one server.
// backends are at least five addresses; defaultPort are servers on port
// 11211, or none.
func nutcrackerSetups(backends, defaultPort []string) []vectors {
	plain := func(addrs []string, weights ...int) []Server {
		s := make([]Server, len(addrs))
		for i, a := range addrs {
			s[i] = Server{Addr: a, Weight: 1}
			if i < len(weights) {
				s[i].Weight = weights[i]
			}
		}
		return s
	}
	named := func(s []Server, names ...string) []Server {
		for i := range s {
			s[i].Name = names[i]
		}
		return s
	}
	var out []vectors
	add := func(name, hash string, dist Distribution, tag string, servers []Server) {
		out = append(out, vectors{
			Name: name, Hash: hash, Distribution: dist, HashTag: tag, Servers: servers,
			Prefix: fmt.Sprintf("s%02d:", len(out)), Keys: keysPerSetup,
		})
	}
	three := backends[:3]
	for _, h := range HashNames() {
		add(h+"/ketama", h, Ketama, "", plain(three))
		add(h+"/modula", h, Modula, "", plain(three))
	}
	add("fnv1a_64/ketama/weights 1,2,3", "fnv1a_64", Ketama, "", plain(three, 1, 2, 3))
	add("md5/ketama/weights 5,1,1,3,1", "md5", Ketama, "", plain(backends[:5], 5, 1, 1, 3, 1))
	add("murmur/modula/weights 1,2,3", "murmur", Modula, "", plain(three, 1, 2, 3))
	add("fnv1a_64/ketama/named", "fnv1a_64", Ketama, "", named(plain(three), "alpha", "beta", "gamma"))
	add("one_at_a_time/ketama/named, weights 2,1,1,1,4", "one_at_a_time", Ketama, "",
		named(plain(backends[:5], 2, 1, 1, 1, 4), "cache-a", "cache-b", "cache-c", "cache-d", "cache-e"))
	add("hsieh/modula/named, weights 1,2,1", "hsieh", Modula, "", named(plain(three, 1, 2, 1), "zeta", "b", "alpha"))
	add("crc32a/ketama/hash_tag {}", "crc32a", Ketama, "{}", plain(three))
	add("fnv1_64/modula/hash_tag {}", "fnv1_64", Modula, "{}", plain(three))
	add("md5/ketama/one server", "md5", Ketama, "", plain(backends[:1]))
	if len(defaultPort) > 0 {
		add("md5/ketama/port 11211", "md5", Ketama, "", plain(defaultPort))
		add("fnv1a_64/ketama/port 11211, weights 1,1,2", "fnv1a_64", Ketama, "", plain(defaultPort, 1, 1, 2))
	}
	return out
}

// TestNutcracker sends keys through a real nutcracker to real memcached
// backends, asks every backend which keys it holds, and checks that Ring
// places each key on that backend. With -update it records the placements
// in testdata/nutcracker.json.
func TestNutcracker(t *testing.T) {
	if testutil.NutcrackerPath() == "" {
		t.Skip("nutcracker is not installed")
	}
	if testing.Short() {
		t.Skip("starts nutcracker and eight memcached")
	}
	var backends []string
	for range 5 {
		backends = append(backends, testutil.StartMemcached(t, "-m", "16"))
	}
	var defaultPort []string
	for _, host := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		addr, err := startMemcachedAt(t, host, 11211)
		if err != nil {
			t.Logf("no servers on port 11211: %v", err)
			defaultPort = nil
			break
		}
		defaultPort = append(defaultPort, addr)
	}
	setups := nutcrackerSetups(backends, defaultPort)
	listen := startNutcracker(t, setups)

	holders := map[string][]string{} // key -> backends holding it
	for i, v := range setups {
		keys := testKeys(v.Prefix, v.Keys)
		setKeys(t, listen[i], keys)
	}
	for _, b := range append(backends, defaultPort...) {
		for i := range setups {
			for _, k := range heldKeys(t, b, testKeys(setups[i].Prefix, setups[i].Keys)) {
				holders[k] = append(holders[k], b)
			}
		}
	}
	for i := range setups {
		v := &setups[i]
		var placement strings.Builder
		for _, k := range testKeys(v.Prefix, v.Keys) {
			h := holders[k]
			if len(h) != 1 {
				t.Fatalf("%s: key %q held by %v", v.Name, k, h)
			}
			idx := -1
			for j, s := range v.Servers {
				if s.Addr == h[0] {
					idx = j
				}
			}
			if idx < 0 {
				t.Fatalf("%s: key %q on %s, not a server of the pool", v.Name, k, h[0])
			}
			placement.WriteByte(byte('0' + idx))
		}
		v.Placement = placement.String()
	}
	n := checkVectors(t, setups)
	t.Logf("%d setups, %d keys placed as nutcracker placed them", len(setups), n)
	if *update && !t.Failed() {
		writeVectors(t, "nutcracker.json", vectorFile{Source: "nutcracker 0.5.0 with memcached 1.6.18 backends", Setups: setups})
	}
}

// startMemcachedAt starts memcached on host:port, for the servers whose
// port is the default one; the process is stopped when the test ends.
func startMemcachedAt(t *testing.T, host string, port int) (string, error) {
	t.Helper()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		return "", fmt.Errorf("%s is already in use", addr)
	}
	args := []string{"-l", host, "-p", strconv.Itoa(port), "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	cmd := exec.Command(testutil.MemcachedPath(), args...)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := waitListening(addr); err != nil {
		return "", err
	}
	return addr, nil
}

func waitListening(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
		time.Sleep(delay)
	}
}

// startNutcracker starts nutcracker with one pool per setup and returns
// each pool's listen address.
func startNutcracker(t *testing.T, setups []vectors) []string {
	t.Helper()
	return testutil.StartNutcracker(t, len(setups), func(listen []string) string {
		var conf bytes.Buffer
		for i, v := range setups {
			fmt.Fprintf(&conf, "pool%02d:\n  listen: %s\n  hash: %s\n  distribution: %s\n", i, listen[i], v.Hash, v.Distribution)
			if v.HashTag != "" {
				fmt.Fprintf(&conf, "  hash_tag: %q\n", v.HashTag)
			}
			conf.WriteString("  servers:\n")
			for _, s := range v.Servers {
				fmt.Fprintf(&conf, "   - %s:%d", s.Addr, s.Weight)
				if s.Name != "" {
					fmt.Fprintf(&conf, " %s", s.Name)
				}
				conf.WriteString("\n")
			}
		}
		return conf.String()
	})
}

// setKeys stores every key through the pool at addr, pipelined.
func setKeys(t *testing.T, addr string, keys []string) {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	const batch = 50
	for i := 0; i < len(keys); i += batch {
		var req bytes.Buffer
		end := min(i+batch, len(keys))
		for _, k := range keys[i:end] {
			fmt.Fprintf(&req, "set %s 0 0 1\r\nx\r\n", k)
		}
		c.Send(req.Bytes())
		for _, k := range keys[i:end] {
			if r := c.ReadReply(testutil.LineReply); string(r) != "STORED\r\n" {
				t.Fatalf("set %q through %s: %q", k, addr, r)
			}
		}
	}
}

// heldKeys returns the keys of keys that the server at addr holds.
func heldKeys(t *testing.T, addr string, keys []string) []string {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	var held []string
	const batch = 100
	for i := 0; i < len(keys); i += batch {
		c.Send([]byte("get " + strings.Join(keys[i:min(i+batch, len(keys))], " ") + "\r\n"))
		sc := bufio.NewScanner(bytes.NewReader(c.ReadReply(testutil.ValuesReply)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 4 && f[0] == "VALUE" {
				held = append(held, f[1])
			}
		}
	}
	return held
}

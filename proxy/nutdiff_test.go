package proxy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// Seeds of TestNutcrackerDiffRandom.
var (
	nutdiffSeeds = flag.Int("nutdiff.seeds", 0, "seeds TestNutcrackerDiffRandom runs (0: CORVID_NUTDIFF_SEEDS, else 200)")
	nutdiffStart = flag.Int64("nutdiff.start", -1, "first seed of TestNutcrackerDiffRandom (-1: CORVID_NUTDIFF_START, else 1)")
)

// nutdiffPools are the pools both sides serve (a seed uses one of them).
var nutdiffPools = []placementSetup{
	{hash: "fnv1a_64", dist: "ketama"},
	{hash: "md5", dist: "ketama", tag: "{}"},
	{hash: "murmur", dist: "modula"},
	{hash: "crc32a", dist: "modula", tag: "{}"},
}

const (
	nutdiffSentinel = "zz-sentinel"
	nutdiffPrefixW  = 8 // bytes of a seed's key prefix
	nutdiffIdle     = 1500 * time.Millisecond
	nutdiffItemMax  = 1 << 20 // memcached's -I
)

// nutdiffSentinelReply is what the sentinel get returns.
var nutdiffSentinelReply = "VALUE " + nutdiffSentinel + " 0 4\r\nMARK\r\nEND\r\n"

// ndSide is one proxy under test: its pool addresses.
type ndSide struct {
	name  string
	addrs []string // by pool index
}

// TestNutcrackerDiffRandom sends the same random text-protocol input to
// a real nutcracker and to corvid proxy (on both data paths: reader
// goroutines and the event loop), each in front of its own fresh
// memcached servers with the same nutcracker.yml, and compares the bytes
// they send back, and whether and where each closes the connection.
//
// A seed makes a few batches of requests (storage with and without
// noreply, cas, multi-key get/gets/gat/gats over every server, arith,
// touch, delete, keys of 250 and 251 bytes, values at memcached's item
// size limit, bad lengths, malformed and unknown lines, empty lines,
// version, quit); each batch is written at once or split at random byte
// boundaries, and ends with a get of a sentinel key whose reply marks the
// end of the batch's replies. Only CAS uniques, the version string and
// the order of a multi-get's hits are normalized. A mismatch is shrunk
// to a short reproducer, which the test prints. Input on which corvid
// differs from nutcracker by design (README, "What differs from
// nutcracker") is judged as described at ndGen, or not made.
//
// It runs -nutdiff.seeds seeds from -nutdiff.start (CORVID_NUTDIFF_SEEDS
// and CORVID_NUTDIFF_START set them too; 200 by default, 60 under the race
// detector), for example
//
//	go test ./proxy -run NutcrackerDiffRandom -nutdiff.seeds 5000
func TestNutcrackerDiffRandom(t *testing.T) {
	if testutil.NutcrackerPath() == "" {
		t.Skip("nutcracker is not installed")
	}
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	seeds, start := *nutdiffSeeds, *nutdiffStart
	if seeds == 0 {
		seeds = envInt("CORVID_NUTDIFF_SEEDS", 200)
		if testutil.RaceEnabled {
			// The requests of a seed are sequential protocol work, which
			// the race detector only slows: fewer seeds keep the -race
			// pass short.
			seeds = envInt("CORVID_NUTDIFF_SEEDS", 60)
		}
	}
	if start < 0 {
		start = int64(envInt("CORVID_NUTDIFF_START", 1))
	}
	backends := func() []string {
		return []string{testutil.StartMemcached(t, "-m", "64"), testutil.StartMemcached(t, "-m", "64"), testutil.StartMemcached(t, "-m", "64")}
	}
	yaml := func(listen []string, bs []string) string {
		var b strings.Builder
		for i, s := range nutdiffPools {
			// server_connections stays 1: nutcracker sends each request
			// on any of a server's connections, so that a client's
			// requests can overtake one another.
			b.WriteString(s.yaml(fmt.Sprintf("p%d", i), listen[i], bs))
		}
		return b.String()
	}
	nutBackends := backends()
	nut := ndSide{name: "nutcracker", addrs: testutil.StartNutcracker(t, len(nutdiffPools), func(l []string) string { return yaml(l, nutBackends) })}
	sides := []ndSide{nut}
	for _, loop := range []bool{false, true} {
		listen := make([]string, len(nutdiffPools))
		for i, port := range testutil.FreePorts(t, len(nutdiffPools)) {
			listen[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		p := serveProxy(t, Config{EventLoop: loop}, yaml(listen, backends()))
		s := ndSide{name: "corvid", addrs: make([]string, len(nutdiffPools))}
		if loop {
			s.name = "corvid (event loop)"
		}
		for i := range nutdiffPools {
			s.addrs[i] = p.Addrs()[fmt.Sprintf("p%d", i)].String()
		}
		sides = append(sides, s)
	}
	for _, s := range sides {
		for _, a := range s.addrs {
			c := testutil.Dial(t, a)
			if r := roundTrip(c, "set "+nutdiffSentinel+" 0 0 4\r\nMARK\r\n", testutil.LineReply); r != "STORED\r\n" {
				t.Fatalf("%s %s: sentinel set: %q", s.name, a, r)
			}
			c.Close()
		}
	}
	d := &nutdiff{ndSides{t: t, sides: sides}}
	failures := 0
	for seed := start; seed < start+int64(seeds) && failures < 3; seed++ {
		sc := genScenario(seed)
		if m := d.run(sc); m != nil {
			failures++
			t.Errorf("seed %d: %s", seed, d.shrink(sc, m))
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// ndCmd is one request. "@" in text stands for the scenario's key
// prefix; with casKey set, "$" stands for the CAS unique the side last saw
// for that key.
type ndCmd struct {
	text   string
	casKey string
	bad    bool // nutcracker closes the connection on it
}

// ndScenario is what a seed sends: batches of requests, each with the
// seed of its split points.
type ndScenario struct {
	seed    int64
	pool    int
	batches [][]ndCmd
	splits  []int64
}

// genScenario makes the scenario of seed.
func genScenario(seed int64) ndScenario {
	r := rand.New(rand.NewSource(seed))
	g := &ndGen{r: r, strict: r.Intn(3) != 0}
	sc := ndScenario{seed: seed, pool: int(seed % int64(len(nutdiffPools)))}
	for range 1 + r.Intn(6) {
		var b []ndCmd
		for range 1 + r.Intn(10) {
			b = append(b, g.cmd())
		}
		sc.batches = append(sc.batches, b)
		sc.splits = append(sc.splits, r.Int63())
	}
	return sc
}

// ndGen makes requests. A request nutcracker 0.5.0 may not parse (it
// closes the connection on it, without a reply) is marked bad: a key
// over 250 bytes, a flag or storage exptime or length that is not
// digits, a number that is not digits after an optional '-', anything
// but noreply after a request's arguments, an empty or unknown command
// (gat and gats too), a value not followed by CR. A batch with one
// must get the same replies from both sides, or be closed by nutcracker
// after a prefix of corvid's replies (README, "What differs from
// nutcracker"). A strict seed (two in three) makes good requests only.
type ndGen struct {
	r      *rand.Rand
	bad    bool // the request being made is bad
	strict bool // make good requests only
}

var ndNames = []string{"a", "b", "c", "d", "e", "f", "g", "h", "{t1}x", "{t1}y", "{t2}x", "n1", "n2", "cnt"}

func (g *ndGen) key() string {
	switch g.r.Intn(40) {
	case 0:
		return "@" + strings.Repeat("k", 250-nutdiffPrefixW) // 250 bytes
	case 1:
		if !g.strict {
			return ndLongKey // 251 bytes
		}
	case 2:
		return "@" + strings.Repeat("L", 250-nutdiffPrefixW)
	}
	return "@" + ndNames[g.r.Intn(len(ndNames))]
}

func (g *ndGen) value(n int) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alpha[g.r.Intn(len(alpha))]
	}
	return string(b)
}

func (g *ndGen) valueLen() int {
	switch g.r.Intn(60) {
	case 0:
		return nutdiffItemMax - 100 + g.r.Intn(200) // around memcached's item limit
	case 1:
		return nutdiffItemMax + g.r.Intn(3)
	case 2:
		return 0
	}
	return 1 + g.r.Intn(20)
}

func (g *ndGen) noreply() string {
	if g.r.Intn(4) == 0 {
		return " noreply"
	}
	return ""
}

// pick returns one of good, or, unless strict, now and then one of bad
// (marking the request).
func (g *ndGen) pick(good, bad []string) string {
	if !g.strict && len(bad) > 0 && g.r.Intn(4) == 0 {
		g.bad = true
		return bad[g.r.Intn(len(bad))]
	}
	return good[g.r.Intn(len(good))]
}

func (g *ndGen) keys() string {
	n := 1 + g.r.Intn(8)
	if g.r.Intn(10) == 0 {
		n = 20 + g.r.Intn(100) // a line past 2048 bytes now and then
	}
	var b strings.Builder
	for range n {
		b.WriteString(" " + g.key())
	}
	return b.String()
}

// ndLongKey is a key of 251 bytes.
var ndLongKey = "@" + strings.Repeat("k", 251-nutdiffPrefixW)

func (g *ndGen) cmd() ndCmd {
	g.bad = false
	c := g.cmd1()
	c.bad = c.bad || g.bad || strings.Contains(c.text, ndLongKey)
	return c
}

func (g *ndGen) cmd1() ndCmd {
	r := g.r
	switch n := r.Intn(100); {
	case n < 25: // storage
		verb := []string{"set", "add", "replace", "append", "prepend"}[r.Intn(5)]
		l := g.valueLen()
		v := g.value(l)
		if r.Intn(12) == 0 {
			v = g.pick([]string{"1", "0", "18446744073709551615", "18446744073709551616", "10", "007"}, nil)
			l = len(v)
		}
		// Not a flag memcached cannot read (99999999999999999999): it
		// answers CLIENT_ERROR, then ERROR to the value line, and the
		// second reply puts nutcracker's server connection out of step.
		flags := "0"
		if r.Intn(3) == 0 {
			flags = g.pick([]string{"0", "5", "4294967295", "4294967296"}, []string{"-1", "a"})
		}
		exp := "0"
		if r.Intn(4) == 0 {
			exp = g.pick([]string{"100", "2592000", "99999999999"}, []string{"-1", "x"})
		}
		return ndCmd{text: fmt.Sprintf("%s %s %s %s %d%s\r\n%s\r\n", verb, g.key(), flags, exp, l, g.noreply(), v)}
	case n < 31: // cas
		k := g.key()
		v := g.value(1 + r.Intn(5))
		if r.Intn(3) == 0 {
			return ndCmd{text: fmt.Sprintf("cas %s 0 0 %d %d%s\r\n%s\r\n", k, len(v), r.Intn(1000), g.noreply(), v)}
		}
		return ndCmd{text: fmt.Sprintf("cas %s 0 0 %d $%s\r\n%s\r\n", k, len(v), g.noreply(), v), casKey: k}
	case n < 50: // retrieval
		switch r.Intn(6) {
		case 0, 1:
			return ndCmd{text: "get" + g.keys() + "\r\n"}
		case 2, 3:
			return ndCmd{text: "gets" + g.keys() + "\r\n"}
		case 4:
			if g.strict {
				return ndCmd{text: "get" + g.keys() + "  \r\n"}
			}
			return ndCmd{text: "gat 100" + g.keys() + "\r\n", bad: true}
		default:
			if g.strict {
				return ndCmd{text: "gets  " + g.keys() + "\r\n"}
			}
			return ndCmd{text: "gats 0" + g.keys() + "\r\n", bad: true}
		}
	case n < 58:
		verb := []string{"incr", "decr"}[r.Intn(2)]
		num := g.pick([]string{"1", "5", "0", "18446744073709551615", "18446744073709551616", "-1", "10", "-"}, []string{"abc", "1a", "+1"})
		return ndCmd{text: fmt.Sprintf("%s %s %s%s\r\n", verb, g.key(), num, g.noreply())}
	case n < 63:
		exp := g.pick([]string{"0", "100", "-1", "99999999999"}, []string{"x", "1x"})
		return ndCmd{text: fmt.Sprintf("touch %s %s%s\r\n", g.key(), exp, g.noreply())}
	case n < 70:
		extra := ""
		if !g.strict && r.Intn(3) == 0 {
			extra = []string{" 0", " 5"}[r.Intn(2)]
			g.bad = true
		}
		return ndCmd{text: fmt.Sprintf("delete %s%s%s\r\n", g.key(), extra, g.noreply())}
	case n < 73: // bad lengths
		v := g.value(1 + r.Intn(8))
		if g.strict {
			return ndCmd{text: fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", g.key(), len(v), v)}
		}
		switch r.Intn(3) {
		case 0:
			return ndCmd{text: fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", g.key(), len(v)-1, v), bad: true}
		case 1:
			return ndCmd{text: fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", g.key(), len(v)+1+r.Intn(3), v), bad: true}
		default:
			return ndCmd{text: fmt.Sprintf("set %s 0 0 -%d\r\n%s\r\n", g.key(), len(v), v), bad: true}
		}
	case n < 82: // odd lines nutcracker parses, then malformed ones
		k, k2 := g.key(), g.key()
		good := []string{
			"get " + k + "  " + k2 + "\r\n", "get " + k + " \r\n", " get " + k + "\r\n",
			"  set " + k + "  0  0  1 \r\nx\r\n", "incr " + k + "  1 \r\n", "delete " + k + "  noreply \r\n",
			"version  \r\n", "touch " + k + " 10  noreply\r\n",
		}
		if g.strict {
			return ndCmd{text: good[r.Intn(len(good))]}
		}
		return ndCmd{text: g.pick(good, []string{
			"get\r\n", "gets\r\n", "set " + k + " 0 0\r\n", "incr " + k + "\r\n",
			"delete\r\n", "touch " + k + "\r\n", "set " + k + " 0 0 1 2 3\r\nx\r\n",
			"cas " + k + " 0 0 1\r\nx\r\n",
			// Not "get k\n": nutcracker takes the LF into the key and
			// forwards two requests to memcached as one.
			"set " + k + " 0 0 1\nx\r\n", "incr " + k + " 1 2\r\n",
			"set " + k + " 0 0 1 noreply noreply\r\nx\r\n", "touch " + k + " 10 noreplyx\r\n",
			"delete " + k + " nope\r\n", "get " + k + "\rx\r\n",
		})}
	case n < 88: // unknown commands
		if g.strict {
			return ndCmd{text: "version\r\n"}
		}
		return ndCmd{text: []string{"foo\r\n", "GET " + g.key() + "\r\n", "bogus " + g.key() + " 1 2\r\n", "x\r\n", "gett " + g.key() + "\r\n", "\x01\x02\r\n", "flush_all\r\n", "mg " + g.key() + " v\r\n"}[r.Intn(8)], bad: true}
	case n < 92:
		if g.strict {
			return ndCmd{text: "version\r\n"}
		}
		return ndCmd{text: []string{"\r\n", "\n", " \r\n"}[r.Intn(3)], bad: true}
	case n < 97:
		return ndCmd{text: "version\r\n"}
	default:
		return ndCmd{text: "quit\r\n"}
	}
}

// ndResult is what a side sent back for one batch.
type ndResult struct {
	reply  []byte
	closed bool // the side closed the connection
	stuck  bool // neither the sentinel's reply nor a close came
}

// ndMismatch is where a scenario's sides first differed.
type ndMismatch struct {
	batch   int
	results []ndResult // by side
}

// ndSides are the sides a differential test plays its scenarios on
// (the nutcracker and the meta differentials share them).
type ndSides struct {
	t      *testing.T
	sides  []ndSide
	mu     sync.Mutex
	prefix int
}

type nutdiff struct{ ndSides }

// nextPrefix returns a key prefix no run has used.
func (d *ndSides) nextPrefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prefix++
	return fmt.Sprintf("%07d:", d.prefix)
}

// dial connects to every side's pool and stores the sentinel there again
// (a flush_all may have removed it); the caller closes the connections.
func (d *ndSides) dial(pool int) []net.Conn {
	conns := make([]net.Conn, len(d.sides))
	for i, s := range d.sides {
		c, err := net.DialTimeout("tcp", s.addrs[pool], 5*time.Second)
		if err != nil {
			closeAll(conns)
			d.t.Fatalf("%s: %v", s.name, err)
		}
		conns[i] = c
		buf := make([]byte, 8)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("set " + nutdiffSentinel + " 0 0 4\r\nMARK\r\n")); err != nil {
			closeAll(conns)
			d.t.Fatalf("%s: %v", s.name, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "STORED\r\n" {
			closeAll(conns)
			d.t.Fatalf("%s: sentinel set: %q %v", s.name, buf, err)
		}
		c.SetDeadline(time.Time{})
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// exchangeAll plays one batch on every side at once: req renders side
// i's bytes, written as splitSeed cuts them, and learn reads side i's
// reply before the results are returned (by side).
func exchangeAll(conns []net.Conn, splitSeed int64, req func(i int) []byte, learn func(i int, reply []byte)) []ndResult {
	results := make([]ndResult, len(conns))
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = exchange(conns[i], req(i), splitSeed)
			learn(i, results[i].reply)
		}()
	}
	wg.Wait()
	return results
}

var (
	casLine = regexp.MustCompile(`(?m)^(VALUE \S+ \d+ \d+) \d+\r$`)
	verLine = regexp.MustCompile(`(?m)^VERSION [^\r\n]*\r$`)
)

// normalize hides what must differ between the sides: CAS uniques, the
// version string, and the order of the VALUE blocks of one reply
// (nutcracker joins a multi-get's fragments server by server, corvid in
// the client's key order).
func normalize(b []byte) []byte {
	b = casLine.ReplaceAll(b, []byte("$1 CAS\r"))
	b = verLine.ReplaceAll(b, []byte("VERSION X\r"))
	var out, block []byte
	var run [][]byte
	flush := func() {
		slices.SortFunc(run, bytes.Compare)
		for _, r := range run {
			out = append(out, r...)
		}
		run = run[:0]
	}
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			break
		}
		line := b[:i+2]
		f := strings.Fields(string(line))
		if len(f) >= 4 && f[0] == "VALUE" {
			n, err := strconv.Atoi(f[3])
			if err == nil && len(b) >= i+2+n+2 {
				block = b[:i+2+n+2]
				run = append(run, block)
				b = b[len(block):]
				continue
			}
		}
		flush()
		out = append(out, line...)
		b = b[len(line):]
	}
	flush()
	return append(out, b...)
}

// run plays sc on every side, all at once, and returns where their
// (normalized) replies first differ, or nil.
func (d *nutdiff) run(sc ndScenario) *ndMismatch {
	prefix := d.nextPrefix()
	conns := d.dial(sc.pool)
	defer closeAll(conns)
	cas := make([]map[string]string, len(d.sides))
	for i := range cas {
		cas[i] = map[string]string{}
	}
	for bi, batch := range sc.batches {
		results := exchangeAll(conns, sc.splits[bi],
			func(i int) []byte { return render(batch, prefix, cas[i]) },
			func(i int, reply []byte) { learnCAS(reply, prefix, cas[i]) })
		bad := false
		for _, c := range batch {
			bad = bad || c.bad
		}
		for i := 1; i < len(results); i++ {
			a, b := results[0], results[i]
			na, nb := normalize(a.reply), normalize(b.reply)
			if bad && a.closed {
				// nutcracker closes the connection at the request it
				// cannot parse, and drops the replies still to come;
				// corvid answers memcached's error and goes on. (A bad
				// length can make a request nutcracker parses.)
				if !bytes.HasPrefix(nb, na) {
					return &ndMismatch{batch: bi, results: results}
				}
				continue
			}
			if a.closed != b.closed || a.stuck != b.stuck || !bytes.Equal(na, nb) {
				return &ndMismatch{batch: bi, results: results}
			}
		}
		if bad && results[0].closed {
			return nil
		}
		if results[0].closed || results[0].stuck {
			return nil
		}
	}
	return nil
}

// render writes batch with prefix and the side's CAS uniques, and the
// sentinel get.
func render(batch []ndCmd, prefix string, cas map[string]string) []byte {
	var b bytes.Buffer
	for _, c := range batch {
		t := strings.ReplaceAll(c.text, "@", prefix)
		if c.casKey != "" {
			u, ok := cas[strings.ReplaceAll(c.casKey, "@", prefix)]
			if !ok {
				u = "12345"
			}
			t = strings.Replace(t, "$", u, 1)
		}
		b.WriteString(t)
	}
	b.WriteString("get " + nutdiffSentinel + "\r\n")
	return b.Bytes()
}

// learnCAS records the CAS uniques of the VALUE lines of reply.
func learnCAS(reply []byte, prefix string, cas map[string]string) {
	for _, line := range bytes.Split(reply, []byte("\r\n")) {
		f := strings.Fields(string(line))
		if len(f) == 5 && f[0] == "VALUE" && strings.HasPrefix(f[1], prefix) {
			cas[f[1]] = f[4]
		}
	}
}

// exchange writes req on c, at once or in pieces split as splitSeed
// says, and reads until the sentinel's reply, a close, or nutdiffIdle
// without a byte.
func exchange(c net.Conn, req []byte, splitSeed int64) ndResult {
	r := rand.New(rand.NewSource(splitSeed))
	var res ndResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			c.SetReadDeadline(time.Now().Add(nutdiffIdle))
			n, err := c.Read(buf)
			res.reply = append(res.reply, buf[:n]...)
			if bytes.HasSuffix(res.reply, []byte(nutdiffSentinelReply)) {
				res.reply = res.reply[:len(res.reply)-len(nutdiffSentinelReply)]
				return
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					res.stuck = true
				} else {
					res.closed = true // EOF or reset
				}
				return
			}
		}
	}()
	if r.Intn(2) == 0 {
		c.Write(req)
	} else {
		pieces := 2 + r.Intn(4)
		cuts := []int{0}
		for range pieces - 1 {
			cuts = append(cuts, r.Intn(len(req)+1))
		}
		cuts = append(cuts, len(req))
		sortInts(cuts)
		for i := 1; i < len(cuts); i++ {
			if _, err := c.Write(req[cuts[i-1]:cuts[i]]); err != nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	<-done
	return res
}

// shrinkBatches drops batches, then single requests, from a failing
// scenario whose mismatch is in batch last, keeping each drop after which
// fails (which runs a scenario and returns the batch of its mismatch, or
// -1) still finds one, within 150 runs; it returns what is left, up to
// the batch of the last mismatch found.
func shrinkBatches[T any](batches [][]T, splits []int64, last int, fails func([][]T, []int64) int) ([][]T, []int64) {
	batches, splits = batches[:last+1], splits[:last+1]
	budget := 150
	try := func(b [][]T, s []int64) bool {
		if budget == 0 {
			return false
		}
		budget--
		if at := fails(b, s); at >= 0 {
			batches, splits = b[:at+1], s[:at+1]
			return true
		}
		return false
	}
	for changed := true; changed && budget > 0; {
		changed = false
		for bi := 0; bi < len(batches) && len(batches) > 1; bi++ {
			b := append(append([][]T{}, batches[:bi]...), batches[bi+1:]...)
			s := append(append([]int64{}, splits[:bi]...), splits[bi+1:]...)
			if try(b, s) {
				changed = true
				bi--
			}
		}
		for bi := 0; bi < len(batches); bi++ {
			for ci := 0; bi < len(batches) && ci < len(batches[bi]) && len(batches[bi]) > 1; ci++ {
				b := append([][]T{}, batches...)
				b[bi] = append(append([]T{}, batches[bi][:ci]...), batches[bi][ci+1:]...)
				if try(b, splits) {
					changed = true
					ci--
				}
			}
		}
	}
	return batches, splits
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// shrink makes sc's mismatch smaller (dropping batches, then requests,
// while the sides still differ) and describes the result.
func (d *nutdiff) shrink(sc ndScenario, m *ndMismatch) string {
	sc.batches, sc.splits = shrinkBatches(sc.batches, sc.splits, m.batch, func(b [][]ndCmd, s []int64) int {
		c := sc
		c.batches, c.splits = b, s
		if mm := d.run(c); mm != nil {
			m = mm
			return mm.batch
		}
		return -1
	})
	var b strings.Builder
	fmt.Fprintf(&b, "pool p%d (%+v); after shrinking, %d batches (\"@\" is the key prefix, a get of %s ends each):\n", sc.pool, nutdiffPools[sc.pool], len(sc.batches), nutdiffSentinel)
	for i, batch := range sc.batches {
		var req strings.Builder
		for _, c := range batch {
			req.WriteString(c.text)
		}
		fmt.Fprintf(&b, "  batch %d (split seed %d): %s\n", i, sc.splits[i], testutil.Quote([]byte(req.String()), 400))
	}
	fmt.Fprintf(&b, "replies to the last batch:\n")
	for i, r := range m.results {
		fmt.Fprintf(&b, "  %-20s closed=%v stuck=%v %s\n", d.sides[i].name, r.closed, r.stuck, testutil.Quote(normalize(r.reply), 600))
	}
	return b.String()
}

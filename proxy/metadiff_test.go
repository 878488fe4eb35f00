package proxy

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

// Seeds of TestMetaDiffRandom.
var (
	metadiffSeeds = flag.Int("metadiff.seeds", 0, "seeds TestMetaDiffRandom runs (0: CORVID_METADIFF_SEEDS, else 300)")
	metadiffStart = flag.Int64("metadiff.start", -1, "first seed of TestMetaDiffRandom (-1: CORVID_METADIFF_START, else 1)")
)

// TestMetaDiffRandom sends the same random meta-protocol input to one
// memcached and to corvid proxy in front of three memcached (on both data
// paths: reader goroutines and the event loop), and compares the bytes
// they send back, and whether each closes the connection.
//
// A seed makes a few batches of requests: mg, ms, md, ma with random
// flag sets (return flags, q, O, k, b with base64 keys, T, N, R, I, E,
// C, M modes, D, J, some repeated, unknown or malformed), mn after quiet
// runs, me, text set/add/append/cas/get/gets/gat/gats/delete/incr/decr/
// touch on the same keys (multi-gets of up to 100 keys over every
// server), and malformed meta lines (bad flags and tokens, keys over 250
// bytes, base64 that does not decode, a NUL in the line); lines are
// sometimes spaced out or end in a bare LF, values sometimes reach
// memcached's item size limit. Each batch is written at once or split at
// random byte boundaries and ends with a get of a sentinel key. CAS
// uniques are hidden (they differ between one server and three; C flags
// and cas commands use the unique each side last saw for the key, so
// that compares succeed or fail alike), and so are the values that
// depend on a server's clock: a positive TTL (t), idle seconds (l, me's
// la=), me's exp= of an expiring item. A mismatch is shrunk to a short
// reproducer, which the test prints.
//
// Input whose replies depend on timing in memcached is not made: exptimes
// that pass during a run, a line over 2048 bytes other than a get (such
// as the data of an ms whose line memcached refuses, which it then reads
// as a command: it closes the connection on it or not as the line
// arrives), arithmetic after other requests of its batch (see
// genMetaScenario).
//
// It runs -metadiff.seeds seeds from -metadiff.start
// (CORVID_METADIFF_SEEDS and CORVID_METADIFF_START set them too; 300 by
// default, 40 under the race detector), for example
//
//	go test ./proxy -run MetaDiffRandom -metadiff.seeds 5000
func TestMetaDiffRandom(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	seeds, start := *metadiffSeeds, *metadiffStart
	if seeds == 0 {
		seeds = envInt("CORVID_METADIFF_SEEDS", 300)
		if testutil.RaceEnabled {
			seeds = envInt("CORVID_METADIFF_SEEDS", 40)
		}
	}
	if start < 0 {
		start = int64(envInt("CORVID_METADIFF_START", 1))
	}
	sides := []ndSide{{name: "memcached", addrs: []string{testutil.StartMemcached(t, "-m", "64")}}}
	for _, loop := range []bool{false, true} {
		bs := []string{testutil.StartMemcached(t, "-m", "64"), testutil.StartMemcached(t, "-m", "64"), testutil.StartMemcached(t, "-m", "64")}
		p := serveProxy(t, Config{EventLoop: loop}, poolYAML("127.0.0.1:0", bs))
		s := ndSide{name: "corvid", addrs: []string{p.Addrs()["alpha"].String()}}
		if loop {
			s.name = "corvid (event loop)"
		}
		sides = append(sides, s)
	}
	d := &metadiff{ndSides{t: t, sides: sides}}
	failures := 0
	for seed := start; seed < start+int64(seeds) && failures < 3; seed++ {
		sc := genMetaScenario(seed)
		if m := d.run(sc); m != nil {
			failures++
			t.Errorf("seed %d: %s", seed, d.shrink(sc, m))
		}
	}
}

// A request's text is a template: "@" stands for the scenario's key
// prefix, "<b64:NAME>" for the base64 form of the prefix and NAME, and
// "<cas:KEY>" for the CAS unique the side last saw for KEY (written as
// the other two forms are).
type mdScenario struct {
	seed    int64
	batches [][]string
	splits  []int64
}

func genMetaScenario(seed int64) mdScenario {
	r := rand.New(rand.NewSource(seed))
	g := &mdGen{r: r}
	sc := mdScenario{seed: seed}
	next := ""
	for range 1 + r.Intn(6) {
		var b []string
		if next != "" {
			b, next = append(b, next), ""
		}
		for range 1 + r.Intn(12) {
			c := g.cmd()
			if isArith(c) && len(b) > 0 {
				// memcached changes a number in place only while no
				// reply in its output holds the item, and makes a new
				// item otherwise (losing what T set, and h): arithmetic
				// starts a batch.
				next = c
				break
			}
			b = append(b, c)
		}
		// Quiet requests are often closed by an mn.
		if r.Intn(2) == 0 {
			b = append(b, "mn\r\n")
		}
		sc.batches = append(sc.batches, b)
		sc.splits = append(sc.splits, r.Int63())
	}
	return sc
}

func isArith(c string) bool {
	c = strings.TrimLeft(c, " ")
	return strings.HasPrefix(c, "ma ") || strings.HasPrefix(c, "incr ") || strings.HasPrefix(c, "decr ")
}

type mdGen struct {
	r *rand.Rand
}

func (g *mdGen) chance(percent int) bool { return g.r.Intn(100) < percent }

func (g *mdGen) pick(options ...string) string { return options[g.r.Intn(len(options))] }

// mdNames are key names (after the prefix); the binary ones need base64.
var (
	mdNames       = []string{"a", "b", "c", "d", "n", "{t}x", "{t}y", "cnt"}
	mdBinaryNames = []string{"a b", "\x00", "k\x00\x01\xff", " ", "x\ty", "a Ob",
		// Keys of 186 and 188 bytes, whose base64 forms are 248 and 252
		// bytes long (memcached checks the token's length), and of 251.
		strings.Repeat("b", 186-nutdiffPrefixW), strings.Repeat("\x00b", (188-nutdiffPrefixW)/2),
		strings.Repeat("c", 251-nutdiffPrefixW)}
	// mdOddNames are keys memcached takes as they are.
	mdOddNames = []string{"k\rx", "\x01\x02", "ключ", "k\x7f\xff"}
	// mdLongName makes a key of 250 bytes, mdTooLongName one of 251.
	mdLongName    = strings.Repeat("k", 250-nutdiffPrefixW)
	mdTooLongName = strings.Repeat("t", 251-nutdiffPrefixW)
)

// textKey is a key for the text commands.
func (g *mdGen) textKey() string {
	if g.chance(3) {
		return "@" + mdLongName
	}
	return "@" + mdNames[g.r.Intn(len(mdNames))]
}

// metaKey returns a key token and its key (the one cas is learned by),
// and " b" for a base64 one.
func (g *mdGen) metaKey() (tok, key, b string) {
	name := mdNames[g.r.Intn(len(mdNames))]
	switch n := g.r.Intn(100); {
	case n < 3:
		name = mdLongName
	case n < 5:
		return "@" + mdTooLongName, "@" + mdTooLongName, ""
	case n < 15:
		name = mdBinaryNames[g.r.Intn(len(mdBinaryNames))]
		return "<b64:" + name + ">", "@" + name, " b"
	case n < 25:
		return "<b64:" + name + ">", "@" + name, " b"
	case n < 27:
		return g.pick("!!!", "a=b=", "====", "QQ==x", "Zm9v====", "Zm9v\x01"), "", " b"
	case n < 30:
		name = mdOddNames[g.r.Intn(len(mdOddNames))]
	case n < 31:
		// memcached ends a line at a NUL byte.
		return "@" + name + "\x00" + g.pick("", "x", " v"), "", ""
	}
	return "@" + name, "@" + name, ""
}

func (g *mdGen) opaque() string {
	if g.chance(3) {
		return "O" + strings.Repeat("o", 31+g.r.Intn(2))
	}
	return "O" + g.pick("", "1", "abc", "\x01\xff", strconv.Itoa(g.r.Intn(1e6)))
}

func (g *mdGen) ttl() string {
	if g.chance(4) {
		return g.pick("x", "", "1.5", "2147483648", "-2147483649")
	}
	// None expires during a run but -1; R's times below differ from all.
	return g.pick("0", "0", "-1", "100000", "2592000")
}

func (g *mdGen) cas(key string) string {
	if key != "" && g.chance(70) {
		return "<cas:" + key + ">"
	}
	return g.pick("0", "999999999", "x")
}

// flags returns the chosen flags, shuffled, sometimes with a repeated,
// unknown or excess one.
func (g *mdGen) flags(b string, makers []func() string, percent int) string {
	var fl []string
	if b != "" {
		fl = append(fl, "b")
	}
	for _, m := range makers {
		if g.chance(percent) {
			fl = append(fl, m())
		}
	}
	g.r.Shuffle(len(fl), func(i, j int) { fl[i], fl[j] = fl[j], fl[i] })
	switch n := g.r.Intn(100); {
	case n < 3 && len(fl) > 0:
		fl = append(fl, fl[0])
	case n < 6:
		fl = append(fl, g.pick("x", "Z", "S1", "\x01", "é"))
	case n < 7:
		for range 15 + g.r.Intn(10) {
			fl = append(fl, "O1")
		}
	}
	if len(fl) == 0 {
		return ""
	}
	return " " + strings.Join(fl, " ")
}

func fixedFlag(s string) func() string { return func() string { return s } }

func (g *mdGen) value() string {
	const alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
	switch g.r.Intn(6) {
	case 0:
		return g.pick("0", "1", "99", "18446744073709551615", "-1", "")
	}
	b := make([]byte, g.r.Intn(20))
	for i := range b {
		b[i] = alpha[g.r.Intn(len(alpha))]
	}
	return string(b)
}

func (g *mdGen) cmd() string {
	c := g.cmd1()
	if g.chance(5) {
		c = g.spaced(c)
	}
	if g.chance(5) {
		if i := strings.Index(c, "\r\n"); i > 0 {
			c = c[:i] + c[i+1:] // a bare LF ends the command line
		}
	}
	return c
}

// spaced returns c with its command line's tokens separated by runs of
// spaces, sometimes with spaces before and after them.
func (g *mdGen) spaced(c string) string {
	end := strings.Index(c, "\r\n")
	if end < 0 {
		return c
	}
	var b strings.Builder
	if g.chance(30) {
		b.WriteString(strings.Repeat(" ", 1+g.r.Intn(3)))
	}
	for i, tok := range strings.Split(c[:end], " ") {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", 1+g.r.Intn(3)))
		}
		b.WriteString(tok)
	}
	if g.chance(30) {
		b.WriteString(strings.Repeat(" ", 1+g.r.Intn(3)))
	}
	return b.String() + c[end:]
}

func (g *mdGen) cmd1() string {
	switch n := g.r.Intn(100); {
	case n < 28:
		return g.mg()
	case n < 48:
		return g.ms()
	case n < 58:
		return g.md()
	case n < 70:
		return g.ma()
	case n < 74:
		return "mn\r\n"
	case n < 78:
		tok, _, b := g.metaKey()
		return "me " + tok + b + "\r\n"
	case n < 92:
		return g.text()
	default:
		return g.malformed()
	}
}

func (g *mdGen) mg() string {
	tok, _, b := g.metaKey()
	ret := func(f string) func() string { return fixedFlag(f) }
	fl := g.flags(b, []func() string{
		ret("v"), ret("f"), ret("t"), ret("s"), ret("c"), ret("k"), ret("h"), ret("l"),
		ret("q"), ret("u"), g.opaque,
		func() string { return "T" + g.ttl() },
		func() string { return "N" + g.ttl() },
		func() string { return "R" + g.pick("30", "200000", "-1", "x") },
		func() string { return "E" + g.pick("5", "1000") },
	}, 25)
	return "mg " + tok + fl + "\r\n"
}

func (g *mdGen) ms() string {
	tok, key, b := g.metaKey()
	mode := g.pick("S", "E", "A", "P", "R", "X", "EE", "")
	fl := g.flags(b, []func() string{
		func() string { return "T" + g.ttl() },
		func() string { return "F" + g.pick("0", "5", "4294967295", "-1", "x") },
		func() string { return "C" + g.cas(key) },
		func() string { return "E" + g.pick("77", "123456789", "x") },
		fixedFlag("I"), fixedFlag("q"), g.opaque, fixedFlag("k"), fixedFlag("c"),
		func() string { return "M" + mode },
		func() string { return "N" + g.ttl() },
	}, 25)
	v := g.value()
	// Large values only after a line memcached reads whole: it takes the
	// data of some bad ones for a command line, which past 2048 bytes
	// memcached closes the connection on or not as it arrives (corvid
	// always does).
	plain := strings.HasPrefix(tok, "@") && tok != "@"+mdTooLongName && !strings.Contains(tok, "\x00") &&
		!strings.Contains(fl, "O1 O1")
	switch g.r.Intn(40) {
	case 0:
		if plain {
			v = strings.Repeat("v", 2000+g.r.Intn(3000))
		}
	case 1:
		if !plain {
			break
		}
		// Around memcached's largest item (-I 1m).
		v = strings.Repeat("w", nutdiffItemMax-200+g.r.Intn(300))
	}
	length := strconv.Itoa(len(v))
	data := v
	if g.chance(5) {
		switch g.r.Intn(3) {
		case 0:
			data = v + "xy" // a bad data chunk
		case 1:
			length = g.pick("-1", "abc", "")
			data = ""
		default:
			length = length + " " + strings.Repeat("k ", 20)
			data = ""
		}
	}
	if data == "" && length != strconv.Itoa(len(v)) {
		return "ms " + tok + " " + length + fl + "\r\n"
	}
	return "ms " + tok + " " + length + fl + "\r\n" + data + "\r\n"
}

func (g *mdGen) md() string {
	tok, key, b := g.metaKey()
	fl := g.flags(b, []func() string{
		fixedFlag("q"), func() string { return "C" + g.cas(key) },
		fixedFlag("I"), func() string { return "T" + g.ttl() },
		g.opaque, fixedFlag("k"), fixedFlag("x"),
	}, 20)
	return "md " + tok + fl + "\r\n"
}

func (g *mdGen) ma() string {
	tok, key, b := g.metaKey()
	mode := g.pick("I", "+", "D", "-", "i", "x")
	fl := g.flags(b, []func() string{
		func() string { return "N" + g.ttl() },
		func() string { return "J" + g.pick("0", "5", "999999999999", "-1", "x") },
		func() string { return "D" + g.pick("0", "1", "100", "18446744073709551615", "abc") },
		func() string { return "T" + g.ttl() },
		func() string { return "M" + mode },
		fixedFlag("q"), g.opaque, fixedFlag("k"), fixedFlag("t"), fixedFlag("c"), fixedFlag("v"),
		func() string { return "C" + g.cas(key) },
	}, 25)
	return "ma " + tok + fl + "\r\n"
}

func (g *mdGen) text() string {
	k := g.textKey()
	switch g.r.Intn(7) {
	case 0, 1:
		v := g.value()
		nr := ""
		if g.chance(20) {
			nr = " noreply"
		}
		return fmt.Sprintf("%s %s %s 0 %d%s\r\n%s\r\n", g.pick("set", "add", "append"), k, g.pick("0", "3"), len(v), nr, v)
	case 2:
		v := g.value()
		return fmt.Sprintf("cas %s 0 0 %d %s\r\n%s\r\n", k, len(v), g.cas(k), v)
	case 3:
		var b strings.Builder
		cmd := g.pick("get", "gets", "gat 0", "gats 100000")
		b.WriteString(cmd)
		n := 1 + g.r.Intn(5)
		// Only get and gets lines may grow past 2048 bytes in memcached.
		if g.chance(5) && !strings.HasPrefix(cmd, "gat") {
			n = 20 + g.r.Intn(80)
		}
		for range n {
			b.WriteString(" " + g.textKey())
		}
		return b.String() + "\r\n"
	case 4:
		return "delete " + k + "\r\n"
	case 5:
		return fmt.Sprintf("%s %s %s\r\n", g.pick("incr", "decr"), k, g.pick("1", "7", "abc"))
	default:
		return "touch " + k + " " + g.pick("0", "100000") + "\r\n"
	}
}

func (g *mdGen) malformed() string {
	k := "@" + mdNames[g.r.Intn(len(mdNames))]
	return g.pick("mg\r\n", "ms\r\n", "md\r\n", "ma\r\n", "me\r\n", "mn x\r\n",
		"mg "+k+" v v\r\n", "mg "+k+" E5 Tx\r\n", "mg "+k+" Tx\r\n", "mg "+k+" N\r\n",
		"mg "+k+" a b c d e f g h i j k l m n o p q r\r\n",
		"ms "+k+"\r\n", "ms "+k+" 1 Mx\r\na\r\n", "ms "+k+" 1 MEE\r\na\r\n",
		"ms "+k+" 1 q\r\nab\r\n", "ma "+k+" Mi\r\n", "ma "+k+" Dx\r\n", "md "+k+" x\r\n",
		"mg "+k+" O"+strings.Repeat("o", 32)+"\r\n", "mx "+k+"\r\n", "mgg "+k+"\r\n",
		"mg @"+mdTooLongName+" v\r\n", "mg !!! b v\r\n", "mg Zm9v= b\r\n", "ms !!! 1 b\r\nx\r\n",
		"md "+k+" q x\r\nmn\r\n", "mg  "+k+"  v  k \r\n", "mg "+k+" v\n")
}

type metadiff struct{ ndSides }

// mdRender writes batch with prefix and the side's CAS uniques, and the
// sentinel get.
func mdRender(batch []string, prefix string, cas map[string]string) []byte {
	var b bytes.Buffer
	for _, c := range batch {
		for {
			i := strings.Index(c, "<")
			j := strings.Index(c[max(i, 0):], ">")
			if i < 0 || j < 0 {
				break
			}
			j += i
			ref := c[i+1 : j]
			var v string
			switch {
			case strings.HasPrefix(ref, "b64:"):
				v = base64.StdEncoding.EncodeToString([]byte(prefix + ref[4:]))
			case strings.HasPrefix(ref, "cas:"):
				k := strings.ReplaceAll(ref[4:], "@", prefix)
				var ok bool
				if v, ok = cas[k]; !ok {
					v = "888888888"
				}
			}
			c = c[:i] + v + c[j+1:]
		}
		b.WriteString(strings.ReplaceAll(c, "@", prefix))
	}
	b.WriteString("get " + nutdiffSentinel + "\r\n")
	return b.Bytes()
}

// mdReplies calls f with each reply line of b (without its CRLF) and
// the data block after it, if any.
func mdReplies(b []byte, f func(line, data []byte)) []byte {
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return b
		}
		line, rest := b[:i], b[i+2:]
		n := -1
		fs := bytes.Fields(line)
		switch {
		case len(fs) >= 2 && string(fs[0]) == "VA":
			n, _ = strconv.Atoi(string(fs[1]))
		case len(fs) >= 4 && string(fs[0]) == "VALUE":
			n, _ = strconv.Atoi(string(fs[3]))
		}
		var data []byte
		if n >= 0 && len(rest) >= n+2 {
			data, rest = rest[:n+2], rest[n+2:]
		}
		f(line, data)
		b = rest
	}
	return nil
}

// mdNormalize hides CAS uniques and the values that depend on a
// server's clock.
func mdNormalize(b []byte) []byte {
	var out []byte
	tail := mdReplies(b, func(line, data []byte) {
		f := bytes.Split(line, []byte(" "))
		switch string(f[0]) {
		case "VALUE":
			if len(f) == 5 {
				f[4] = []byte("CAS")
			}
		case "HD", "VA", "EN", "NF", "NS", "EX":
			for i := 1; i < len(f); i++ {
				t := f[i]
				if len(t) < 2 || !isDigitsB(t[1:]) {
					continue
				}
				switch t[0] {
				case 'c':
					f[i] = []byte("c#")
				case 't':
					f[i] = []byte("t+")
				case 'l':
					f[i] = []byte("l*")
				}
			}
		case "ME":
			for i := 2; i < len(f); i++ {
				switch t := string(f[i]); {
				case strings.HasPrefix(t, "cas="):
					f[i] = []byte("cas=#")
				case strings.HasPrefix(t, "la="):
					f[i] = []byte("la=*")
				case strings.HasPrefix(t, "exp=") && t != "exp=-1":
					f[i] = []byte("exp=*")
				}
			}
		}
		out = append(out, bytes.Join(f, []byte(" "))...)
		out = append(out, "\r\n"...)
		out = append(out, data...)
	})
	return append(out, tail...)
}

func isDigitsB(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// mdLearnCAS records the CAS uniques a reply shows with its key: VALUE
// lines of gets, meta replies with c and k flags.
func mdLearnCAS(reply []byte, cas map[string]string) {
	mdReplies(reply, func(line, _ []byte) {
		f := strings.Split(string(line), " ")
		if len(f) == 5 && f[0] == "VALUE" {
			cas[f[1]] = f[4]
			return
		}
		switch f[0] {
		case "HD", "VA", "EN", "NF", "NS", "EX":
		default:
			return
		}
		var key, c string
		b := false
		for _, t := range f[1:] {
			switch {
			case t == "b":
				b = true
			case len(t) > 1 && t[0] == 'k':
				key = t[1:]
			case len(t) > 1 && t[0] == 'c' && isDigitsB([]byte(t[1:])):
				c = t[1:]
			}
		}
		if b {
			k, err := base64.StdEncoding.DecodeString(key)
			if err != nil {
				return
			}
			key = string(k)
		}
		if key != "" && c != "" {
			cas[key] = c
		}
	})
}

// run plays sc on every side and returns where their (normalized)
// replies first differ, or nil.
func (d *metadiff) run(sc mdScenario) *ndMismatch {
	prefix := d.nextPrefix()
	conns := d.dial(0)
	defer closeAll(conns)
	cas := make([]map[string]string, len(d.sides))
	for i := range cas {
		cas[i] = map[string]string{}
	}
	for bi, batch := range sc.batches {
		results := exchangeAll(conns, sc.splits[bi],
			func(i int) []byte { return mdRender(batch, prefix, cas[i]) },
			func(i int, reply []byte) { mdLearnCAS(reply, cas[i]) })
		for i := 1; i < len(results); i++ {
			a, b := results[0], results[i]
			if a.closed != b.closed || a.stuck != b.stuck || !bytes.Equal(mdNormalize(a.reply), mdNormalize(b.reply)) {
				return &ndMismatch{batch: bi, results: results}
			}
		}
		if results[0].closed || results[0].stuck {
			return nil
		}
	}
	return nil
}

// shrink makes sc's mismatch smaller (dropping batches, then requests,
// while the sides still differ) and describes the result.
func (d *metadiff) shrink(sc mdScenario, m *ndMismatch) string {
	sc.batches, sc.splits = shrinkBatches(sc.batches, sc.splits, m.batch, func(b [][]string, s []int64) int {
		c := sc
		c.batches, c.splits = b, s
		if mm := d.run(c); mm != nil {
			m = mm
			return mm.batch
		}
		return -1
	})
	var b strings.Builder
	fmt.Fprintf(&b, "after shrinking, %d batches (\"@\" is the key prefix, <b64:NAME> the base64 of the prefix and NAME, <cas:KEY> the side's unique; a get of %s ends each):\n", len(sc.batches), nutdiffSentinel)
	for i, batch := range sc.batches {
		fmt.Fprintf(&b, "  batch %d (split seed %d): %s\n", i, sc.splits[i], testutil.Quote([]byte(strings.Join(batch, "")), 600))
	}
	fmt.Fprintf(&b, "replies to the last batch:\n")
	for i, r := range m.results {
		fmt.Fprintf(&b, "  %-20s closed=%v stuck=%v %s\n", d.sides[i].name, r.closed, r.stuck, testutil.Quote(mdNormalize(r.reply), 800))
	}
	return b.String()
}

package server_test

// The meta commands' part of the differential tests: their requests for
// TestDiffRandom, the normalisation of their replies, and transcripts.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// metaStatus are the starts of meta replies (the status line).
var metaStatus = [][]byte{[]byte("HD"), []byte("VA "), []byte("EN"), []byte("NF"),
	[]byte("NS"), []byte("EX"), []byte("ME ")}

// isMetaReply reports whether r is a meta reply: a status line and, after
// VA, a data block.
func isMetaReply(r []byte) bool {
	for _, s := range metaStatus {
		if bytes.HasPrefix(r, s) && (len(r) == len(s) || r[len(s)] == ' ' || r[len(s)] == '\r' || s[len(s)-1] == ' ') {
			return true
		}
	}
	return false
}

// numberMeta rewrites the status line of a meta reply so that servers
// compare equal when they name the same item versions: CAS uniques (c
// flag, me's cas=) are numbered as in VALUE lines, and the values that
// depend on when each server's clock ticks are reduced to what is certain:
// a positive TTL (t) to "t+", idle seconds (l, me's la=) to "*", and me's
// exp= of an expiring item to "*".
func (p *peer) numberMeta(r []byte) []byte {
	end := bytes.IndexByte(r, '\n') + 1
	line, rest := r[:end], r[end:]
	body := bytes.TrimRight(line, "\r\n")
	f := bytes.Split(body, []byte(" "))
	debug := string(f[0]) == "ME"
	from := 1
	if string(f[0]) == "VA" || debug {
		from = 2 // the data length, or me's key
	}
	for i := from; i < len(f); i++ {
		t := f[i]
		switch {
		case debug && bytes.HasPrefix(t, []byte("cas=")):
			if v, err := strconv.ParseUint(string(t[4:]), 10, 64); err == nil && v != 0 {
				f[i] = fmt.Appendf(nil, "cas=#%d", p.casID(v))
			}
		case debug && bytes.HasPrefix(t, []byte("la=")):
			f[i] = []byte("la=*")
		case debug && bytes.HasPrefix(t, []byte("exp=")) && string(t) != "exp=-1":
			f[i] = []byte("exp=*")
		case debug || len(t) < 2 || !isDigits(t[1:]):
		case t[0] == 'c' && string(t) != "c0":
			v, _ := strconv.ParseUint(string(t[1:]), 10, 64)
			f[i] = fmt.Appendf(nil, "c#%d", p.casID(v))
		case t[0] == 't':
			f[i] = []byte("t+")
		case t[0] == 'l':
			f[i] = []byte("l*")
		}
	}
	out := bytes.Join(f, []byte(" "))
	out = append(out, line[len(body):]...)
	return append(out, rest...)
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// learnMeta notes the CAS ids in a normalised meta status line: for the
// key named by its k flag when it has one.
func (g *generator) learnMeta(line []byte) {
	if !isMetaReply(line) {
		return
	}
	var key string
	id := 0
	for _, t := range fields(line) {
		switch {
		case bytes.HasPrefix(t, []byte("c#")):
			id, _ = strconv.Atoi(string(t[2:]))
		case bytes.HasPrefix(t, []byte("cas=#")):
			id, _ = strconv.Atoi(string(t[5:]))
		case len(t) > 1 && t[0] == 'k':
			key = string(t[1:])
		}
	}
	if id == 0 {
		return
	}
	g.lastID = max(g.lastID, id)
	if key != "" {
		g.seen[key] = append(g.seen[key], id)
	}
}

// meta returns a meta request. Its flags are drawn at random, including
// ones that are malformed, repeated or unknown to memcached 1.6.18.
//
// Values that memcached reads at a moment each server's clock decides are
// avoided: R (recache) times never equal an exptime the generator uses, so
// an item's expiry is never compared with a time a tick apart.
func (g *generator) meta() step {
	switch n := g.r.IntN(100); {
	case n < 33:
		return step{req: g.metaGet()}
	case n < 58:
		return step{req: g.metaSet()}
	case n < 70:
		return step{req: g.metaDelete()}
	case n < 85:
		return step{req: g.metaArith(), first: true}
	case n < 90:
		return step{req: g.pick("mn", "mn", "mn x") + g.eol()}
	case n < 95:
		key, b := g.metaKey()
		if b != "" {
			b = " b"
		}
		return step{req: "me " + key + b + g.eol()}
	default:
		return step{req: g.pick("mg", "ms", "md", "ma", "me", "mx k1", "ms k1", "mg k1 Z",
			"md k1 x", "ma k1 E1", "mgg k1", "mg "+tooLongKey+" v") + g.eol()}
	}
}

// binaryKeys are keys only a base64 key token can name: with spaces,
// NULs; and keys of 186 and 188 bytes, whose base64 forms are 248 and 252
// bytes long, memcached checking the length of the token. None holds a
// newline: replies show the key of an item that mg or ma made (N) as it
// is, not in base64, in memcached as in corvid, and a newline would end
// the reply's line before its flags, some of which are normalised.
var binaryKeys = []string{"a b", "\x00", "k\x00\x01\xff", "k\rx", " ",
	strings.Repeat("b", 186), strings.Repeat("\x00b", 94)}

// metaKey returns a key token and, for a base64 key, the flag "b".
func (g *generator) metaKey() (key, b string) {
	k := g.key()
	if g.chance(3) {
		k = binaryKeys[g.r.IntN(len(binaryKeys))]
	}
	switch n := g.r.IntN(100); {
	case n < 80 && strings.ContainsAny(k, " \x00\n"):
		return base64.StdEncoding.EncodeToString([]byte(k)), "b"
	case n < 78:
		return k, ""
	case n < 80:
		return g.readKey(), ""
	case n < 95:
		return base64.StdEncoding.EncodeToString([]byte(k)), "b" + g.pick("", "", "", "x")
	default:
		return g.pick("!!!", "abc", "a=b=", "====", "QQ==x", "Zm9v====", "Zg=A", "Zm9v\x00"), "b"
	}
}

func (g *generator) opaque() string {
	if g.chance(4) {
		return "O" + strings.Repeat("o", 31+g.r.IntN(2))
	}
	return "O" + g.pick("", "1", "abc", "x-y", strconv.Itoa(g.r.IntN(1e6)), "\x01\xff")
}

// ret is a return flag, sometimes with bytes after it, which memcached
// ignores: it reads a flag token's first byte.
func (g *generator) ret(flag string) func() string {
	return func() string {
		if g.chance(3) {
			return flag + g.pick("x", "1", flag)
		}
		return flag
	}
}

// proxyFlags are flags that memcached 1.6.18 takes and ignores, kept for
// its proxy.
func (g *generator) proxyFlags() string {
	return g.pick("P", "L", "Pfoo", "L1")
}

// metaTTL is a T or N value: mostly the generator's exptimes.
func (g *generator) metaTTL() string {
	if g.chance(5) {
		return g.pick("abc", "", "1.5", "2147483648", "-2147483649")
	}
	return g.exptime()
}

// flagSet is a flag option set with its makers in a fixed order.
type flagSet []struct {
	name string
	make func() string
}

func (g *generator) flags(b string, set flagSet, percent int) string {
	var flags []string
	if b != "" {
		flags = append(flags, b)
	}
	for _, o := range set {
		if g.chance(percent) {
			flags = append(flags, o.make())
		}
	}
	g.r.Shuffle(len(flags), func(i, j int) { flags[i], flags[j] = flags[j], flags[i] })
	switch n := g.r.IntN(100); {
	case n < 3 && len(flags) > 0:
		flags = append(flags, flags[0]) // a repeated flag
	case n < 6:
		flags = append(flags, g.pick("x", "E5", "Z", "S1", "\x01", "é"))
	case n < 8:
		// Around memcached's limit on a meta command's tokens.
		for range 15 + g.r.IntN(10) {
			flags = append(flags, "O1")
		}
	}
	if len(flags) == 0 {
		return ""
	}
	return " " + strings.Join(flags, " ")
}

func fixed(s string) func() string { return func() string { return s } }

func (g *generator) metaGet() string {
	key, b := g.metaKey()
	set := flagSet{
		{"v", fixed("v")}, {"v", fixed("v")}, {"f", g.ret("f")}, {"t", g.ret("t")},
		{"s", g.ret("s")}, {"c", g.ret("c")}, {"k", g.ret("k")}, {"h", g.ret("h")},
		{"l", g.ret("l")}, {"q", g.ret("q")}, {"u", g.ret("u")}, {"O", g.opaque},
		{"T", func() string { return "T" + g.metaTTL() }},
		{"N", func() string { return "N" + g.metaTTL() }},
		{"R", func() string { return "R" + g.num(g.pick("30", "200000", "2000000001", "-1", "0", "x")) }},
		{"P", g.proxyFlags},
	}
	// v is listed twice to be common; keep one.
	fl := g.flags(b, set, 25)
	if strings.Count(fl, " v") > 1 {
		fl = strings.Replace(fl, " v", "", 1)
	}
	return "mg " + key + fl + g.eol()
}

func (g *generator) metaSet() string {
	key, b := g.metaKey()
	flags := "0"
	if g.chance(30) {
		flags = g.pick("1", "42", "4294967295")
	}
	mode := g.pick("S", "E", "A", "P", "R", "X", "EE", "")
	set := flagSet{
		{"T", func() string { return "T" + g.metaTTL() }},
		{"F", func() string { return "F" + g.num(g.pick(flags, flags, flags, "-1", "x", "4294967296", "")) }},
		{"C", func() string { return "C" + g.num(g.casArg(key)) }},
		{"I", g.ret("I")}, {"q", g.ret("q")}, {"O", g.opaque}, {"k", g.ret("k")},
		{"c", g.ret("c")}, {"M", func() string { return "M" + mode }},
		{"f", fixed("f")}, {"v", fixed("v")}, {"P", g.proxyFlags},
	}
	fl := g.flags(b, set, 30)
	cmd := "set"
	switch {
	case strings.Contains(fl, " MA"):
		cmd = "append"
	case strings.Contains(fl, " MP"):
		cmd = "prepend"
	}
	v := forIncr(cmd, g.value(key, flags, cmd))
	length := strconv.Itoa(len(v))
	data := v + "\r\n"
	// memcached reads the data block as commands after some errors; keep
	// it short then (see generator).
	if len(key) > 250 || strings.Contains(key, "\x00") || strings.Count(fl, " ") > 16 || g.chance(10) {
		v = g.hex(g.r.IntN(10))
		length, data = strconv.Itoa(len(v)), v+"\r\n"
		switch g.r.IntN(4) {
		case 0:
			data = v + g.hex(1+g.r.IntN(4)) + "\r\n" // a bad data chunk
		case 1:
			length = g.pick("-1", "abc", "")
		case 2:
			length += " " + strings.Repeat("k ", 20)
		default:
			key = tooLongKey
		}
	}
	return "ms " + key + " " + g.num(length) + fl + g.eol() + data
}

func (g *generator) metaDelete() string {
	key, b := g.metaKey()
	set := flagSet{
		{"q", g.ret("q")}, {"C", func() string { return "C" + g.num(g.casArg(key)) }},
		{"I", g.ret("I")}, {"T", func() string { return "T" + g.metaTTL() }},
		{"O", g.opaque}, {"k", g.ret("k")}, {"x", fixed("x")}, {"L", g.proxyFlags},
	}
	return "md " + key + g.flags(b, set, 20) + g.eol()
}

// metaArith returns an ma request within the generator's limits on
// numbers (see generator): deltas of incr stay at most 10^15.
func (g *generator) metaArith() string {
	key, b := g.metaKey()
	mode := g.pick("I", "+", "D", "-", "i", "x")
	decr := mode == "D" || mode == "-"
	set := flagSet{
		{"N", func() string { return "N" + g.metaTTL() }},
		{"J", func() string { return "J" + g.num(g.pick("0", "5", "999999999999999999", "-1", "x", "")) }},
		{"D", func() string {
			if decr {
				return "D" + g.num(g.pick("1", "18446744073709551615", "abc", "-0"))
			}
			return "D" + g.num(g.pick("0", "1", "100", strconv.FormatUint(g.r.Uint64N(1e15), 10), "abc", ""))
		}},
		{"T", func() string { return "T" + g.metaTTL() }},
		{"M", func() string { return "M" + mode }},
		{"q", g.ret("q")}, {"O", g.opaque}, {"k", g.ret("k")}, {"t", g.ret("t")},
		{"c", g.ret("c")}, {"v", g.ret("v")},
		{"C", func() string { return "C" + g.num(g.casArg(key)) }},
		{"P", g.proxyFlags},
	}
	return "ma " + key + g.flags(b, set, 25) + g.eol()
}

// metaTranscripts pin the meta protocol's behaviour as memcached 1.6.18
// answers it (CAS uniques numbered as peer does).
var metaTranscripts = []transcript{
	{"meta get and set", []exchange{
		{"mg k v\r\n", "EN\r\n"},
		{"ms k 3 T0 F5 c k O123\r\nabc\r\n", "HD c#1 kk O123\r\n"},
		{"mg k v f t s c k h O9\r\n", "VA 3 f5 t-1 s3 c#1 kk h0 O9\r\nabc\r\n"},
		{"mg k h\r\n", "HD h1\r\n"},
		{"mg k q\r\n", "HD\r\n"},
		{"mg missing q v\r\nmn\r\n", "MN\r\n"},
		{"mg missing k O5\r\n", "EN kmissing O5\r\n"},
		{"ms k 1 MR C999\r\nx\r\n", "EX\r\n"},
		{"ms k 1 MR C<cas#1> c\r\nx\r\n", "HD c#2\r\n"},
		{"ms k 1 ME q\r\ny\r\nmn\r\n", "NS\r\nMN\r\n"},
		{"ms k 1 MA\r\ny\r\n", "HD\r\n"},
		{"ms k 1 MP\r\nw\r\n", "HD\r\n"},
		{"mg k v\r\n", "VA 3\r\nwxy\r\n"},
	}},
	{"meta errors", []exchange{
		{"mg\r\n", "ERROR\r\n"},
		{"me\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"mg k v v\r\n", "CLIENT_ERROR duplicate flag\r\n"},
		{"mg k E5\r\n", "CLIENT_ERROR invalid flag\r\n"},
		{"md k x\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		{"mg k Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
		{"mg k a b c d e f g h i j k l m n o p q r\r\n", "CLIENT_ERROR options flags are too long\r\n"},
		{"ms k 1 Mx\r\na\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n"},
		{"ms k 1 MEE\r\na\r\n", "CLIENT_ERROR incorrect length for M token\r\n"},
		{"ms k\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"ms k 1 q\r\nab\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"ma k Mi\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n"},
		{"ma k Dx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		{"mg k O" + strings.Repeat("o", 32) + "\r\n", "CLIENT_ERROR opaque token too long\r\n"},
		{"mx k\r\n", "ERROR\r\n"},
	}},
	{"meta base64 keys", []exchange{
		{"ms Zm9v 1 b k\r\n1\r\n", "HD kZm9v b\r\n"},
		{"mg foo k v\r\n", "VA 1 kZm9v b\r\n1\r\n"},
		{"mg Zm9vYg b k\r\n", "CLIENT_ERROR error decoding key\r\n"},
		{"mg Zm9vYg== b k\r\n", "EN kZm9vYg== b\r\n"},
		{"mg Zm9vYg== b k N0\r\n", "HD kfoob W\r\n"},
	}},
	{"meta stale-while-revalidate", []exchange{
		{"mg k N30 v c\r\n", "VA 0 c#1 W\r\n\r\n"},
		{"mg k v\r\n", "VA 0 Z\r\n\r\n"},
		{"ms k 1 T30\r\nv\r\n", "HD\r\n"},
		{"md k I q\r\nmn\r\n", "MN\r\n"},
		{"mg k v c\r\n", "VA 1 c#2 X W\r\nv\r\n"},
		{"mg k v\r\n", "VA 1 Z X\r\nv\r\n"},
		{"ms k 1 I C<cas#1>\r\nw\r\n", "HD\r\n"},
		{"mg k v\r\n", "VA 1 Z X\r\nw\r\n"},
		{"md k C<cas#2>\r\n", "EX\r\n"},
		{"md k q\r\nmn\r\n", "MN\r\n"},
		{"md k q\r\n", "NF\r\n"},
	}},
	{"meta arithmetic", []exchange{
		{"ma n\r\n", "NF\r\n"},
		{"ma n N0 J10 v\r\n", "VA 2\r\n10\r\n"},
		{"ma n v t\r\n", "VA 2 t-1\r\n11\r\n"},
		{"ma n MD D100 v\r\n", "VA 1\r\n0\r\n"},
		{"ma n q\r\nmn\r\n", "MN\r\n"},
		{"ma m N0 q\r\nmn\r\n", "HD\r\nMN\r\n"},
		{"ma n C1\r\n", "EX\r\n"},
		{"ma n M- D1 O1 k\r\n", "HD O1 kn\r\n"},
		// A longer result is a new item; memcached answers from the old
		// one, where T takes effect, unseen by the new one.
		{"ms w 2 T100\r\n99\r\n", "HD\r\n"},
		{"ma w T0 t v\r\n", "VA 3 t-1\r\n100\r\n"},
		{"mg w t v\r\n", "VA 3 t+\r\n100\r\n"},
		{"ma w T0 t\r\n", "HD t-1\r\n"},
		{"mg w t\r\n", "HD t-1\r\n"},
		{"ms s 1\r\nx\r\n", "HD\r\n"},
		{"ma s\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
	}},
}

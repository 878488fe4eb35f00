package protocol

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// result is the comparable content of a Request.
type result struct {
	cmd     Command
	keys    []string
	flags   uint32
	exptime int64
	vlen    int
	cas     uint64
	delta   uint64
	delay   int64
	level   uint64
	noreply bool
	args    []string
}

func resultOf(r *Request) result {
	res := result{
		cmd: r.Command, flags: r.Flags, exptime: r.Exptime, vlen: r.ValueLen,
		cas: r.CAS, delta: r.Delta, delay: r.Delay, level: r.Level, noreply: r.NoReply,
	}
	for _, k := range r.Keys {
		res.keys = append(res.keys, string(k))
	}
	for k, i := NextKey(r.GetKeys, 0); len(k) > 0; k, i = NextKey(r.GetKeys, i) {
		res.keys = append(res.keys, string(k))
	}
	for _, a := range r.Args {
		res.args = append(res.args, string(a))
	}
	return res
}

// specified keeps what Parse documents for a line it returned err for.
func (r result) specified(err error) result {
	if err == nil {
		return r
	}
	keep := result{cmd: r.cmd, noreply: r.noreply}
	if r.cmd.isGet() {
		keep.keys = r.keys
	}
	return keep
}

func (c Command) isGet() bool {
	return c == CmdGet || c == CmdGets || c == CmdGat || c == CmdGats
}

func (c Command) isStorage() bool {
	return CmdSet <= c && c <= CmdCas
}

type parseCase struct {
	name string
	in   string // one line with its end, or a line prefix without "\n"
	err  error
	want result // only the fields specified for err are compared
}

// wantN is the n Parse must return for c.
func (c parseCase) wantN() int {
	if c.err == ErrLineTooLong {
		return 0
	}
	return strings.IndexByte(c.in, '\n') + 1
}

var (
	key250   = strings.Repeat("k", 250)
	key251   = strings.Repeat("k", 251)
	keys150  = numberedKeys(150)
	longGet  = "get " + strings.Join(numberedKeys(600), " ") + "\r\n"
	spaces   = strings.Repeat(" ", 2100)
	megaKeys = strings.Repeat("abcdefg ", MaxGetLineLen/8)
)

func numberedKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
	}
	return keys
}

func get(cmd Command, keys ...string) result { return result{cmd: cmd, keys: keys} }

func keyed(cmd Command, key string) result { return result{cmd: cmd, keys: []string{key}} }

func store(cmd Command, key string, flags uint32, exptime int64, vlen int) result {
	return result{cmd: cmd, keys: []string{key}, flags: flags, exptime: exptime, vlen: vlen}
}

func quiet(r result) result { r.noreply = true; return r }

// parseCases returns the table that TestParse checks, that the golden
// transcripts record memcached's replies for, and that seeds FuzzParse.
func parseCases() []parseCase {
	set := func(key string, flags uint32, exptime int64, vlen int) result {
		return store(CmdSet, key, flags, exptime, vlen)
	}
	cas := func(r result, v uint64) result { r.cmd = CmdCas; r.cas = v; return r }
	arith := func(cmd Command, key string, delta uint64) result {
		return result{cmd: cmd, keys: []string{key}, delta: delta}
	}
	touch := func(key string, exptime int64) result {
		return result{cmd: CmdTouch, keys: []string{key}, exptime: exptime}
	}
	gat := func(cmd Command, exptime int64, keys ...string) result {
		return result{cmd: cmd, exptime: exptime, keys: keys}
	}
	flush := func(delay int64) result { return result{cmd: CmdFlushAll, delay: delay} }
	level := func(cmd Command, v uint64) result { return result{cmd: cmd, level: v} }
	args := func(cmd Command, a ...string) result { return result{cmd: cmd, args: a} }
	none := result{}

	return []parseCase{
		// Line framing.
		{"line/crlf", "get k\r\n", nil, get(CmdGet, "k")},
		{"line/bare lf", "get k\n", nil, get(CmdGet, "k")},
		{"line/two cr keep one in key", "get k\r\r\n", nil, get(CmdGet, "k\r")},
		{"line/cr inside key", "get a\rb\r\n", nil, get(CmdGet, "a\rb")},
		{"line/leading spaces", "   get k\r\n", nil, get(CmdGet, "k")},
		{"line/trailing spaces", "get k   \r\n", nil, get(CmdGet, "k")},
		{"line/empty crlf", "\r\n", ErrUnknownCommand, none},
		{"line/empty lf", "\n", ErrUnknownCommand, none},
		{"line/only spaces", "   \r\n", ErrUnknownCommand, none},
		{"line/nul ends line", "get a\x00 b\r\n", nil, get(CmdGet, "a")},
		{"line/nul in command", "ge\x00t k\r\n", ErrUnknownCommand, none},
		{"line/incomplete", "get k", nil, none},
		{"line/incomplete cr", "get k\r", nil, none},
		{"line/empty buffer", "", nil, none},
		{"line/2048 bytes unterminated", strings.Repeat("x", MaxLineLen), nil, none},
		{"line/2049 bytes unterminated", strings.Repeat("x", MaxLineLen+1), ErrLineTooLong, none},
		{"line/2048 bytes before lf", "delete k" + spaces[:MaxLineLen-8] + "\n", nil, keyed(CmdDelete, "k")},
		{"line/2048 bytes with cr before lf", "delete k" + spaces[:MaxLineLen-9] + "\r\n", nil, keyed(CmdDelete, "k")},
		{"line/2049 bytes before lf", "delete k" + spaces[:MaxLineLen-7] + "\n", ErrLineTooLong, none},
		{"line/3000-byte set", "set " + strings.Repeat("a", 2990) + " 0 0 1\r\n", ErrLineTooLong, none},
		{"line/3000-byte unknown", strings.Repeat("z", 3000) + "\r\n", ErrLineTooLong, none},
		{"line/long get unterminated", "get " + strings.Repeat("k ", 1500), nil, none},
		{"line/long gets unterminated", "gets " + strings.Repeat("k ", 1500), nil, none},
		{"line/long get after 100 spaces", strings.Repeat(" ", 100) + "get " + strings.Repeat("k ", 1500), nil, none},
		{"line/long get after 101 spaces", strings.Repeat(" ", 101) + "get " + strings.Repeat("k ", 1500), ErrLineTooLong, none},
		{"line/long get tab", "get\t" + strings.Repeat("k ", 1500), ErrLineTooLong, none},
		{"line/long gat", "gat 0 " + strings.Repeat("k ", 1500) + "\r\n", ErrLineTooLong, none},
		{"line/long bget", "bget " + strings.Repeat("k ", 1500) + "\r\n", ErrLineTooLong, none},
		{"line/long get at limit", "get " + megaKeys[:MaxGetLineLen-4], nil, none},
		{"line/long get over limit", "get " + megaKeys[:MaxGetLineLen-3], ErrLineTooLong, none},
		{"line/long get lf at limit", "get " + megaKeys[:MaxGetLineLen-4] + "\n", nil,
			get(CmdGet, strings.Fields(megaKeys[:MaxGetLineLen-4])...)},
		{"line/long get lf over limit", "get " + megaKeys[:MaxGetLineLen-3] + "\n", ErrLineTooLong, none},

		// Command names.
		{"command/unknown", "foo bar\r\n", ErrUnknownCommand, none},
		{"command/one char", "g\r\n", ErrUnknownCommand, none},
		{"command/upper case", "GET k\r\n", ErrUnknownCommand, none},
		{"command/tab joins tokens", "get\tk\r\n", ErrUnknownCommand, none},
		{"command/set tab", "set\tk 0 0 1\r\n", ErrUnknownCommand, none},
		{"command/prefix", "gett k\r\n", ErrUnknownCommand, none},

		// get, gets, bget.
		{"get/one key", "get k\r\n", nil, get(CmdGet, "k")},
		{"get/two keys", "get a b\r\n", nil, get(CmdGet, "a", "b")},
		{"get/many spaces", "get   a    b \r\n", nil, get(CmdGet, "a", "b")},
		{"get/no key", "get\r\n", ErrUnknownCommand, get(CmdGet)},
		{"get/no key trailing spaces", "get    \r\n", ErrUnknownCommand, get(CmdGet)},
		{"get/key 250", "get " + key250 + "\r\n", nil, get(CmdGet, key250)},
		{"get/key 251", "get " + key251 + "\r\n", ErrBadFormat, get(CmdGet)},
		{"get/key 251 after two", "get a b " + key251 + " c\r\n", ErrBadFormat, get(CmdGet, "a", "b")},
		{"get/key 251 after 150", "get " + strings.Join(keys150, " ") + " " + key251 + " z\r\n", ErrBadFormat,
			get(CmdGet, keys150...)},
		{"get/tab in key", "get a\tb\r\n", nil, get(CmdGet, "a\tb")},
		{"get/control bytes in key", "get \x01\x7f\xff\r\n", nil, get(CmdGet, "\x01\x7f\xff")},
		{"get/noreply is a key", "get k noreply\r\n", nil, get(CmdGet, "k", "noreply")},
		{"get/150 keys", "get " + strings.Join(keys150, " ") + "\r\n", nil, get(CmdGet, keys150...)},
		{"get/over 2048 bytes", longGet, nil, get(CmdGet, strings.Fields(longGet)[1:]...)},
		{"gets/two keys", "gets a b\r\n", nil, get(CmdGets, "a", "b")},
		{"gets/no key", "gets\r\n", ErrUnknownCommand, get(CmdGets)},
		{"gets/key 251", "gets a " + key251 + "\r\n", ErrBadFormat, get(CmdGets, "a")},
		{"bget/one key", "bget k\r\n", nil, get(CmdGet, "k")},

		// gat, gats.
		{"gat/two keys", "gat 10 a b\r\n", nil, gat(CmdGat, 10, "a", "b")},
		{"gat/no keys", "gat 10\r\n", nil, gat(CmdGat, 10)},
		{"gat/nothing", "gat\r\n", ErrUnknownCommand, get(CmdGat)},
		{"gat/bad exptime", "gat x a\r\n", ErrInvalidExptime, get(CmdGat)},
		{"gat/exptime 2^32", "gat 4294967296 a\r\n", nil, gat(CmdGat, 0, "a")},
		{"gat/exptime -1", "gat -1 a\r\n", nil, gat(CmdGat, -1, "a")},
		{"gat/exptime 2^63", "gat 9223372036854775808 a\r\n", ErrInvalidExptime, get(CmdGat)},
		{"gat/key 251", "gat 0 a " + key251 + "\r\n", ErrBadFormat, get(CmdGat, "a")},
		{"gats/two keys", "gats 0 a b\r\n", nil, gat(CmdGats, 0, "a", "b")},
		{"gats/no keys", "gats 0\r\n", nil, gat(CmdGats, 0)},
		{"gats/key 251", "gats 0 " + key251 + "\r\n", ErrBadFormat, get(CmdGats)},

		// Storage commands.
		{"set/basic", "set k 0 0 5\r\n", nil, set("k", 0, 0, 5)},
		{"set/bare lf", "set k 1 2 3\n", nil, set("k", 1, 2, 3)},
		{"set/noreply", "set k 0 0 1 noreply\r\n", nil, quiet(set("k", 0, 0, 1))},
		{"set/sixth token ignored", "set k 0 0 1 junk\r\n", nil, set("k", 0, 0, 1)},
		{"set/missing bytes", "set k 0 0\r\n", ErrUnknownCommand, result{cmd: CmdSet}},
		{"set/missing all", "set\r\n", ErrUnknownCommand, result{cmd: CmdSet}},
		{"set/extra token", "set k 0 0 1 junk more\r\n", ErrUnknownCommand, result{cmd: CmdSet}},
		{"set/extra after noreply", "set k 0 0 1 noreply extra\r\n", ErrUnknownCommand, result{cmd: CmdSet}},
		{"set/30 tokens", "set k 0 0 1" + strings.Repeat(" a", 25) + "\r\n", ErrUnknownCommand, result{cmd: CmdSet}},
		{"set/key 250", "set " + key250 + " 0 0 1\r\n", nil, set(key250, 0, 0, 1)},
		{"set/key 251", "set " + key251 + " 0 0 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/key 251 noreply", "set " + key251 + " 0 0 1 noreply\r\n", ErrBadFormat, quiet(result{cmd: CmdSet})},
		{"set/tab in key", "set a\tb 0 0 1\r\n", nil, set("a\tb", 0, 0, 1)},
		{"set/flags max", "set k 4294967295 0 1\r\n", nil, set("k", 1<<32-1, 0, 1)},
		{"set/flags 2^32", "set k 4294967296 0 1\r\n", nil, set("k", 0, 0, 1)},
		{"set/flags 2^32+7", "set k 4294967303 0 1\r\n", nil, set("k", 7, 0, 1)},
		{"set/flags 2^64", "set k 18446744073709551616 0 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/flags -1", "set k -1 0 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/flags -0", "set k -0 0 1\r\n", nil, set("k", 0, 0, 1)},
		{"set/flags -(2^64-1)", "set k -18446744073709551615 0 1\r\n", nil, set("k", 1, 0, 1)},
		{"set/flags plus", "set k +5 0 1\r\n", nil, set("k", 5, 0, 1)},
		{"set/flags leading tab", "set k \t7 0 1\r\n", nil, set("k", 7, 0, 1)},
		{"set/flags junk", "set k 1x 0 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/flags hex", "set k 0x1 0 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/exptime -1", "set k 0 -1 1\r\n", nil, set("k", 0, -1, 1)},
		{"set/exptime 2^31", "set k 0 2147483648 1\r\n", nil, set("k", 0, -1<<31, 1)},
		{"set/exptime 2^32+1", "set k 0 4294967297 1\r\n", nil, set("k", 0, 1, 1)},
		{"set/exptime 2^63", "set k 0 9223372036854775808 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/exptime -2^63", "set k 0 -9223372036854775808 1\r\n", nil, set("k", 0, 0, 1)},
		{"set/exptime junk", "set k 0 x 1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes 0", "set k 0 0 0\r\n", nil, set("k", 0, 0, 0)},
		{"set/bytes -0", "set k 0 0 -0\r\n", nil, set("k", 0, 0, 0)},
		{"set/bytes -1", "set k 0 0 -1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes -1 noreply", "set k 0 0 -1 noreply\r\n", ErrBadFormat, quiet(result{cmd: CmdSet})},
		{"set/bytes plus", "set k 0 0 +1\r\n", nil, set("k", 0, 0, 1)},
		{"set/bytes tab junk", "set k 0 0 1\tjunk\r\n", nil, set("k", 0, 0, 1)},
		{"set/bytes junk", "set k 0 0 1x\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes hex", "set k 0 0 0x1\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes noreply", "set k 0 0 noreply\r\n", ErrBadFormat, quiet(result{cmd: CmdSet})},
		{"set/bytes INT_MAX-2", "set k 0 0 2147483645\r\n", nil, set("k", 0, 0, 2147483645)},
		{"set/bytes INT_MAX-1", "set k 0 0 2147483646\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes 2^31-1", "set k 0 0 2147483647\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes 2^31", "set k 0 0 2147483648\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes 2^32", "set k 0 0 4294967296\r\n", nil, set("k", 0, 0, 0)},
		{"set/bytes 2^32+1", "set k 0 0 4294967297\r\n", nil, set("k", 0, 0, 1)},
		{"set/bytes 2^64", "set k 0 0 18446744073709551616\r\n", ErrBadFormat, result{cmd: CmdSet}},
		{"set/bytes with cr", "set k 0 0 1\r\r\n", nil, set("k", 0, 0, 1)},
		{"set/leading spaces", "  set k 0 0 1\r\n", nil, set("k", 0, 0, 1)},
		{"add/basic", "add k 1 2 3\r\n", nil, store(CmdAdd, "k", 1, 2, 3)},
		{"add/missing", "add k 1 2\r\n", ErrUnknownCommand, result{cmd: CmdAdd}},
		{"replace/basic", "replace k 1 2 3 noreply\r\n", nil, quiet(store(CmdReplace, "k", 1, 2, 3))},
		{"replace/bad flags", "replace k x 0 1\r\n", ErrBadFormat, result{cmd: CmdReplace}},
		{"append/basic", "append k 0 0 1\r\n", nil, store(CmdAppend, "k", 0, 0, 1)},
		{"append/extra", "append k 0 0 1 2 3\r\n", ErrUnknownCommand, result{cmd: CmdAppend}},
		{"prepend/basic", "prepend k 0 0 1\r\n", nil, store(CmdPrepend, "k", 0, 0, 1)},
		{"prepend/key 251", "prepend " + key251 + " 0 0 1\r\n", ErrBadFormat, result{cmd: CmdPrepend}},
		{"cas/basic", "cas k 1 2 3 4\r\n", nil, cas(store(CmdCas, "k", 1, 2, 3), 4)},
		{"cas/noreply", "cas k 0 0 1 4 noreply\r\n", nil, quiet(cas(store(CmdCas, "k", 0, 0, 1), 4))},
		{"cas/seventh token ignored", "cas k 0 0 1 4 junk\r\n", nil, cas(store(CmdCas, "k", 0, 0, 1), 4)},
		{"cas/missing unique", "cas k 0 0 1\r\n", ErrUnknownCommand, result{cmd: CmdCas}},
		{"cas/noreply as unique", "cas k 0 0 1 noreply\r\n", ErrBadFormat, quiet(result{cmd: CmdCas})},
		{"cas/extra token", "cas k 0 0 1 1 noreply x\r\n", ErrUnknownCommand, result{cmd: CmdCas}},
		{"cas/unique max", "cas k 0 0 1 18446744073709551615\r\n", nil,
			cas(store(CmdCas, "k", 0, 0, 1), 1<<64-1)},
		{"cas/unique 2^64", "cas k 0 0 1 18446744073709551616\r\n", ErrBadFormat, result{cmd: CmdCas}},
		{"cas/unique -1", "cas k 0 0 1 -1\r\n", ErrBadFormat, result{cmd: CmdCas}},
		{"cas/unique -(2^64-1)", "cas k 0 0 1 -18446744073709551615\r\n", nil, cas(store(CmdCas, "k", 0, 0, 1), 1)},
		{"cas/bad bytes", "cas k 0 0 -1 1\r\n", ErrBadFormat, result{cmd: CmdCas}},

		// delete.
		{"delete/basic", "delete k\r\n", nil, keyed(CmdDelete, "k")},
		{"delete/noreply", "delete k noreply\r\n", nil, quiet(keyed(CmdDelete, "k"))},
		{"delete/zero", "delete k 0\r\n", nil, keyed(CmdDelete, "k")},
		{"delete/zero noreply", "delete k 0 noreply\r\n", nil, quiet(keyed(CmdDelete, "k"))},
		{"delete/key named noreply", "delete noreply\r\n", nil, keyed(CmdDelete, "noreply")},
		{"delete/time 1", "delete k 1\r\n", ErrDeleteUsage, result{cmd: CmdDelete}},
		{"delete/time 00", "delete k 00\r\n", ErrDeleteUsage, result{cmd: CmdDelete}},
		{"delete/time -0", "delete k -0\r\n", ErrDeleteUsage, result{cmd: CmdDelete}},
		{"delete/time 1 noreply", "delete k 1 noreply\r\n", ErrDeleteUsage, quiet(result{cmd: CmdDelete})},
		{"delete/noreply then zero", "delete k noreply 0\r\n", ErrDeleteUsage, result{cmd: CmdDelete}},
		{"delete/zero zero", "delete k 0 0\r\n", ErrDeleteUsage, result{cmd: CmdDelete}},
		{"delete/no key", "delete\r\n", ErrUnknownCommand, result{cmd: CmdDelete}},
		{"delete/extra token", "delete k 0 noreply x\r\n", ErrUnknownCommand, result{cmd: CmdDelete}},
		{"delete/key 250", "delete " + key250 + "\r\n", nil, keyed(CmdDelete, key250)},
		{"delete/key 251", "delete " + key251 + "\r\n", ErrBadFormat, result{cmd: CmdDelete}},
		{"delete/key 251 noreply", "delete " + key251 + " noreply\r\n", ErrBadFormat, quiet(result{cmd: CmdDelete})},
		{"delete/key 251 time 1", "delete " + key251 + " 1\r\n", ErrDeleteUsage, result{cmd: CmdDelete}},

		// incr, decr.
		{"incr/basic", "incr k 1\r\n", nil, arith(CmdIncr, "k", 1)},
		{"incr/noreply", "incr k 1 noreply\r\n", nil, quiet(arith(CmdIncr, "k", 1))},
		{"incr/fourth token ignored", "incr k 1 junk\r\n", nil, arith(CmdIncr, "k", 1)},
		{"incr/delta max", "incr k 18446744073709551615\r\n", nil, arith(CmdIncr, "k", 1<<64-1)},
		{"incr/delta 2^64", "incr k 18446744073709551616\r\n", ErrInvalidDelta, result{cmd: CmdIncr}},
		{"incr/delta -1", "incr k -1\r\n", ErrInvalidDelta, result{cmd: CmdIncr}},
		{"incr/delta -0", "incr k -0\r\n", nil, arith(CmdIncr, "k", 0)},
		{"incr/delta -(2^63+1)", "incr k -9223372036854775809\r\n", nil, arith(CmdIncr, "k", 1<<63-1)},
		{"incr/delta junk", "incr k abc\r\n", ErrInvalidDelta, result{cmd: CmdIncr}},
		{"incr/delta fraction", "incr k 1.5\r\n", ErrInvalidDelta, result{cmd: CmdIncr}},
		{"incr/delta noreply", "incr k noreply\r\n", ErrInvalidDelta, quiet(result{cmd: CmdIncr})},
		{"incr/missing delta", "incr k\r\n", ErrUnknownCommand, result{cmd: CmdIncr}},
		{"incr/extra token", "incr k 1 noreply x\r\n", ErrUnknownCommand, result{cmd: CmdIncr}},
		{"incr/key 251", "incr " + key251 + " 1\r\n", ErrBadFormat, result{cmd: CmdIncr}},
		{"incr/key 251 bad delta", "incr " + key251 + " x\r\n", ErrBadFormat, result{cmd: CmdIncr}},
		{"decr/basic", "decr k 7\r\n", nil, arith(CmdDecr, "k", 7)},
		{"decr/bad delta", "decr k 2x\r\n", ErrInvalidDelta, result{cmd: CmdDecr}},
		{"decr/missing", "decr\r\n", ErrUnknownCommand, result{cmd: CmdDecr}},

		// touch.
		{"touch/basic", "touch k 10\r\n", nil, touch("k", 10)},
		{"touch/noreply", "touch k 10 noreply\r\n", nil, quiet(touch("k", 10))},
		{"touch/fourth token ignored", "touch k 10 junk\r\n", nil, touch("k", 10)},
		{"touch/exptime 2^32", "touch k 4294967296\r\n", nil, touch("k", 0)},
		{"touch/exptime -1", "touch k -1\r\n", nil, touch("k", -1)},
		{"touch/bad exptime", "touch k x\r\n", ErrInvalidExptime, result{cmd: CmdTouch}},
		{"touch/exptime noreply", "touch k noreply\r\n", ErrInvalidExptime, quiet(result{cmd: CmdTouch})},
		{"touch/missing exptime", "touch k\r\n", ErrUnknownCommand, result{cmd: CmdTouch}},
		{"touch/extra token", "touch k 1 noreply x\r\n", ErrUnknownCommand, result{cmd: CmdTouch}},
		{"touch/key 251", "touch " + key251 + " 0\r\n", ErrBadFormat, result{cmd: CmdTouch}},
		{"touch/key 251 bad exptime", "touch " + key251 + " x\r\n", ErrBadFormat, result{cmd: CmdTouch}},

		// flush_all.
		{"flush_all/basic", "flush_all\r\n", nil, flush(0)},
		{"flush_all/delay", "flush_all 10\r\n", nil, flush(10)},
		{"flush_all/noreply", "flush_all noreply\r\n", nil, quiet(flush(0))},
		{"flush_all/delay noreply", "flush_all 10 noreply\r\n", nil, quiet(flush(10))},
		{"flush_all/delay junk", "flush_all 5 junk\r\n", nil, flush(5)},
		{"flush_all/delay -1", "flush_all -1\r\n", nil, flush(-1)},
		{"flush_all/delay 2^32", "flush_all 4294967296\r\n", nil, flush(0)},
		{"flush_all/bad delay", "flush_all x\r\n", ErrInvalidExptime, result{cmd: CmdFlushAll}},
		{"flush_all/bad delay noreply", "flush_all x noreply\r\n", ErrInvalidExptime, quiet(result{cmd: CmdFlushAll})},
		{"flush_all/noreply then junk", "flush_all noreply x\r\n", ErrInvalidExptime, result{cmd: CmdFlushAll}},
		{"flush_all/extra token", "flush_all 1 2 3\r\n", ErrUnknownCommand, result{cmd: CmdFlushAll}},

		// verbosity.
		{"verbosity/basic", "verbosity 1\r\n", nil, level(CmdVerbosity, 1)},
		{"verbosity/noreply", "verbosity 1 noreply\r\n", nil, quiet(level(CmdVerbosity, 1))},
		{"verbosity/second token ignored", "verbosity 1 2\r\n", nil, level(CmdVerbosity, 1)},
		{"verbosity/2^32", "verbosity 4294967296\r\n", nil, level(CmdVerbosity, 0)},
		{"verbosity/bad level", "verbosity x\r\n", ErrBadFormat, result{cmd: CmdVerbosity}},
		{"verbosity/level -1", "verbosity -1\r\n", ErrBadFormat, result{cmd: CmdVerbosity}},
		{"verbosity/level noreply", "verbosity noreply\r\n", ErrBadFormat, quiet(result{cmd: CmdVerbosity})},
		{"verbosity/missing", "verbosity\r\n", ErrUnknownCommand, result{cmd: CmdVerbosity}},
		{"verbosity/extra token", "verbosity 1 2 3\r\n", ErrUnknownCommand, result{cmd: CmdVerbosity}},

		// cache_memlimit.
		{"cache_memlimit/basic", "cache_memlimit 100\r\n", nil, level(CmdCacheMemlimit, 100)},
		{"cache_memlimit/noreply", "cache_memlimit 100 noreply\r\n", nil, quiet(level(CmdCacheMemlimit, 100))},
		{"cache_memlimit/second token ignored", "cache_memlimit 100 x\r\n", nil, level(CmdCacheMemlimit, 100)},
		{"cache_memlimit/too small", "cache_memlimit 5\r\n", nil, level(CmdCacheMemlimit, 5)},
		{"cache_memlimit/2^32", "cache_memlimit 4294967296\r\n", nil, level(CmdCacheMemlimit, 0)},
		{"cache_memlimit/bad", "cache_memlimit x\r\n", ErrInvalidMemlimit, result{cmd: CmdCacheMemlimit}},
		{"cache_memlimit/bad noreply", "cache_memlimit x noreply\r\n", ErrInvalidMemlimit,
			quiet(result{cmd: CmdCacheMemlimit})},
		{"cache_memlimit/missing", "cache_memlimit\r\n", ErrUnknownCommand, result{cmd: CmdCacheMemlimit}},
		{"cache_memlimit/extra token", "cache_memlimit 1 2 3\r\n", ErrUnknownCommand, result{cmd: CmdCacheMemlimit}},

		// stats, shutdown, version, quit.
		{"stats/basic", "stats\r\n", nil, args(CmdStats)},
		{"stats/group", "stats items\r\n", nil, args(CmdStats, "items")},
		{"stats/two args", "stats detail dump\r\n", nil, args(CmdStats, "detail", "dump")},
		{"stats/noreply is an argument", "stats reset noreply\r\n", nil, args(CmdStats, "reset", "noreply")},
		{"stats/23 tokens kept", "stats" + strings.Repeat(" a", 30) + "\r\n", nil,
			args(CmdStats, strings.Fields(strings.Repeat(" a", 22))...)},
		{"shutdown/basic", "shutdown\r\n", nil, args(CmdShutdown)},
		{"shutdown/graceful", "shutdown graceful\r\n", nil, args(CmdShutdown, "graceful")},
		{"shutdown/bad mode", "shutdown x y\r\n", nil, args(CmdShutdown, "x", "y")},
		{"version/basic", "version\r\n", nil, result{cmd: CmdVersion}},
		{"version/extra tokens", "version x y\r\n", nil, result{cmd: CmdVersion}},
		{"quit/basic", "quit\r\n", nil, result{cmd: CmdQuit}},
		{"quit/extra token", "quit x\r\n", nil, result{cmd: CmdQuit}},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			// Another line follows, which Parse must leave alone.
			buf := []byte(tc.in + "get next\r\n")
			if !strings.Contains(tc.in, "\n") {
				buf = []byte(tc.in)
			}
			var req Request
			n, err := Parse(buf, &req)
			if err != tc.err {
				t.Fatalf("Parse(%.60q) error = %v, want %v", tc.in, err, tc.err)
			}
			if want := tc.wantN(); n != want {
				t.Fatalf("Parse(%.60q) n = %d, want %d", tc.in, n, want)
			}
			if n == 0 && err == nil {
				return
			}
			got := resultOf(&req).specified(err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%.60q):\n got %+.200v\nwant %+.200v", tc.in, got, tc.want)
			}
		})
	}
}

// TestParseReuse checks that a Request reused after any other line parses
// every case exactly as a fresh one does.
func TestParseReuse(t *testing.T) {
	cases := parseCases()
	var reused Request
	for i, tc := range cases {
		prev := cases[(i*7+3)%len(cases)]
		Parse([]byte(prev.in), &reused)
		var fresh Request
		n1, err1 := Parse([]byte(tc.in), &fresh)
		n2, err2 := Parse([]byte(tc.in), &reused)
		if n1 != n2 || err1 != err2 || !reflect.DeepEqual(resultOf(&fresh), resultOf(&reused)) {
			t.Errorf("%s after %s: reused Request parsed differently", tc.name, prev.name)
		}
	}
}

// TestParseSplit feeds every case in two parts at every cut and checks that
// the first part asks for more input or gives the whole line's result.
func TestParseSplit(t *testing.T) {
	for _, tc := range parseCases() {
		if len(tc.in) > 4*MaxLineLen {
			continue // the fuzzer covers long lines at random cuts
		}
		var whole, part Request
		n, err := Parse([]byte(tc.in), &whole)
		for cut := 0; cut < len(tc.in); cut++ {
			pn, perr := Parse([]byte(tc.in[:cut]), &part)
			if pn == 0 && perr == nil {
				continue
			}
			if pn != n || perr != err || !reflect.DeepEqual(resultOf(&part), resultOf(&whole)) {
				t.Errorf("%s: first %d bytes give %d, %v; whole line gives %d, %v", tc.name, cut, pn, perr, n, err)
				break
			}
		}
	}
}

func TestParsePipeline(t *testing.T) {
	buf := []byte("set k 0 0 5\r\nhello\r\nget k\nincr n 1 noreply\r\nbogus\r\ndelete k")
	var req Request
	var got []string
	for len(buf) > 0 {
		n, err := Parse(buf, &req)
		if n == 0 {
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			break
		}
		got = append(got, fmt.Sprintf("%d %v %v", req.Command, req.NoReply, err))
		buf = buf[n:]
		if req.Command.isStorage() && err == nil {
			buf = buf[req.ValueLen+2:]
		}
	}
	want := []string{
		fmt.Sprintf("%d false <nil>", CmdSet),
		fmt.Sprintf("%d false <nil>", CmdGet),
		fmt.Sprintf("%d true <nil>", CmdIncr),
		fmt.Sprintf("%d false %v", CmdNone, ErrUnknownCommand),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pipeline parsed as %q, want %q", got, want)
	}
	if string(buf) != "delete k" {
		t.Errorf("left %q unparsed, want %q", buf, "delete k")
	}
}

func TestErrorReply(t *testing.T) {
	tests := []struct {
		err     error
		noreply bool
		line    string
		close   bool
	}{
		{ErrUnknownCommand, false, "ERROR", false},
		{ErrBadFormat, false, "CLIENT_ERROR bad command line format", false},
		{ErrDeleteUsage, false, "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", false},
		{ErrInvalidDelta, false, "CLIENT_ERROR invalid numeric delta argument", false},
		{ErrInvalidExptime, false, "CLIENT_ERROR invalid exptime argument", false},
		{ErrInvalidMemlimit, false, "ERROR", false},
		{ErrLineTooLong, false, "", true},
		{ErrLineTooLong, true, "", true},
		{ErrBadFormat, true, "", false},
		{ErrUnknownCommand, true, "", false},
		{fmt.Errorf("cannot parse %q: %w", "x", ErrInvalidDelta), false, "CLIENT_ERROR invalid numeric delta argument", false},
		{errors.New("other"), false, "CLIENT_ERROR bad command line format", false},
	}
	for _, tt := range tests {
		line, closeConn := ErrorReply(tt.err, tt.noreply)
		if line != tt.line || closeConn != tt.close {
			t.Errorf("ErrorReply(%v, %v) = %q, %v; want %q, %v", tt.err, tt.noreply, line, closeConn, tt.line, tt.close)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	lines := []string{
		"get k\r\n",
		"set k 0 0 5\r\n",
		"get k1 k2 k3 k4 k5 k6 k7 k8 k9 k10\r\n",
		"incr k 5 noreply\r\n",
		"stats items\r\n",
		"get k " + key251 + "\r\n",
	}
	for _, line := range lines {
		buf := []byte(line)
		var req Request
		allocs := testing.AllocsPerRun(100, func() {
			Parse(buf, &req)
		})
		if allocs != 0 {
			t.Errorf("Parse(%.40q) allocates %v times per call with a reused Request", line, allocs)
		}
	}
}

func benchmarkParse(b *testing.B, line string) {
	buf := []byte(line)
	var req Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := Parse(buf, &req); n != len(buf) || err != nil {
			b.Fatalf("Parse = %d, %v", n, err)
		}
	}
}

func BenchmarkParseGet(b *testing.B) { benchmarkParse(b, "get user:1234567\r\n") }

func BenchmarkParseMultiGet10(b *testing.B) {
	benchmarkParse(b, "get "+strings.Join(numberedKeys(10), " ")+"\r\n")
}

func BenchmarkParseMultiGet100(b *testing.B) {
	benchmarkParse(b, "get "+strings.Join(numberedKeys(100), " ")+"\r\n")
}

func BenchmarkParseSet(b *testing.B) { benchmarkParse(b, "set user:1234567 0 3600 512\r\n") }

func BenchmarkParseCas(b *testing.B) {
	benchmarkParse(b, "cas user:1234567 0 3600 512 98765432 noreply\r\n")
}

// TestParseLongGetAllocatesNothing checks that a get line of half a
// million keys costs no memory beyond its bytes: its keys are walked, not
// split into an array.
func TestParseLongGetAllocatesNothing(t *testing.T) {
	const keys = (MaxGetLineLen - 8) / 2
	huge := []byte("gets " + strings.Repeat("a ", keys) + "\r\n")
	allocs := testing.AllocsPerRun(3, func() {
		var req Request
		if _, err := Parse(huge, &req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for k, i := NextKey(req.GetKeys, 0); len(k) > 0; k, i = NextKey(req.GetKeys, i) {
			n++
		}
		if n != keys {
			t.Fatalf("%d keys, want %d", n, keys)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse of a get line of %d keys allocates %v times", keys, allocs)
	}
}

package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// metaResult is what a test compares of a parsed MetaRequest.
type metaResult struct {
	cmd      MetaCommand
	key      string
	base64   bool
	flags    string // the flag tokens joined by spaces
	vlen     int
	skip     bool
	noreply  bool
	value    bool
	noUpdate bool
	locked   bool
	inval    bool
	ttl      int64
	hasTTL   bool
	vivify   bool
	vivTTL   int64
	recache  bool
	recTTL   int64
	cflags   uint32
	hasCAS   bool
	cas      uint64
	mode     byte
	delta    uint64
	initial  uint64
}

func metaResultOf(r *MetaRequest) metaResult {
	var fl []string
	for _, f := range r.Flags {
		fl = append(fl, string(f))
	}
	return metaResult{
		cmd: r.Command, key: string(r.Key), base64: r.Base64, flags: strings.Join(fl, " "),
		vlen: r.ValueLen, skip: r.SkipData, noreply: r.NoReply, value: r.Value,
		noUpdate: r.NoUpdate, locked: r.Locked, inval: r.Invalidate,
		ttl: r.TTL, hasTTL: r.HasTTL, vivify: r.Vivify, vivTTL: r.VivifyTTL,
		recache: r.HasRecache, recTTL: r.RecacheTTL, cflags: r.ClientFlags,
		hasCAS: r.HasCAS, cas: r.CAS, mode: r.Mode, delta: r.Delta, initial: r.Initial,
	}
}

type metaCase struct {
	name string
	in   string
	n    int // 0: the whole input
	err  error
	want metaResult // checked when err is nil; cmd always
}

func metaCases() []metaCase {
	k250 := strings.Repeat("k", 250)
	k251 := strings.Repeat("k", 251)
	many := strings.Repeat(" v", 17)
	flags17 := "c f h k l s t v q u O P L T1 N1 R1 I" // with "mg k", 19 tokens
	return []metaCase{
		{name: "mg/plain", in: "mg k\r\n", want: metaResult{cmd: MetaGet, key: "k", delta: 1}},
		{name: "mg/value", in: "mg k v\r\n", want: metaResult{cmd: MetaGet, key: "k", flags: "v", value: true, delta: 1}},
		{name: "mg/bare newline", in: "mg k v\n", want: metaResult{cmd: MetaGet, key: "k", flags: "v", value: true, delta: 1}},
		{name: "mg/spaces", in: "  mg   k   v  \r\n", want: metaResult{cmd: MetaGet, key: "k", flags: "v", value: true, delta: 1}},
		{name: "mg/return flags", in: "mg k c f h k l s t O123 q u\r\n", want: metaResult{
			cmd: MetaGet, key: "k", flags: "c f h k l s t O123 q u", noreply: true, noUpdate: true, locked: true, delta: 1}},
		{name: "mg/ttls", in: "mg k T30 N-1 R2000000001\r\n", want: metaResult{
			cmd: MetaGet, key: "k", flags: "T30 N-1 R2000000001", locked: true, ttl: 30, hasTTL: true,
			vivify: true, vivTTL: -1, recache: true, recTTL: 2000000001, delta: 1}},
		{name: "mg/ttl 2^31 wraps", in: "mg k T2147483648\r\n", want: metaResult{
			cmd: MetaGet, key: "k", flags: "T2147483648", locked: true, ttl: -2147483648, hasTTL: true, delta: 1}},
		{name: "mg/base64", in: "mg Zm9v b k\r\n", want: metaResult{cmd: MetaGet, key: "foo", base64: true, flags: "b k", delta: 1}},
		{name: "mg/base64 one pad", in: "mg Zm9vYmE= b\r\n", want: metaResult{cmd: MetaGet, key: "fooba", base64: true, flags: "b", delta: 1}},
		{name: "mg/base64 skips junk", in: "mg Zm!9v b\r\n", want: metaResult{cmd: MetaGet, key: "foo", base64: true, flags: "b", delta: 1}},
		{name: "mg/base64 bad length", in: "mg Zm9vYg b\r\n", err: ErrMetaKeyDecode},
		{name: "mg/base64 three pads", in: "mg Z=== b\r\n", err: ErrMetaKeyDecode},
		{name: "mg/base64 then bad token", in: "mg !! b Tx\r\n", err: ErrMetaBadToken},
		{name: "mg/no key", in: "mg\r\n", err: ErrUnknownCommand},
		{name: "mg/key 250", in: "mg " + k250 + "\r\n", want: metaResult{cmd: MetaGet, key: k250, delta: 1}},
		{name: "mg/key 251", in: "mg " + k251 + " v\r\n", err: ErrBadFormat},
		{name: "mg/17 flags", in: "mg k " + flags17 + "\r\n", want: metaResult{
			cmd: MetaGet, key: "k", flags: flags17, value: true, noreply: true, noUpdate: true, locked: true,
			inval: true, ttl: 1, hasTTL: true, vivify: true, vivTTL: 1, recache: true, recTTL: 1, delta: 1}},
		{name: "mg/18 flags", in: "mg k " + flags17 + " J1\r\n", err: ErrMetaGetTooManyFlags},
		{name: "mg/too many flags", in: "mg k" + many + " v\r\n", err: ErrMetaGetTooManyFlags},
		{name: "mg/duplicate", in: "mg k v v\r\n", err: ErrMetaDuplicateFlag},
		{name: "mg/high byte", in: "mg k \xe9\r\n", err: ErrMetaDuplicateFlag},
		{name: "mg/invalid", in: "mg k E5\r\n", err: ErrMetaInvalidFlag},
		{name: "mg/invalid after bad token", in: "mg k Tx x\r\n", err: ErrMetaInvalidFlag},
		{name: "mg/bad ttl", in: "mg k T\r\n", err: ErrMetaBadToken},
		{name: "mg/bad client flags keeps format error", in: "mg k Fx\r\n", err: ErrBadFormat},
		{name: "mg/long opaque is the caller's", in: "mg k O" + strings.Repeat("o", 32) + "\r\n", want: metaResult{
			cmd: MetaGet, key: "k", flags: "O" + strings.Repeat("o", 32), delta: 1}},
		{name: "mg/nul ends the line", in: "mg k v\x00 junk\r\n", want: metaResult{cmd: MetaGet, key: "k", flags: "v", value: true, delta: 1}},
		{name: "mg/tab is part of a token", in: "mg k\tv\r\n", want: metaResult{cmd: MetaGet, key: "k\tv", delta: 1}},

		{name: "ms/plain", in: "ms k 5\r\nhello\r\n", n: 8, want: metaResult{cmd: MetaSet, key: "k", vlen: 5, skip: true, delta: 1}},
		{name: "ms/flags", in: "ms k 1 T-1 F4294967295 C18446744073709551615 MA I q c k O1\r\n", want: metaResult{
			cmd: MetaSet, key: "k", vlen: 1, skip: true, flags: "T-1 F4294967295 C18446744073709551615 MA I q c k O1",
			locked: true, ttl: -1, hasTTL: true, cflags: 4294967295, hasCAS: true, cas: 1<<64 - 1, mode: 'A',
			inval: true, noreply: true, delta: 1}},
		{name: "ms/no length", in: "ms k\r\n", err: ErrBadFormat},
		{name: "ms/bad length", in: "ms k x\r\n", err: ErrBadFormat},
		{name: "ms/negative length", in: "ms k -1\r\n", err: ErrBadFormat},
		{name: "ms/length 2^31-2", in: "ms k 2147483646\r\n", err: ErrBadFormat},
		{name: "ms/too many flags", in: "ms k 1" + strings.Repeat(" v", 17) + "\r\n", err: ErrMetaTooManyFlags},
		{name: "ms/flags 2^32", in: "ms k 1 F4294967296\r\n", want: metaResult{
			cmd: MetaSet, key: "k", vlen: 1, skip: true, flags: "F4294967296", delta: 1}},
		{name: "ms/flags -1", in: "ms k 1 F-1\r\n", err: ErrBadFormat},
		{name: "ms/cas 2^64", in: "ms k 1 C18446744073709551616\r\n", err: ErrMetaBadToken},
		{name: "ms/mode", in: "ms k 1 MX\r\n", err: ErrMetaSetMode},
		{name: "ms/mode length", in: "ms k 1 MEE\r\n", err: ErrMetaModeLength},
		{name: "ms/mode before opaque", in: "ms k 1 O" + strings.Repeat("o", 32) + " MX\r\n", err: ErrMetaSetMode},
		{name: "ms/long opaque", in: "ms k 1 O" + strings.Repeat("o", 32) + "\r\n", err: ErrMetaOpaqueTooLong},
		{name: "ms/E is invalid in 1.6.18", in: "ms k 1 E9\r\n", err: ErrMetaInvalidFlag},

		{name: "md/flags", in: "md k q I T30 C5 k O2\r\n", want: metaResult{
			cmd: MetaDelete, key: "k", flags: "q I T30 C5 k O2", noreply: true, inval: true, locked: true,
			ttl: 30, hasTTL: true, hasCAS: true, cas: 5, delta: 1}},
		{name: "md/x is invalid in 1.6.18", in: "md k x\r\n", err: ErrMetaInvalidOrDuplicate},
		{name: "md/duplicate", in: "md k q q\r\n", err: ErrMetaInvalidOrDuplicate},
		{name: "md/bad cas", in: "md k C-1\r\n", err: ErrMetaInvalidOrDuplicate},
		{name: "md/long opaque", in: "md k O" + strings.Repeat("o", 32) + "\r\n", err: ErrMetaOpaqueTooLong},
		{name: "md/no key", in: "md\r\n", err: ErrUnknownCommand},

		{name: "ma/plain", in: "ma k\r\n", want: metaResult{cmd: MetaArith, key: "k", delta: 1}},
		{name: "ma/flags", in: "ma k N0 J10 D18446744073709551615 MD v t c\r\n", want: metaResult{
			cmd: MetaArith, key: "k", flags: "N0 J10 D18446744073709551615 MD v t c", locked: true, vivify: true,
			initial: 10, delta: 1<<64 - 1, mode: 'D', value: true}},
		{name: "ma/delta 2^64", in: "ma k D18446744073709551616\r\n", err: ErrMetaInvalidOrDuplicate},
		{name: "ma/initial -1", in: "ma k J-1\r\n", err: ErrMetaInvalidOrDuplicate},
		{name: "ma/mode", in: "ma k Mi\r\n", err: ErrMetaArithMode},
		{name: "ma/long opaque is the caller's", in: "ma k O" + strings.Repeat("o", 33) + "\r\n", want: metaResult{
			cmd: MetaArith, key: "k", flags: "O" + strings.Repeat("o", 33), delta: 1}},

		{name: "mn", in: "mn\r\n", want: metaResult{cmd: MetaNoop, delta: 1}},
		{name: "mn/arguments", in: "mn a b c\r\n", want: metaResult{cmd: MetaNoop, delta: 1}},
		{name: "me", in: "me k\r\n", want: metaResult{cmd: MetaDebug, key: "k", delta: 1}},
		{name: "me/base64", in: "me Zm9v b\r\n", want: metaResult{cmd: MetaDebug, key: "foo", base64: true, delta: 1}},
		{name: "me/bad base64", in: "me Zm9 b\r\n", err: ErrBadFormat},
		{name: "me/other flags ignored", in: "me k x v\r\n", want: metaResult{cmd: MetaDebug, key: "k", delta: 1}},
		{name: "me/no key", in: "me\r\n", err: ErrBadFormat},
	}
}

func TestParseMeta(t *testing.T) {
	for _, tc := range metaCases() {
		t.Run(tc.name, func(t *testing.T) {
			var req MetaRequest
			n, err := ParseMeta([]byte(tc.in), &req)
			wantN := tc.n
			if wantN == 0 {
				wantN = len(tc.in)
			}
			if n != wantN || !errors.Is(err, tc.err) {
				t.Fatalf("ParseMeta(%q) = %d, %v; want %d, %v", tc.in, n, err, wantN, tc.err)
			}
			if req.Command != tc.want.cmd && tc.err == nil {
				t.Fatalf("command %d, want %d", req.Command, tc.want.cmd)
			}
			if got := metaResultOf(&req); tc.err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseMeta(%q):\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseMetaNotMeta(t *testing.T) {
	for _, in := range []string{"get k\r\n", "mx k\r\n", "mgg k\r\n", "m\r\n", "mg\t k\r\n", "\r\n"} {
		var req MetaRequest
		if n, err := ParseMeta([]byte(in), &req); n != 0 || err != ErrNotMeta {
			t.Errorf("ParseMeta(%q) = %d, %v; want 0, ErrNotMeta", in, n, err)
		}
	}
	for _, in := range []string{"mg", "mg k v", "ms k 1\r"} {
		var req MetaRequest
		if n, err := ParseMeta([]byte(in), &req); n != 0 || err != nil {
			t.Errorf("ParseMeta(%q) = %d, %v; want 0, nil (incomplete)", in, n, err)
		}
	}
	long := "mg " + strings.Repeat("k", MaxLineLen)
	var req MetaRequest
	if n, err := ParseMeta([]byte(long), &req); n != 0 || err != ErrLineTooLong {
		t.Errorf("ParseMeta(long line) = %d, %v; want 0, ErrLineTooLong", n, err)
	}
	if !IsMetaStart([]byte("  mg k")) || IsMetaStart([]byte("get k")) || IsMetaStart(nil) {
		t.Error("IsMetaStart is wrong")
	}
}

func TestMetaErrorReplies(t *testing.T) {
	for err, want := range map[error]string{
		ErrMetaGetTooManyFlags:    "CLIENT_ERROR options flags are too long",
		ErrMetaTooManyFlags:       "CLIENT_ERROR options flags too long",
		ErrMetaInvalidOrDuplicate: "CLIENT_ERROR invalid or duplicate flag",
		ErrMetaKeyDecode:          "CLIENT_ERROR error decoding key",
		ErrBadFormat:              "CLIENT_ERROR bad command line format",
	} {
		if got, closeConn := ErrorReply(err, false); got != want || closeConn {
			t.Errorf("ErrorReply(%v) = %q, %v; want %q", err, got, closeConn, want)
		}
	}
}

func TestAppendMetaKey(t *testing.T) {
	if got := string(AppendMetaKey(nil, []byte("foo"), false)); got != " kfoo" {
		t.Errorf("plain key: %q", got)
	}
	if got := string(AppendMetaKey(nil, []byte("foob"), true)); got != " kZm9vYg== b" {
		t.Errorf("binary key: %q", got)
	}
}

func TestParseMetaAllocs(t *testing.T) {
	var req MetaRequest
	buf := []byte("mg Zm9v b v f t c k O123 T30\r\n")
	if n := testing.AllocsPerRun(1000, func() { ParseMeta(buf, &req) }); n != 0 {
		t.Errorf("ParseMeta allocates %.1f times, want 0", n)
	}
}

// metaFuzzSeeds are real meta requests, pipelines and malformed variants.
func metaFuzzSeeds() []string {
	seeds := []string{
		"mg k v\r\nmg k v f t\r\n",
		"ms k 5 T0 F1 c\r\nhello\r\nmn\r\n",
		"md k q I T30\r\nma k N0 J5 v\r\n",
		"mg Zm9v b k v\r\n",
		"me k\r\nmn\r\n",
		"mg k O" + strings.Repeat("o", 40) + "\r\n",
		"mg k \xff\r\n",
	}
	for _, tc := range metaCases() {
		seeds = append(seeds, tc.in)
	}
	return seeds
}

// FuzzParseMeta checks that ParseMeta never panics, that a reused
// MetaRequest gives a fresh one's result, that its results hold the
// documented invariants, and that a buffer cut anywhere gives the whole
// buffer's result or asks for more input.
func FuzzParseMeta(f *testing.F) {
	for _, s := range metaFuzzSeeds() {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		var whole MetaRequest
		n, err := ParseMeta(data, &whole)
		if n < 0 || n > len(data) {
			t.Fatalf("ParseMeta(%q) = %d, out of range", data, n)
		}
		if n == 0 && err != nil && err != ErrLineTooLong && err != ErrNotMeta {
			t.Fatalf("ParseMeta(%q) = 0, %v", data, err)
		}
		if n > 0 {
			if data[n-1] != '\n' {
				t.Fatalf("ParseMeta(%q) consumed %d bytes, not a line", data, n)
			}
			if err == nil && whole.Command != MetaNoop && (len(whole.Key) == 0 || len(whole.Key) > MaxKeyLen) {
				t.Fatalf("ParseMeta(%q): key %q", data, whole.Key)
			}
			if len(whole.Flags) > maxMetaTokens-2 {
				t.Fatalf("ParseMeta(%q): %d flags", data, len(whole.Flags))
			}
			if whole.ValueLen < 0 || whole.ValueLen > maxValueLen {
				t.Fatalf("ParseMeta(%q): value length %d", data, whole.ValueLen)
			}
		}

		var reused MetaRequest
		ParseMeta([]byte("ms Zm9v 5 b T1 F2 C3 MA I q v N5 R6 J7 D8 u\r\n"), &reused)
		rn, rerr := ParseMeta(data, &reused)
		if rn != n || rerr != err || !reflect.DeepEqual(metaResultOf(&reused), metaResultOf(&whole)) {
			t.Fatalf("ParseMeta(%q) with a reused request = %d, %v, %+v; fresh = %d, %v, %+v",
				data, rn, rerr, metaResultOf(&reused), n, err, metaResultOf(&whole))
		}

		c := int(cut) % (len(data) + 1)
		var part MetaRequest
		pn, perr := ParseMeta(data[:c], &part)
		switch {
		case pn == 0 && perr == nil:
			// more input needed
		case pn == 0 && perr == ErrNotMeta && err == ErrNotMeta:
		case pn == 0 && perr == ErrLineTooLong && err == ErrLineTooLong:
		case pn != n || perr != err || !reflect.DeepEqual(metaResultOf(&part), metaResultOf(&whole)):
			t.Fatalf("ParseMeta(%q) = %d, %v, %+v; its first %d bytes give %d, %v, %+v",
				data, n, err, metaResultOf(&whole), c, pn, perr, metaResultOf(&part))
		}
	})
}

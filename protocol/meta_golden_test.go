package protocol

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

const metaGoldenFile = "testdata/meta_replies.golden"

// metaGoldenCases returns the meta table cases as transcripts, each ms
// followed by its data block when memcached reads one.
func metaGoldenCases() []transcript {
	var ts []transcript
	for _, tc := range metaCases() {
		send := tc.in
		if strings.HasPrefix(tc.in, "ms ") && !strings.Contains(tc.in, "\nhello") {
			var req MetaRequest
			if _, err := ParseMeta([]byte(tc.in), &req); err == nil || req.SkipData {
				send += strings.Repeat("v", req.ValueLen) + "\r\n"
			}
		}
		ts = append(ts, transcript{name: tc.name, send: send})
	}
	return ts
}

// TestGoldenMetaReplies checks ParseMeta against the replies memcached gave
// to the same bytes on a fresh connection: an error must produce exactly
// memcached's reply through ErrorReply, and an accepted line must be one
// memcached answered without an error (except an overlong opaque token,
// which mg and ma find only while answering, and an ma on a value that is
// not a number).
func TestGoldenMetaReplies(t *testing.T) {
	if *update {
		addr, version := startMemcached(t)
		var out bytes.Buffer
		fmt.Fprintf(&out, "# Replies of memcached %s to the lines of TestParseMeta, one fresh connection each.\n", version)
		fmt.Fprintf(&out, "# Recorded by go test -run TestGoldenMetaReplies -update; Go-quoted strings.\n")
		for _, c := range metaGoldenCases() {
			c.reply, c.closed = exchange(t, addr, c.send)
			writeTranscript(&out, c)
		}
		if err := os.WriteFile(metaGoldenFile, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(metaGoldenFile)
	if err != nil {
		t.Fatalf("cannot open golden transcripts (record them with -update): %v", err)
	}
	defer f.Close()
	golden, err := readTranscripts(f)
	if err != nil {
		t.Fatalf("cannot read %s: %v", metaGoldenFile, err)
	}
	byName := make(map[string]transcript)
	for _, g := range golden {
		byName[g.name] = g
	}
	for _, c := range metaGoldenCases() {
		if g, ok := byName[c.name]; !ok || g.send != c.send {
			t.Errorf("%s: no transcript for %.60q; run go test -run TestGoldenMetaReplies -update", c.name, c.send)
		}
	}
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			var req MetaRequest
			n, err := ParseMeta([]byte(g.send), &req)
			if n == 0 {
				t.Fatalf("ParseMeta(%.60q) = 0, %v", g.send, err)
			}
			if err != nil {
				line, _ := ErrorReply(err, false)
				if want := line + "\r\n"; !strings.HasPrefix(g.reply, want) || g.closed {
					t.Errorf("ParseMeta(%.60q) = %v: corvid replies %q, memcached replied %q", g.send, err, want, g.reply)
				}
				return
			}
			// The cases share one memcached, so an ma may find the
			// value an earlier ms stored.
			bad := strings.HasPrefix(g.reply, "ERROR") || strings.HasPrefix(g.reply, "CLIENT_ERROR") &&
				!strings.HasPrefix(g.reply, "CLIENT_ERROR cannot increment or decrement non-numeric value")
			if bad && !(req.OpaqueTooLong() && strings.HasPrefix(g.reply, "CLIENT_ERROR opaque token too long")) {
				t.Errorf("ParseMeta(%.60q) accepted a line memcached answered %q", g.send, g.reply)
			}
		})
	}
}

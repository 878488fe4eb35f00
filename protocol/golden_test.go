package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "record testdata/text_replies.golden from the memcached in $PATH")

const goldenFile = "testdata/text_replies.golden"

// A transcript entry is one request sent on a fresh connection to memcached
// and everything memcached answered before the next command, or before it
// closed the connection.
type transcript struct {
	name   string
	send   string // a command line, and the data block of a valid storage command
	reply  string
	closed bool
}

// volatileReplies names the cases whose replies change from run to run
// (statistics); they carry nothing about parsing that TestParse does not
// check.
var volatileReplies = map[string]bool{"stats/basic": true, "stats/group": true}

// goldenCases returns the table cases that make a transcript: complete lines
// of reasonable size, with a data block after the storage commands that
// memcached accepts so that it answers them.
func goldenCases() []transcript {
	var ts []transcript
	for _, tc := range parseCases() {
		if !strings.Contains(tc.in, "\n") || len(tc.in) > 16<<10 || volatileReplies[tc.name] {
			continue
		}
		send := tc.in
		if tc.err == nil && tc.want.cmd.isStorage() {
			if tc.want.vlen > 1024 {
				continue // memcached would refuse the size before parsing mattered
			}
			send += strings.Repeat("v", tc.want.vlen) + "\r\n"
			if tc.want.cmd == CmdSet && !tc.want.noreply {
				// Read the item back to see the flags and length stored.
				send += "get " + tc.want.keys[0] + "\r\n"
			}
		}
		ts = append(ts, transcript{name: tc.name, send: send})
	}
	return ts
}

// TestGoldenReplies checks Parse against the replies memcached gave to the
// same bytes: an error Parse returns must produce, through ErrorReply,
// exactly the bytes memcached sent (or its closing of the connection), and a
// line Parse accepts must be one memcached accepted. An accepted set is read
// back, and memcached must have stored the flags and value length Parse
// read.
func TestGoldenReplies(t *testing.T) {
	if *update {
		recordGolden(t)
	}
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatalf("cannot open golden transcripts (record them with -update): %v", err)
	}
	defer f.Close()
	golden, err := readTranscripts(f)
	if err != nil {
		t.Fatalf("cannot read %s: %v", goldenFile, err)
	}
	byName := make(map[string]transcript)
	for _, g := range golden {
		byName[g.name] = g
	}
	for _, c := range goldenCases() {
		g, ok := byName[c.name]
		if !ok || g.send != c.send {
			t.Errorf("%s: no transcript for %.60q; run go test -run TestGoldenReplies -update", c.name, c.send)
		}
	}

	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			var req Request
			n, err := Parse([]byte(g.send), &req)
			if n == 0 && err == nil {
				t.Fatalf("Parse(%.60q) wants more input", g.send)
			}
			if err != nil {
				line, closeConn := ErrorReply(err, req.NoReply)
				want := ""
				if line != "" {
					want = line + "\r\n"
				}
				if closeConn != g.closed || want != g.reply {
					t.Errorf("Parse(%.60q) = %v: corvid replies %q (close %v), memcached replied %q (close %v)",
						g.send, err, want, closeConn, g.reply, g.closed)
				}
				return
			}
			switch {
			case req.Command == CmdQuit:
				if !g.closed || g.reply != "" {
					t.Errorf("quit: memcached replied %q (close %v)", g.reply, g.closed)
				}
			case g.closed:
				t.Errorf("Parse(%.60q) accepted a line memcached closed the connection for", g.send)
			case req.NoReply && g.reply != "":
				t.Errorf("Parse(%.60q) set NoReply; memcached replied %q", g.send, g.reply)
			case !req.NoReply && g.reply == "":
				t.Errorf("Parse(%.60q) did not set NoReply; memcached sent no reply", g.send)
			case req.Command == CmdSet && !req.NoReply:
				// The set is read back; a negative exptime expires the item.
				value := g.send[n : n+req.ValueLen]
				want := "STORED\r\n"
				if req.Exptime >= 0 {
					want += string(AppendValue(nil, req.Key(), req.Flags, []byte(value), 0, false))
				}
				want += "END\r\n"
				if g.reply != want {
					t.Errorf("Parse(%.60q) stores as %q; memcached replied %q", g.send, want, g.reply)
				}
			case req.Command == CmdStats || req.Command == CmdShutdown:
				// The server validates their arguments.
			case strings.HasPrefix(g.reply, "ERROR") || strings.HasPrefix(g.reply, "CLIENT_ERROR"):
				t.Errorf("Parse(%.60q) accepted a line memcached answered %q", g.send, g.reply)
			}
		})
	}
}

// recordGolden sends every golden case to a memcached it starts and writes
// the replies to goldenFile.
func recordGolden(t *testing.T) {
	t.Helper()
	addr, version := startMemcached(t)
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Replies of memcached %s to the lines of TestParse, one fresh connection each.\n", version)
	fmt.Fprintf(&out, "# Recorded by go test -run TestGoldenReplies -update; Go-quoted strings.\n")
	for _, c := range goldenCases() {
		c.reply, c.closed = exchange(t, addr, c.send)
		writeTranscript(&out, c)
	}
	if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startMemcached runs memcached on a free local port until the test ends,
// and returns its address and version. It skips the test when memcached is
// not installed.
func startMemcached(t *testing.T) (addr, version string) {
	t.Helper()
	path, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached is not installed; cannot record golden transcripts")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()

	args := []string{"-p", port, "-U", "0", "-l", "127.0.0.1"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start memcached: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "version\r\n")
			line, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err != nil {
				t.Fatalf("cannot read memcached's version: %v", err)
			}
			return addr, strings.TrimSpace(strings.TrimPrefix(line, "VERSION "))
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached did not start listening on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exchange sends send to addr, then the meta no-op "mn", and returns what
// memcached answered before "MN\r\n", or before it closed the connection.
//
// A line with more than MaxLineLen bytes before its newline is sent in two
// writes, so that memcached has its first MaxLineLen+1 bytes before the
// newline arrives, as Parse assumes; memcached closes the connection then
// unless the line is a get.
func exchange(t *testing.T, addr, send string) (reply string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if nl := strings.IndexByte(send, '\n'); nl > MaxLineLen {
		if _, err := io.WriteString(conn, send[:MaxLineLen+1]); err != nil {
			t.Fatal(err)
		}
		// memcached either closes the connection or waits for the rest.
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var b [1]byte
		if _, err := conn.Read(b[:]); err == io.EOF {
			return "", true
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("reading after a long line prefix: got %q, %v", b[:], err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		send = send[MaxLineLen+1:]
	}
	if _, err := io.WriteString(conn, send+"mn\r\n"); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, []byte("MN\r\n")) {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return string(got), true
		}
		if err != nil {
			t.Fatalf("reading memcached's reply to %.60q: %v", send, err)
		}
	}
	return string(got[:len(got)-len("MN\r\n")]), false
}

func writeTranscript(w io.Writer, tr transcript) {
	fmt.Fprintf(w, "\n=== %s\nsend %s\nrecv %s", tr.name, strconv.Quote(tr.send), strconv.Quote(tr.reply))
	if tr.closed {
		fmt.Fprint(w, " close")
	}
	fmt.Fprintln(w)
}

func readTranscripts(r io.Reader) ([]transcript, error) {
	var ts []transcript
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case text == "" || strings.HasPrefix(text, "#"):
		case strings.HasPrefix(text, "=== "):
			ts = append(ts, transcript{name: strings.TrimPrefix(text, "=== ")})
		case len(ts) == 0:
			return nil, fmt.Errorf("line %d: %q before the first entry", line, text)
		case strings.HasPrefix(text, "send "):
			s, err := strconv.Unquote(strings.TrimPrefix(text, "send "))
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			ts[len(ts)-1].send = s
		case strings.HasPrefix(text, "recv "):
			q, closed := strings.CutSuffix(strings.TrimPrefix(text, "recv "), " close")
			s, err := strconv.Unquote(q)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			ts[len(ts)-1].reply, ts[len(ts)-1].closed = s, closed
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", line, text)
		}
	}
	return ts, sc.Err()
}

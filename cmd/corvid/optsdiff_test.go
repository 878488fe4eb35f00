//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// TestStartupRandomOptionsMatchMemcached builds command lines from seeds
// (memory, item size, slab classes, threads, connections, protocol,
// switches and -o suboptions, with values out of range, unparsable, empty,
// repeated and unknown) and starts corvid and memcached with each: both
// must start or both refuse; a refusal must give the same exit status and
// the same first line; two servers that start must print the same -vv slab
// class table and agree on every "stats settings" row both report, except
// the rows that name where they listen and those README lists as
// different. Numbers are also given in forms only atoi and atof read
// ("010", "3x", "abc"). Command-line differences README documents are
// not generated (a negative -m or -n; an -m
// past 4 TiB) or are allowed for: corvid's refusal of a -c that
// memcached's own descriptors do not fit in, where memcached fails on a
// descriptor it cannot open; memcached answering nothing after a negative
// -R; memcached 1.6.18 reading worker_logbuf_size's value as slab_sizes
// too (corvid is given that slab_sizes as well). Both are given -u nobody
// (memcached refuses to run as root without -u; neither uses it
// otherwise).
//
// It runs 100 seeds from 1; CORVID_OPTSDIFF_SEEDS=N runs N seeds and
// CORVID_OPTSDIFF_FIRST=S starts at seed S, for a longer hunt:
//
//	CORVID_OPTSDIFF_SEEDS=5000 go test -run TestStartupRandomOptionsMatchMemcached ./cmd/corvid
func TestStartupRandomOptionsMatchMemcached(t *testing.T) {
	mc := testutil.MemcachedPath()
	if mc == "" {
		t.Skip("memcached is not installed")
	}
	bin := corvidBinary(t)
	seeds, first := 100, 1
	if n, err := strconv.Atoi(os.Getenv("CORVID_OPTSDIFF_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	if n, err := strconv.Atoi(os.Getenv("CORVID_OPTSDIFF_FIRST")); err == nil {
		first = n
	}
	authFile := writeWorldReadable(t, "auth", "user:secret\n")
	for seed := first; seed < first+seeds; seed++ {
		args := randomServerArgs(rand.New(rand.NewSource(int64(seed))), authFile)
		// Other processes on the machine may take a port between
		// freePort and the server's bind, or answer on it: a mismatch
		// is reported when it is found again on fresh ports.
		var msg string
		for attempt := 0; attempt < 3; attempt++ {
			if msg = runOptsSeed(t, mc, bin, args); msg == "" {
				break
			}
		}
		if msg != "" {
			t.Errorf("seed %d: %s\n  args: %s", seed, msg, shellQuote(args))
		}
	}
}

// runOptsSeed starts memcached and corvid with args and reports how they
// differ, or "".
func runOptsSeed(t *testing.T, mc, bin string, args []string) string {
	port := strconv.Itoa(freePort(t))
	common := []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-u", "nobody"}
	margs := append(append([]string{}, common...), args...)
	cargs := append(append([]string{"server"}, common...), corvidArgsFor(args)...)
	auth := slices.Contains(args, "-Y")
	binary := lastValue(args, "-B") == "binary"
	var got, want optsOutcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		want = runOpts(mc, port, margs, auth, binary)
	}()
	// corvid on a port of its own, so that both may start.
	cport := strconv.Itoa(freePort(t))
	cargs[4] = cport
	got = runOpts(bin, cport, cargs, auth, binary)
	wg.Wait()
	if got.err != nil || want.err != nil {
		return fmt.Sprintf("corvid %v, memcached %v", got.err, want.err)
	}
	return compareOpts(args, got, want)
}

// optsOutcome is what a server did with a command line.
type optsOutcome struct {
	accepted bool
	code     int      // exit status when refused
	out      []string // the lines it printed (stdout and stderr)
	classes  []string // its -vv slab class lines
	settings map[string]string
	statsErr error // it took a connection and did not answer "stats settings"
	err      error // the test could not tell
}

// runOpts runs name with args and -vv: it is accepted when it answers
// "stats settings" on port (after authenticating as the test's -Y user
// when auth is set; in the binary protocol when binary is), and then
// stopped; otherwise it is refused when it
// exits.
func runOpts(name, port string, args []string, auth, binary bool) (o optsOutcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append(args, "-vv")...)
	var out bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if out.Len() < 1<<20 {
			out.Write(p)
		}
		return len(p), nil
	})
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return optsOutcome{err: err}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var werr error
	done := false
	for deadline := time.Now().Add(20 * time.Second); !done && time.Now().Before(deadline); {
		select {
		case werr = <-exited:
			done = true
			continue
		case <-time.After(20 * time.Millisecond):
		}
		nc, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err != nil {
			continue
		}
		if binary {
			o.settings, o.statsErr = binaryStatsSettings(nc)
		} else {
			o.settings, o.statsErr = statsSettings(nc, auth)
		}
		nc.Close()
		// A server that listens and then refuses (memcached checks -c
		// once its listeners are open) may take the connection and
		// exit without answering; a server that has exited did not
		// answer (another process took the port).
		wait := 50 * time.Millisecond
		if o.statsErr != nil {
			wait = 2 * time.Second
		}
		select {
		case werr = <-exited:
			done = true
			o.settings, o.statsErr = nil, nil
		case <-time.After(wait):
			o.accepted = true
		}
		break
	}
	if !done {
		cmd.Process.Kill()
		<-exited
		if !o.accepted && o.err == nil {
			o.err = errors.New("neither served nor exited")
		}
	}
	mu.Lock()
	text := out.String()
	mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if strings.HasPrefix(line, "slab class ") {
			o.classes = append(o.classes, line)
		} else if line != "" {
			o.out = append(o.out, line)
		}
	}
	if done {
		var ee *exec.ExitError
		switch {
		case werr == nil:
			o.code = 0
		case errors.As(werr, &ee):
			o.code = ee.ExitCode()
			if ee.ExitCode() < 0 {
				o.code = -1 // a signal
			}
		default:
			o.err = werr
		}
	}
	return o
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// statsSettings asks nc for "stats settings", first authenticating as
// the -Y file's user when auth is set.
func statsSettings(nc net.Conn, auth bool) (map[string]string, error) {
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	req := "stats settings\r\n"
	if auth {
		req = "set auth 0 0 11\r\nuser secret\r\n" + req
	}
	if _, err := fmt.Fprint(nc, req); err != nil {
		return nil, err
	}
	m := map[string]string{}
	r := bufio.NewReader(nc)
	if auth {
		if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
			return nil, fmt.Errorf("authenticating: %q, %v", line, err)
		}
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("stats settings: %v after %d rows", err, len(m))
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return m, nil
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("stats settings: %q", line)
		}
		m[f[1]] = f[2]
	}
}

// binaryStatsSettings asks nc for the "settings" stats in the binary
// protocol.
func binaryStatsSettings(nc net.Conn) (map[string]string, error) {
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	req := make([]byte, 24, 32)
	req[0], req[1] = 0x80, 0x10 // request, STAT
	binary.BigEndian.PutUint16(req[2:], uint16(len("settings")))
	binary.BigEndian.PutUint32(req[8:], uint32(len("settings")))
	if _, err := nc.Write(append(req, "settings"...)); err != nil {
		return nil, err
	}
	m := map[string]string{}
	r := bufio.NewReader(nc)
	for range 1000 {
		var h [24]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, fmt.Errorf("binary stats settings: %v after %d rows", err, len(m))
		}
		keyLen, extLen := int(binary.BigEndian.Uint16(h[2:])), int(h[4])
		body := make([]byte, binary.BigEndian.Uint32(h[8:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		if h[0] != 0x81 || binary.BigEndian.Uint16(h[6:]) != 0 || extLen+keyLen > len(body) {
			return nil, fmt.Errorf("binary stats settings: header % x", h)
		}
		if keyLen == 0 {
			return m, nil
		}
		m[string(body[extLen:extLen+keyLen])] = string(body[extLen+keyLen:])
	}
	return nil, errors.New("binary stats settings: no end")
}

// outOfDescriptors reports whether memcached's output shows it failed
// for want of a descriptor: a call's error, or the user it could not look
// up (/etc/passwd being one descriptor too many).
func outOfDescriptors(out []string) bool {
	return slices.ContainsFunc(out, func(line string) bool {
		return strings.Contains(line, "Too many open files") || strings.HasPrefix(line, "can't find the user")
	})
}

// tinyReadBufs reports whether args give a read_buf_mem_limit that leaves
// memcached's threads less than two 16 KB buffers each.
func tinyReadBufs(args []string) bool {
	limit := -1
	for i := 1; i < len(args); i++ {
		if args[i-1] != "-o" {
			continue
		}
		for _, opt := range strings.Split(args[i], ",") {
			if v, ok := strings.CutPrefix(opt, "read_buf_mem_limit="); ok {
				if n, err := strconv.Atoi(v); err == nil {
					limit = n
				}
			}
		}
	}
	threads := 4
	if n, err := strconv.Atoi(lastValue(args, "-t")); err == nil && n > 0 {
		threads = n
	}
	return limit > 0 && limit<<20/threads < 32<<10
}

// lastValue is the value args give flag last, or "".
func lastValue(args []string, flag string) string {
	v := ""
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			v = args[i+1]
			i++
		}
	}
	return v
}

// refusal is the first line a refused server printed: memcached's message,
// or corvid's, past the lines corvid logs on its way.
func (o optsOutcome) refusal() string {
	for _, line := range o.out {
		if !strings.HasPrefix(line, "time=") {
			return line
		}
	}
	return ""
}

// settingsNotCompared are the "stats settings" rows that differ by design:
// where each listens, rows README documents (corvid's own hash; memcached
// 1.6.18's default read_buf_mem_limit of 0 is corvid's 64 MB).
var settingsNotCompared = map[string]bool{
	"tcpport": true, "hash_algorithm": true,
}

// settingsOnlyMemcached are rows memcached 1.6.18 reports and corvid does
// not: extstore's, which corvid accepts and does not act on, and NAPI's.
func settingsOnlyMemcached(k string) bool {
	return strings.HasPrefix(k, "ext_") || k == "num_napi_ids"
}

// compareOpts reports how got (corvid) differs from want (memcached) for
// args, or "".
func compareOpts(args []string, got, want optsOutcome) string {
	switch {
	case !got.accepted && !want.accepted && want.code != 0 &&
		(slices.Contains(got.out, "Maxconns setting is too low, use -c to increase.") || outOfDescriptors(want.out)):
		// README: where its own descriptors do not fit in -c (its
		// descriptor limit; corvid never lowers its own), memcached
		// fails on the first one it cannot open, with that call's
		// message, where corvid refuses -c as too low or fails a check
		// memcached would make later.
		return ""
	case got.accepted != want.accepted:
		return fmt.Sprintf("corvid started: %v (exit %d, %q); memcached started: %v (exit %d, %q)",
			got.accepted, got.code, got.refusal(), want.accepted, want.code, want.refusal())
	case !want.accepted:
		if want.code < 0 || want.code > 128 {
			return "" // memcached crashes; corvid refusing is what can be asked
		}
		if got.code != want.code || got.refusal() != want.refusal() {
			return fmt.Sprintf("refused: corvid exit %d %q, memcached exit %d %q", got.code, got.refusal(), want.code, want.refusal())
		}
		return ""
	}
	switch {
	case leadingInt(lastValue(args, "-R")) < 0 && want.statsErr != nil:
		// README: memcached takes a negative -R and then answers
		// nothing; corvid serves as with 1.
		return ""
	case want.statsErr != nil && tinyReadBufs(args):
		// README: memcached, with no room beside a connection's read
		// buffer for a response, answers nothing; corvid serves.
		return ""
	case got.statsErr != nil || want.statsErr != nil:
		return fmt.Sprintf("corvid: %v; memcached: %v", got.statsErr, want.statsErr)
	}
	var diffs []string
	if g, w := strings.Join(got.classes, "\n"), strings.Join(want.classes, "\n"); g != w {
		diffs = append(diffs, fmt.Sprintf("class table:\n%s\nmemcached:\n%s", g, w))
	}
	readBufGiven := slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "read_buf_mem_limit") })
	var keys []string
	for k := range want.settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w := want.settings[k]
		g, ok := got.settings[k]
		switch {
		case settingsNotCompared[k], k == "read_buf_mem_limit" && !readBufGiven:
		case !ok:
			if !settingsOnlyMemcached(k) {
				diffs = append(diffs, fmt.Sprintf("stats settings %s: missing, memcached %q", k, w))
			}
		case g != w:
			diffs = append(diffs, fmt.Sprintf("stats settings %s: %q, memcached %q", k, g, w))
		}
	}
	return strings.Join(diffs, "\n")
}

// corvidArgsFor is args as corvid must be given them to match memcached
// 1.6.18's reading of them: memcached also reads the value of
// worker_logbuf_size as slab_sizes (a missing break, README), so corvid is
// given that slab_sizes too.
func corvidArgsFor(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if i == 0 || out[i-1] != "-o" {
			continue
		}
		var opts []string
		for _, opt := range strings.Split(a, ",") {
			opts = append(opts, opt)
			if v, ok := strings.CutPrefix(opt, "worker_logbuf_size="); ok {
				if _, err := strconv.ParseUint(v, 10, 32); err == nil {
					opts = append(opts, "slab_sizes="+v)
				}
			}
		}
		out[i] = strings.Join(opts, ",")
	}
	return out
}

// randomServerArgs builds a command line from r.
func randomServerArgs(r *rand.Rand, authFile string) []string {
	pick := func(vals ...string) string { return vals[r.Intn(len(vals))] }
	flags := []func() []string{
		func() []string {
			return []string{"-m", pick("0", "1", "2", "8", "64", "1000", "100000", "abc", "12x", "", "4294967296", "4294968320")}
		},
		func() []string {
			return []string{"-I", pick("1k", "1K", "1024", "1023", "2k", "512k", "1m", "1M", "2m", "3m", "5m", "64m",
				"1024m", "1025m", "2048m", "1000000", "x", "0", "1g", "16k")}
		},
		func() []string {
			return []string{"-n", pick("1", "5", "48", "100", "1000", "100000", "0", "064", "72x", "abc")}
		},
		func() []string {
			return []string{"-f", pick("1.0", "1", "0.5", "1.01", "1.0001", "1.08", "1.25", "1.5", "2", "2.5", "10", "3.14159", "1.000001", "100", "1.5x", "abc", " 1.3")}
		},
		func() []string {
			return []string{"-t", pick("1", "2", "3", "4", "8", "11", "21", "65", "0", "010", "3x", "abc", "0x4")}
		},
		func() []string {
			return []string{"-c", pick("0", "1", "10", "42", "100", "300", "1024", "4096", "100000", "2000000", "0100", "50c", "abc")}
		},
		func() []string { return []string{"-b", pick("0", "1", "-1", "1024", "65535", "0x20", "010", "abc")} },
		func() []string { return []string{"-R", pick("0", "1", "5x", "-3", "20", "abc", "100")} },
		func() []string { return []string{"-B", pick("ascii", "binary", "auto", "bogus", "")} },
		func() []string { return []string{"-D", pick(":", "/", "ab", "")} },
		func() []string { return []string{pick("-C", "-F", "-X", "-W", "-A", "-M", "-r", "-L")} },
		func() []string { return []string{"-Y", authFile} },
		func() []string {
			n := 1 + r.Intn(3)
			var opts []string
			for range n {
				opts = append(opts, randomSuboption(r))
			}
			sep, end := ",", ""
			if r.Intn(8) == 0 {
				sep = ",," // an empty suboption
			}
			if r.Intn(8) == 0 {
				end = "," // a trailing comma, which memcached takes
			}
			return []string{"-o", strings.Join(opts, sep) + end}
		},
	}
	var args []string
	for n := 1 + r.Intn(7); n > 0; n-- {
		i := r.Intn(len(flags) + 3)
		if i >= len(flags) {
			i = len(flags) - 1 // -o more often
		}
		next := flags[i]()
		args = append(args, next...)
		if r.Intn(10) == 0 { // the same option twice
			args = append(args, next...)
		}
	}
	// -L makes memcached preallocate -m: not a huge one.
	if slices.Contains(args, "-L") {
		m := "64"
		for i := range args {
			if args[i] == "-m" && i+1 < len(args) {
				m = args[i+1]
			}
		}
		if n, err := strconv.Atoi(m); err != nil || n > 1000 {
			args = append(args, "-m", "64")
		}
	}
	return args
}

// randomSuboption is one -o suboption from r.
func randomSuboption(r *rand.Rand) string {
	pick := func(vals ...string) string { return vals[r.Intn(len(vals))] }
	withVal := func(name string, vals ...string) string {
		if r.Intn(12) == 0 {
			return name // no "=" at all
		}
		return name + "=" + pick(vals...)
	}
	opts := []func() string{
		func() string {
			return withVal("slab_chunk_max", "524288", "16384", "65536", "131072", "1048576", "3000", "1024", "16k", "2097152")
		},
		func() string {
			return "slab_sizes=" + pick("100-200", "96-128-256", "48-16384", "-", "100-90", "500000-600000", "abc", "1-2-3", "100- 200", "", "64-524288", "200-100")
		},
		func() string { return withVal("hashpower", "11", "12", "13", "16", "20", "24", "33", "abc", "", "-1") },
		func() string {
			return pick("no_hashexpand", "lru_crawler", "no_lru_crawler", "lru_maintainer", "no_lru_maintainer",
				"slab_reassign", "no_slab_reassign", "modern", "no_modern", "maxconns_fast", "no_maxconns_fast",
				"track_sizes", "no_slab_automove", "inline_ascii_resp", "no_chunked_items", "ext_drop_unread")
		},
		func() string { return withVal("slab_automove", "0", "1", "2", "3", "-1", "") },
		func() string { return withVal("hot_lru_pct", "0", "1", "2", "20", "50", "79", "80", "", "x") },
		func() string { return withVal("warm_lru_pct", "0", "1", "2", "40", "50", "79", "80", "", "x") },
		func() string { return withVal("temporary_ttl", "0", "61", "100", "-5", "") },
		func() string { return withVal("idle_timeout", "0", "10", "-1", "", "x", "3600") },
		func() string { return withVal("read_buf_mem_limit", "0", "1", "64", "4096", "x", "", "-1") },
		func() string { return withVal("watcher_logbuf_size", "0", "1", "256", "x", "", "4194304") },
		func() string { return withVal("worker_logbuf_size", "0", "1", "64", "100", "x", "") },
		func() string { return withVal("tail_repair_time", "0", "9", "10", "30", "", "x") },
		func() string { return withVal("lru_crawler_sleep", "0", "100", "1000000", "1000001", "-1", "") },
		func() string { return withVal("lru_crawler_tocrawl", "0", "100", "-1", "", "4294967296") },
		func() string {
			return withVal(pick("hot_max_factor", "warm_max_factor"), "0", "0.2", "2", "-1", "x", "")
		},
		func() string { return withVal("slab_automove_ratio", "0", "0.5", "0.8", "1", "1.5", "x", "") },
		func() string { return withVal("slab_automove_window", "0", "2", "3", "30", "x", "") },
		func() string { return withVal("slab_automove_freeratio", "0", "0.01", "0.5", "x", "") },
		func() string { return withVal("hash_algorithm", "murmur3", "jenkins", "xxh3", "foo", "") },
		func() string {
			return withVal(pick("ext_item_size", "ext_threads", "ext_page_size", "ext_wbuf_size", "ext_max_frag",
				"ext_item_age", "ext_low_ttl", "ext_recache_rate", "ext_compact_under", "ext_drop_under", "ext_max_sleep"),
				"0", "1", "4", "512", "x", "")
		},
		func() string { return pick("bogus", "bogus=1", "=", "=5", "slab_automove_version=1") },
	}
	return opts[r.Intn(len(opts))]()
}

// writeWorldReadable writes a file that memcached, running as nobody, can
// read, and returns its name.
func writeWorldReadable(t *testing.T, name, content string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "corvid-optsdiff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// shellQuote renders args for a shell.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"\\$") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

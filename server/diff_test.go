package server_test

// Differential tests: the same requests go to corvid and to a real memcached,
// and the replies must be byte-for-byte the same, except CAS uniques, which
// the transcripts compare by identity (see peer).

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
	"github.com/corvidcache/corvid/storage"
)

var (
	diffSeed    = flag.Uint64("diff.seed", 0, "seed of TestDiffRandom's request stream (0: the fixed seeds, then -diff.seeds new ones)")
	diffSeeds   = flag.Int("diff.seeds", 0, "number of new random seeds TestDiffRandom runs after its fixed ones")
	diffN       = flag.Int("diff.n", 3000, "number of requests TestDiffRandom sends for each seed")
	diffMeta    = flag.Int("diff.meta", 10, "percent of TestDiffRandom's requests that are meta commands")
	diffBatch   = flag.Int("diff.batch", 8, "most steps TestDiffRandom pipelines in one batch")
	diffNoCAS   = flag.Bool("diff.nocas", false, "run TestDiffRandom's servers without CAS uniques (memcached -C)")
	diffItemMax = flag.Int("diff.itemmax", 1<<20, "TestDiffRandom's servers' item size limit in bytes (memcached -I), 1 MiB or more")
	diffSelf    = flag.Bool("diff.self", false, "test a second memcached in place of corvid, "+
		"to check that the generated requests and transcripts have deterministic replies")
)

// diffMemoryMB is both servers' memory limit: large enough that nothing the
// tests store is evicted, as eviction order is not what these tests compare.
const diffMemoryMB = 256

// replyTimeout bounds the wait for each reply.
const replyTimeout = 3 * time.Second

// startMemcached starts memcached without its background LRU threads, which
// take references to items at any moment: incr and decr then find an item
// referenced and store a new one instead of padding the number in place.
func startMemcached(t *testing.T) string {
	t.Helper()
	args := []string{"-m", strconv.Itoa(diffMemoryMB), "-o", "no_lru_crawler,no_lru_maintainer"}
	if *diffNoCAS {
		args = append(args, "-C")
	}
	if *diffItemMax != 1<<20 {
		args = append(args, "-I", strconv.Itoa(*diffItemMax))
	}
	return testutil.StartMemcached(t, args...)
}

// startCorvid starts the server under test: corvid, or with -diff.self
// another memcached.
func startCorvid(t *testing.T) string {
	t.Helper()
	if *diffSelf {
		return startMemcached(t)
	}
	// No crawler either, as memcached runs: a flush_all's items then stay
	// counted until they are looked at, in both; and a flat LRU, whose
	// order "stats cachedump" shows.
	return testutil.StartCorvid(t, server.Config{
		Storage: storage.Config{MemoryLimit: diffMemoryMB << 20, NoCrawler: true, NoLRUMaintainer: true,
			DisableCAS: *diffNoCAS, ItemSizeMax: *diffItemMax},
	})
}

// step is one request of a differential test.
type step struct {
	// req is sent as it is, except that "<cas#N>" stands for the CAS
	// unique the server returned as its Nth (see peer.render).
	req string
	// versions counts the "version" commands in req: their replies come
	// before the sentinel's.
	versions int
	// stats marks a stats request, whose STAT lines are not compared.
	stats bool
	// first makes the request start a batch, after every earlier reply
	// has been read, for two requests whose replies from memcached 1.6.18
	// depend on what it has not yet written: a get naming a key over 250
	// bytes drops those unwritten replies, and incr or decr pads the
	// number in place only if no unwritten get reply holds the item.
	first bool
}

// sentinel follows every request; its reply marks the end of the replies to
// the request. It is the one command whose reply never depends on state.
const sentinel = "version\r\n"

// peer is a connection to one server of a differential test. It numbers the
// CAS uniques the server returns in order of first appearance and writes
// "#N" in their place, so that two servers' replies are equal when they
// name the same item versions, whatever their numbering. TestDiffRandom
// then requires the same uniques too: corvid gives them out as memcached
// does, from 1, in the same order.
type peer struct {
	name    string
	conn    *testutil.Conn
	casIDs  map[uint64]int
	casVals []uint64 // casVals[N-1] is the unique written as #N
}

func newPeer(t *testing.T, name, addr string) *peer {
	t.Helper()
	c := testutil.Dial(t, addr)
	c.Timeout = replyTimeout
	return &peer{name: name, conn: c, casIDs: make(map[uint64]int)}
}

// render returns req with each "<cas#N>" replaced by this server's #N.
func (p *peer) render(req string) string {
	for {
		i := strings.Index(req, "<cas#")
		if i < 0 {
			return req
		}
		j := i + strings.IndexByte(req[i:], '>')
		id, _ := strconv.Atoi(req[i+len("<cas#") : j])
		v := "0"
		if id >= 1 && id <= len(p.casVals) {
			v = strconv.FormatUint(p.casVals[id-1], 10)
		}
		req = req[:i] + v + req[j+1:]
	}
}

// encode returns the steps' requests for this server, each followed by the
// sentinel.
func (p *peer) encode(steps []step) []byte {
	var b []byte
	for _, s := range steps {
		b = append(b, p.render(s.req)...)
		b = append(b, sentinel...)
	}
	return b
}

// recv reads the replies to s, through the sentinel's, and returns them
// without the sentinel's and with CAS uniques numbered.
func (p *peer) recv(s step) ([]byte, error) {
	var out []byte
	versions := 0
	for {
		r, err := p.conn.TryReadReply(testutil.AnyReply)
		if err != nil {
			return append(out, r...), err
		}
		if bytes.HasPrefix(r, []byte("VERSION ")) {
			if versions == s.versions {
				return out, nil
			}
			versions++
		}
		if s.stats && bytes.HasPrefix(r, []byte("STAT ")) && bytes.HasSuffix(r, []byte("END\r\n")) {
			r = []byte("STAT (not compared)\r\nEND\r\n")
		}
		if isMetaReply(r) {
			r = p.numberMeta(r)
		}
		out = append(out, p.numberCAS(r)...)
	}
}

// numberCAS rewrites the CAS field of the VALUE lines in one reply.
func (p *peer) numberCAS(r []byte) []byte {
	if !bytes.HasPrefix(r, []byte("VALUE ")) {
		return r
	}
	var out []byte
	for len(r) > 0 {
		line := r[:bytes.IndexByte(r, '\n')+1] // replies are whole lines
		r = r[len(line):]
		f := fields(line)
		if len(f) < 4 || string(f[0]) != "VALUE" {
			out = append(out, line...)
			continue
		}
		out = p.appendValueLine(out, line, f)
		n, _ := strconv.Atoi(string(f[3]))
		n = min(n+2, len(r))
		out = append(out, r[:n]...)
		r = r[n:]
	}
	return out
}

// appendValueLine appends a VALUE line, with fields f, numbering its CAS.
func (p *peer) appendValueLine(dst, line []byte, f [][]byte) []byte {
	if len(f) != 5 {
		return append(dst, line...)
	}
	cas, err := strconv.ParseUint(string(f[4]), 10, 64)
	if err != nil {
		return append(dst, line...)
	}
	at := bytes.LastIndex(line, f[4])
	dst = append(dst, line[:at]...)
	dst = fmt.Appendf(dst, "#%d", p.casID(cas))
	return append(dst, line[at+len(f[4]):]...)
}

// fields splits a reply line, without its line end, at single spaces: the
// servers separate fields so, and a key may hold other white space.
func fields(line []byte) [][]byte {
	return bytes.Split(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), []byte(" "))
}

func (p *peer) casID(v uint64) int {
	id, ok := p.casIDs[v]
	if !ok {
		p.casVals = append(p.casVals, v)
		id = len(p.casVals)
		p.casIDs[v] = id
	}
	return id
}

// diffFixedSeeds are the seeds TestDiffRandom always runs, so that a run
// fails or passes alike each time; -diff.seeds adds new ones, to hunt.
var diffFixedSeeds = []uint64{1, 2, 3}

// diffRunSeeds returns the seeds to run: -diff.seed alone when given, else
// the fixed seeds and -diff.seeds new ones.
func diffRunSeeds() []uint64 {
	if *diffSeed != 0 {
		return []uint64{*diffSeed}
	}
	seeds := append([]uint64(nil), diffFixedSeeds...)
	for range *diffSeeds {
		seeds = append(seeds, rand.Uint64()|1)
	}
	return seeds
}

// TestDiffRandom sends a seeded random stream of requests, valid and not,
// to corvid and to memcached in small pipelined batches, and requires the
// same replies to every request. Each seed has a new pair of servers.
func TestDiffRandom(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	for _, seed := range diffRunSeeds() {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			mc := startMemcached(t)
			diffRandom(t, startCorvid(t), mc, seed)
		})
	}
}

// diffRandom sends the request stream of seed to corvid at cv and
// memcached at mc and fails at the first reply that differs.
func diffRandom(t *testing.T, cv, mc string, seed uint64) {
	t.Helper()
	peers := []*peer{newPeer(t, "corvid", cv), newPeer(t, "memcached", mc)}
	g := newGenerator(seed)

	var sent []step
	for len(sent) < *diffN {
		batch := g.batch(*diffN - len(sent))
		// Writers run beside the reader so that neither side can block
		// on a full socket buffer.
		errc := make(chan error, len(peers))
		for _, p := range peers {
			b := p.encode(batch)
			go func() { errc <- p.conn.TrySend(b) }()
		}
		var failure string
		for _, s := range batch {
			sent = append(sent, s)
			got := make([][]byte, len(peers))
			errs := make([]error, len(peers))
			for i, p := range peers {
				got[i], errs[i] = p.recv(s)
			}
			if !slices.Equal(peers[0].casVals, peers[1].casVals) {
				// The same item versions, numbered alike, but not with
				// the same uniques: show the uniques.
				for i, p := range peers {
					got[i] = fmt.Appendf(got[i], " (CAS uniques %v)", p.casVals)
				}
			}
			if errs[0] != nil || errs[1] != nil || !bytes.Equal(got[0], got[1]) {
				failure = diffReport(seed, sent, peers, got, errs)
				break
			}
			g.learn(got[1])
		}
		if failure != "" {
			for _, p := range peers {
				p.conn.Close() // unblocks its writer
			}
		}
		for range peers {
			if err := <-errc; err != nil && failure == "" {
				failure = fmt.Sprintf("seed %d: cannot send batch ending at request %d: %v", seed, len(sent)-1, err)
			}
		}
		if failure != "" {
			t.Fatal(failure)
		}
	}

	// Last, a line memcached closes the connection for, however it arrives:
	// one that is not a get and has no newline in its first 16 KB, the
	// read buffer of a memcached connection, of which it reads the first
	// 2049 bytes and closes; or quit (see generator.overlong).
	line := g.overlong()
	got := make([][]byte, len(peers))
	for i, p := range peers {
		got[i] = p.closing(line)
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatalf("seed %d (rerun with -diff.seed=%d): replies to the last, overlong line differ\nrequest: %s\ncorvid   : %s\nmemcached: %s",
			seed, seed, testutil.Quote([]byte(line), 200), testutil.Quote(got[0], 300), testutil.Quote(got[1], 300))
	}
}

// closing sends line, which should make the server close the connection
// (after the replies to the requests before it in line),
// and returns its replies, followed by "<closed>" when it closed the
// connection (how: with an end of file or a reset, as it had not read all
// the line) or "<open>" when it did not within the reply timeout.
func (p *peer) closing(line string) []byte {
	errc := make(chan error, 1)
	go func() { errc <- p.conn.TrySend([]byte(line)) }()
	var out []byte
	for {
		r, err := p.conn.TryReadReply(testutil.AnyReply)
		out = append(out, r...)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			out = append(out, "<open>"...)
		} else {
			out = append(out, "<closed>"...)
		}
		p.conn.Close() // unblocks the writer
		<-errc
		return out
	}
}

// diffReport describes a mismatch at the last request sent.
func diffReport(seed uint64, sent []step, peers []*peer, got [][]byte, errs []error) string {
	var b strings.Builder
	last := len(sent) - 1
	fmt.Fprintf(&b, "seed %d (rerun with -diff.seed=%d): replies to request %d differ\nrequest: %s\n",
		seed, seed, last, testutil.Quote([]byte(sent[last].req), 300))
	for i, p := range peers {
		fmt.Fprintf(&b, "%-9s: %s", p.name, testutil.Quote(got[i], 600))
		if errs[i] != nil {
			fmt.Fprintf(&b, " (then: %v)", errs[i])
		}
		b.WriteByte('\n')
	}
	if at := firstDifference(got[0], got[1]); at > 500 {
		from := at - 40
		fmt.Fprintf(&b, "first difference at byte %d: %s vs %s\n", at,
			testutil.Quote(got[0][from:min(at+40, len(got[0]))], 100),
			testutil.Quote(got[1][from:min(at+40, len(got[1]))], 100))
	}
	b.WriteString("previous requests:\n")
	for i := max(0, last-8); i < last; i++ {
		fmt.Fprintf(&b, "  %d: %s\n", i, testutil.Quote([]byte(sent[i].req), 200))
	}
	return b.String()
}

func firstDifference(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// A transcript is a fixed exchange with its expected replies (CAS uniques
// numbered as peer does), pinning memcached quirks a client may rely on.
type transcript struct {
	name  string
	steps []exchange
}

type exchange struct{ send, want string }

var (
	key250 = strings.Repeat("k", 250)
	key251 = strings.Repeat("k", 251)
	// tooLarge is a value over the default 1 MiB item size limit.
	tooLarge = strings.Repeat("x", 1<<20+1)
)

var transcripts = []transcript{
	{"decr pads in place", []exchange{
		{"set n 0 0 3\r\n100\r\n", "STORED\r\n"},
		{"decr n 1\r\n", "99\r\n"},
		{"get n\r\n", "VALUE n 0 3\r\n99 \r\nEND\r\n"},
		{"decr n 1000\r\n", "0\r\n"},
		{"get n\r\n", "VALUE n 0 3\r\n0  \r\nEND\r\n"},
		{"incr n 1000\r\n", "1000\r\n"},
		{"get n\r\n", "VALUE n 0 4\r\n1000\r\nEND\r\n"},
	}},
	{"incr wraps at 2^64", []exchange{
		{"set n 5 0 20\r\n18446744073709551615\r\n", "STORED\r\n"},
		{"incr n 1\r\n", "0\r\n"},
		{"get n\r\n", "VALUE n 5 20\r\n0                   \r\nEND\r\n"},
		{"incr n 18446744073709551615\r\n", "18446744073709551615\r\n"},
		{"incr n 2\r\n", "1\r\n"},
		{"incr n 18446744073709551616\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
		{"decr n -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
	}},
	{"incr parses like strtoull", []exchange{
		{"set n 0 0 3\r\n1 2\r\n", "STORED\r\n"},
		{"incr n 1\r\n", "2\r\n"},
		{"set n 0 0 3\r\n 12\r\n", "STORED\r\n"},
		{"incr n 1\r\n", "13\r\n"},
		{"set n 0 0 2\r\n-1\r\n", "STORED\r\n"},
		{"incr n 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"set n 0 0 0\r\n\r\n", "STORED\r\n"},
		{"decr n 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"incr missing 1\r\n", "NOT_FOUND\r\n"},
	}},
	{"set too large removes the old value", []exchange{
		{"set k 0 0 1\r\na\r\n", "STORED\r\n"},
		{"set k 0 0 " + strconv.Itoa(len(tooLarge)) + "\r\n" + tooLarge + "\r\n",
			"SERVER_ERROR object too large for cache\r\n"},
		{"get k\r\n", "END\r\n"},
		{"set k 0 0 1\r\na\r\n", "STORED\r\n"},
		{"append k 0 0 " + strconv.Itoa(len(tooLarge)) + "\r\n" + tooLarge + "\r\n",
			"SERVER_ERROR object too large for cache\r\n"},
		{"get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
	}},
	{"append and prepend keep flags", []exchange{
		{"set k 5 0 1\r\nb\r\n", "STORED\r\n"},
		{"append k 9 0 1\r\nc\r\n", "STORED\r\n"},
		{"prepend k 7 0 1\r\na\r\n", "STORED\r\n"},
		{"get k\r\n", "VALUE k 5 3\r\nabc\r\nEND\r\n"},
		{"append missing 0 0 1\r\na\r\n", "NOT_STORED\r\n"},
	}},
	{"bad data chunk", []exchange{
		// The value is read by its declared length; what follows is
		// parsed as the next command.
		{"set k 0 0 1\r\nabcget k\r\n", "CLIENT_ERROR bad data chunk\r\nEND\r\n"},
		{"set k 0 0 1\r\nab\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"set k 0 0 4\r\na\r\nb\r\n", "STORED\r\n"},
		{"get k\r\n", "VALUE k 0 4\r\na\r\nb\r\nEND\r\n"},
	}},
	{"noreply suppresses errors", []exchange{
		{"set k 0 0 -1 noreply\r\n", ""},
		{"set k 0 0 1 noreply\r\nab\r\n", "ERROR\r\n"}, // the "\n" left over
		{"set k 0 0 1 noreply\r\na\r\n", ""},
		{"incr k 1 noreply\r\n", ""},
		{"incr k abc noreply\r\n", ""},
		{"touch k 0 noreply\r\n", ""},
		{"delete nokey noreply\r\n", ""},
		{"flush_all noreply\r\n", ""},
		{"verbosity 0 noreply\r\n", ""},
		{"get k\r\n", "END\r\n"},
		{"set k 0 0 1 noreply extra\r\na\r\n", "ERROR\r\nERROR\r\n"},
	}},
	{"command line errors", []exchange{
		{"\r\n", "ERROR\r\n"},
		{"foo bar\r\n", "ERROR\r\n"},
		{"GET k\r\n", "ERROR\r\n"},
		{"get\r\n", "ERROR\r\n"},
		{"set k 0 0\r\nab\r\n", "ERROR\r\nERROR\r\n"},
		{"set k 0 0 1 junk\r\na\r\n", "STORED\r\n"},
		{"set k 0 0 abc\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"set k 0 0 2147483647\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"set k -1 0 1\r\na\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"cas k 0 0 1 -1\r\na\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"delete k 0\r\n", "DELETED\r\n"},
		{"delete k 1\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
		{"touch k abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"gat abc k\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
		{"verbosity\r\n", "ERROR\r\n"},
		{"version extra\r\n", "VERSION 1.6.18\r\n"},
		{"  get  k  \n", "END\r\n"},
	}},
	{"key length limit", []exchange{
		{"set " + key250 + " 0 0 1\r\na\r\n", "STORED\r\n"},
		{"get " + key250 + "\r\n", "VALUE " + key250 + " 0 1\r\na\r\nEND\r\n"},
		{"set " + key251 + " 0 0 1\r\na\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
		{"get " + key250 + " " + key251 + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"incr " + key251 + " 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
	}},
	{"exptime", []exchange{
		{"set k 0 -1 1\r\na\r\n", "STORED\r\n"},
		{"get k\r\n", "END\r\n"},
		{"set k 0 2592001 1\r\na\r\n", "STORED\r\n"}, // absolute, long past
		{"get k\r\n", "END\r\n"},
		{"set k 0 2000000000 1\r\na\r\n", "STORED\r\n"},
		{"gat -1 k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
		{"get k\r\n", "END\r\n"},
	}},
	{"cas", []exchange{
		{"cas k 0 0 1 1\r\na\r\n", "NOT_FOUND\r\n"},
		{"set k 0 0 1\r\na\r\n", "STORED\r\n"},
		{"gets k\r\n", "VALUE k 0 1 #1\r\na\r\nEND\r\n"},
		{"touch k 0\r\n", "TOUCHED\r\n"},
		{"gats 0 k k\r\n", "VALUE k 0 1 #1\r\na\r\nVALUE k 0 1 #1\r\na\r\nEND\r\n"},
		{"cas k 0 0 1 <cas#1>\r\nb\r\n", "STORED\r\n"},
		{"cas k 0 0 1 <cas#1>\r\nc\r\n", "EXISTS\r\n"},
		{"gets k\r\n", "VALUE k 0 1 #2\r\nb\r\nEND\r\n"},
		{"incr k 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{"set n 0 0 1\r\n1\r\n", "STORED\r\n"},
		{"gets n\r\n", "VALUE n 0 1 #3\r\n1\r\nEND\r\n"},
		{"incr n 1\r\n", "2\r\n"},
		{"gets n k\r\n", "VALUE n 0 1 #4\r\n2\r\nVALUE k 0 1 #2\r\nb\r\nEND\r\n"},
	}},
	{"stats cachedump", []exchange{
		{"set a 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"set b 0 0 3\r\nxyz\r\n", "STORED\r\n"},
		{"stats cachedump 1 0\r\n", "ITEM b [3 b; 0 s]\r\nITEM a [1 b; 0 s]\r\nEND\r\n"},
		{"stats cachedump 1 1\r\n", "ITEM b [3 b; 0 s]\r\nEND\r\n"},
		{"get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"},
		{"delete b\r\n", "DELETED\r\n"},
		{"stats cachedump 1 0\r\n", "ITEM a [1 b; 0 s]\r\nEND\r\n"},
		{"stats cachedump 2 0\r\n", "END\r\n"},
		{"stats cachedump 63 5\r\n", "END\r\n"},
		{"stats cachedump 64 5\r\n", "CLIENT_ERROR Illegal slab id\r\n"},
		{"stats cachedump\r\n", "CLIENT_ERROR bad command line\r\n"},
		{"stats cachedump 1\r\n", "CLIENT_ERROR bad command line\r\n"},
		{"stats cachedump x 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"stats cachedump 1 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		// Read as memcached's safe_strtoul: a sign, and 2^32 + 1 is 1.
		{"stats cachedump +1 0\r\n", "ITEM a [1 b; 0 s]\r\nEND\r\n"},
		{"stats cachedump 4294967297 0\r\n", "ITEM a [1 b; 0 s]\r\nEND\r\n"},
	}},
	{"flush_all", []exchange{
		{"set k 0 0 1\r\na\r\n", "STORED\r\n"},
		{"flush_all\r\n", "OK\r\n"},
		{"get k\r\n", "END\r\n"},
		{"add k 0 0 1\r\nb\r\n", "STORED\r\n"},
		{"get k\r\n", "VALUE k 0 1\r\nb\r\nEND\r\n"},
	}},
}

// TestDiffTranscripts runs each transcript against a new corvid and, when it
// is installed, a new memcached. New servers, because memcached checks a
// number over 2^63 for a minus sign up to the next NUL byte, past the value:
// only in memory no item has used yet is that reliably the end of the value.
func TestDiffTranscripts(t *testing.T) {
	runTranscripts(t, transcripts)
}

// TestDiffMetaTranscripts is TestDiffTranscripts for the meta commands.
func TestDiffMetaTranscripts(t *testing.T) {
	runTranscripts(t, metaTranscripts)
}

func runTranscripts(t *testing.T, transcripts []transcript) {
	if testutil.MemcachedPath() == "" {
		t.Log("memcached is not installed: checking corvid only")
	}
	for _, tr := range transcripts {
		t.Run(tr.name, func(t *testing.T) {
			type target struct{ name, addr string }
			targets := []target{{"corvid", startCorvid(t)}}
			if testutil.MemcachedPath() != "" {
				targets = append(targets, target{"memcached", startMemcached(t)})
			}
			for _, tg := range targets {
				p := newPeer(t, tg.name, tg.addr)
				for i, ex := range tr.steps {
					s := step{req: ex.send, versions: strings.Count(ex.want, "VERSION ")}
					err := p.conn.TrySend(p.encode([]step{s}))
					var got []byte
					if err == nil {
						got, err = p.recv(s)
					}
					if err != nil || string(got) != ex.want {
						t.Errorf("%s, request %d: %s\n got: %s (error: %v)\nwant: %s", tg.name, i,
							testutil.Quote([]byte(ex.send), 200), testutil.Quote(got, 300), err,
							testutil.Quote([]byte(ex.want), 300))
						break
					}
				}
			}
		})
	}
}

// generator makes TestDiffRandom's requests from a seed. Keys come from a
// small set so that requests act on each other's items, and CAS arguments
// name uniques that earlier replies returned (see learn).
//
// It avoids requests whose replies from memcached depend on timing:
// exptimes that expire during the test, flush_all delays, lines over 2 KiB
// that memcached may see in parts (it closes the connection when a line
// other than a get is longer than that without its newline; corvid closes
// it however it arrives, as the README says), and lengths that make a
// server wait for data.
//
// It also keeps incr and decr from reading whatever memory follows a value
// in memcached: they parse a value that is all whitespace on into it, and
// reject a number from 2^63 to 2^64-1 as non-numeric if a '-' follows in it
// before a NUL byte. So values are never all whitespace, stored numbers stay
// below 10^18, incr adds at most 10^15, and appended data is never only
// digits and whitespace. TestDiffTranscripts covers the larger numbers.
type generator struct {
	r      *rand.Rand
	keys   []string
	seen   map[string][]int // CAS ids returned for each key, newest last
	lastID int
	pad    string // random value bytes, sliced by value
	next   *step  // made for a batch but kept for the next (see step.first)
}

// valueChars make up generated values. A value that a rejected command
// line leaves to be parsed as a command is then an unknown one ("add" at
// worst), never one that changes the stream such as "version" or "quit".
const valueChars = "0123456789abcdef"

// The keys: memcached accepts 250 bytes at most.
var (
	longKey    = strings.Repeat("l", 250)
	tooLongKey = strings.Repeat("t", 251)
	// oddKeys hold bytes other than letters and digits, all of which
	// memcached takes in a key but space, NUL (which ends its command
	// line) and "\n" (and "\r" before it): control bytes, other white
	// space, bytes over 0x7f, UTF-8 white space, a 250-byte one.
	oddKeys = []string{"ключ", "\x01\x02", "k\x7f\xff", "a\rb", "\tk", "k\v\f", "\xc2\xa0", "k\r",
		strings.Repeat("\x01é~", 62) + "zz"}
)

// binaryChars make up the short binary values: bytes a client may store
// that are not text, but no digit other than 0, so that incr and decr read
// such a value as a small number or none (see generator).
const binaryChars = "\x00\x01\t\n\r \x7f\x80\xffaZ0-+"

func newGenerator(seed uint64) *generator {
	g := &generator{
		r:    rand.New(rand.NewPCG(seed, 0x636f72766964)),
		seen: make(map[string][]int),
	}
	for i := range 10 {
		g.keys = append(g.keys, "k"+strconv.Itoa(i))
	}
	pad := make([]byte, *diffItemMax+16<<10)
	for i := range pad {
		pad[i] = valueChars[g.r.IntN(len(valueChars))]
	}
	g.pad = string(pad)
	return g
}

func (g *generator) chance(percent int) bool { return g.r.IntN(100) < percent }

func (g *generator) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// batch returns up to limit steps to pipeline together.
func (g *generator) batch(limit int) []step {
	n := min(limit, 1+g.r.IntN(*diffBatch))
	steps := make([]step, 0, n)
	if g.next != nil {
		steps = append(steps, *g.next)
		g.next = nil
	}
	for len(steps) < n {
		s := g.step()
		if s.first && len(steps) > 0 {
			g.next = &s
			break
		}
		steps = append(steps, s)
	}
	return steps
}

// learn notes the CAS ids in a normalised reply, for later cas requests.
func (g *generator) learn(reply []byte) {
	for line := range bytes.Lines(reply) {
		g.learnMeta(line)
		f := fields(line)
		if len(f) == 5 && string(f[0]) == "VALUE" && f[4][0] == '#' {
			id, _ := strconv.Atoi(string(f[4][1:]))
			key := string(f[1])
			g.seen[key] = append(g.seen[key], id)
			g.lastID = max(g.lastID, id)
		}
	}
}

// step returns the next step: one request, or sometimes a few sent
// together with no sentinel between them, as a client pipelines them.
func (g *generator) step() step {
	s := g.request()
	if s.first || s.stats || !g.chance(10) {
		return s
	}
	for range 1 + g.r.IntN(3) {
		t := g.request()
		if t.first || t.stats {
			continue // they need replies of their own
		}
		s.req += t.req
		s.versions += t.versions
	}
	return s
}

// request returns one request, its command line sometimes spaced out.
func (g *generator) request() step {
	s := g.request1()
	if g.chance(4) {
		s.req = g.spaced(s.req)
	}
	return s
}

func (g *generator) request1() step {
	if g.chance(*diffMeta) {
		return g.meta()
	}
	switch n := g.r.IntN(100); {
	case n < 36:
		return step{req: g.storage()}
	case n < 60:
		req := g.retrieval()
		return step{req: req, first: strings.Contains(req, tooLongKey)}
	case n < 70:
		return step{req: g.arith(), first: true}
	case n < 76:
		return step{req: g.deletion()}
	case n < 81:
		return step{req: g.touch()}
	case n < 82 && !*diffNoCAS:
		// Without CAS uniques, a flush_all also hides the items stored
		// in the rest of its second, in memcached as in corvid: their
		// replies then depend on when each server's clock ticks.
		return step{req: g.pick("flush_all", "flush_all "+g.num("0"), "flush_all noreply",
			"flush_all 0 noreply", "flush_all abc", "flush_all -1") + g.eol()}
	case n < 84:
		return step{req: g.pick("version", "version x") + g.eol(), versions: 1}
	case n < 86:
		return step{req: g.pick("verbosity "+g.num("0"), "verbosity 1", "verbosity 0 noreply",
			"verbosity", "verbosity abc", "verbosity 0 0 0", "verbosity -1", "verbosity noreply") + g.eol()}
	case n < 87:
		return step{req: g.pick("stats", "stats bogus") + g.eol(), stats: true}
	default:
		return step{req: g.junk()}
	}
}

// eol is mostly "\r\n"; memcached also accepts a bare "\n".
func (g *generator) eol() string {
	if g.chance(10) {
		return "\n"
	}
	return "\r\n"
}

func (g *generator) key() string {
	switch n := g.r.IntN(100); {
	case n < 88:
		return g.keys[g.r.IntN(len(g.keys))]
	case n < 94:
		return longKey
	default:
		return oddKeys[g.r.IntN(len(oddKeys))]
	}
}

// readKey is key for a request without a data block; it may hold a NUL,
// at which memcached ends the line.
func (g *generator) readKey() string {
	if g.chance(2) {
		return g.key() + "\x00" + g.pick("", "x", " 0 0 1")
	}
	return g.key()
}

// num returns the number s, sometimes written otherwise as memcached
// reads it with strtol and its kin: a plus sign, leading zeros, white
// space before or after.
func (g *generator) num(s string) string {
	if !g.chance(4) {
		return s
	}
	if strings.HasPrefix(s, "-") {
		return g.pick("-0"+s[1:], "\t"+s, s+"\t")
	}
	return g.pick("+"+s, "0"+s, "00"+s, "\t"+s, s+"\t", s+"\v", s+"\r", "+0"+s)
}

// spaced returns req with its command line's tokens separated by runs of
// spaces, sometimes with spaces before and after them, as memcached
// splits a line at each space and skips empty tokens.
func (g *generator) spaced(req string) string {
	end := strings.IndexByte(req, '\n')
	if end < 0 {
		return req
	}
	line, rest := req[:end], req[end:]
	cr := strings.HasSuffix(line, "\r")
	line = strings.TrimSuffix(line, "\r")
	var b strings.Builder
	if g.chance(30) {
		b.WriteString(strings.Repeat(" ", 1+g.r.IntN(3)))
	}
	for i, tok := range strings.Split(line, " ") {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", 1+g.r.IntN(3)))
		}
		b.WriteString(tok)
	}
	if g.chance(30) {
		b.WriteString(strings.Repeat(" ", 1+g.r.IntN(3)))
	}
	if cr {
		b.WriteByte('\r')
	}
	return b.String() + rest
}

func (g *generator) exptime() string {
	if g.chance(70) {
		return g.num("0")
	}
	// Negative and absolute times in the past expire at once; the others
	// outlast the test.
	return g.num(g.pick("-1", "100000", "2592000", "2592001", "2000000000"))
}

func (g *generator) noreply() string {
	if g.chance(15) {
		return " noreply"
	}
	return ""
}

func (g *generator) hex(n int) string {
	at := g.r.IntN(len(g.pad) - n + 1)
	return g.pad[at : at+n]
}

// value returns a value to store under key with flags: mostly small, some
// numbers for incr and decr, some binary, some up to and over the item
// size limit. Binary values are not appended or prepended: with numbers
// before or after them, incr could read past them (see generator).
func (g *generator) value(key, flags, cmd string) string {
	if cmd != "append" && cmd != "prepend" && g.chance(6) {
		b := make([]byte, g.r.IntN(16))
		for i := range b {
			b[i] = binaryChars[g.r.IntN(len(binaryChars))]
		}
		return string(b)
	}
	switch n := g.r.IntN(200); {
	case n < 50:
		return g.hex(g.r.IntN(12))
	case n < 120:
		return g.pick("0", "1", "9", "99", "100", "007", "999999999999999999",
			"18446744073709551616", "99999999999999999999", "-1", "12a", " 12", "12 ", "1 2", "",
			strconv.Itoa(g.r.IntN(1000)), strconv.FormatUint(g.r.Uint64N(1e18), 10))
	case n < 135:
		return g.hex(g.r.IntN(6)) + "\r\n" + g.hex(g.r.IntN(6))
	case n < 182:
		return g.hex(12 + g.r.IntN(3000))
	case n < 192:
		return g.hex(3000 + g.r.IntN(300000))
	case n < 197:
		// Around memcached's largest value: 1 MiB less its item header
		// (48 bytes), the key and its NUL, the CAS (8), the CRLF, and
		// 4 more bytes when the flags are not 0.
		limit := *diffItemMax - 48 - len(key) - 1 - 8 - 2
		if flags != "0" {
			limit -= 4
		}
		return g.hex(limit - 2 + g.r.IntN(5))
	default:
		return g.hex(*diffItemMax + g.r.IntN(4096))
	}
}

// storage returns a storage request. One in seven has one malformed or odd
// part, and then a short value, as memcached may parse it as commands.
func (g *generator) storage() string {
	cmd := g.pick("set", "set", "add", "replace", "append", "prepend", "cas", "cas")
	key := g.key()
	flags := "0"
	if g.chance(30) {
		flags = g.pick("1", "42", "4294967295")
	}
	exptime := g.exptime()
	cas := ""
	if cmd == "cas" {
		cas = " " + g.num(g.casArg(key))
	}
	nr := g.noreply()
	if !g.chance(15) {
		v := forIncr(cmd, g.value(key, flags, cmd))
		return fmt.Sprintf("%s %s %s %s %s%s%s%s%s\r\n", cmd, key, g.num(flags), exptime,
			g.num(strconv.Itoa(len(v))), cas, nr, g.eol(), v)
	}
	v := g.hex(g.r.IntN(10))
	if g.chance(20) {
		v += "\r\n" + g.hex(g.r.IntN(4))
	}
	v = forIncr(cmd, v)
	length := strconv.Itoa(len(v))
	data := v + "\r\n"
	switch g.r.IntN(8) {
	case 0: // more data than declared, or another end: a bad data chunk
		data = v + g.pick("", "", "\n", "\r", "\n\r") + g.hex(1+g.r.IntN(4)) + "\r\n"
	case 1:
		length = g.pick("-1", "abc", "2147483646", "2147483647", "")
	case 2:
		flags = g.pick("4294967296", "-1", "abc", "18446744073709551616", "")
	case 3:
		exptime = g.pick("abc", "1.5", "2147483648", "-2147483649", "")
	case 4:
		nr += g.pick(" extra", " extra noreply", strings.Repeat(" x", 20+g.r.IntN(10)))
	case 5:
		key = tooLongKey
	case 6:
		if cmd == "cas" {
			cas = g.pick("", " -1", " abc", " 18446744073709551616")
		} else {
			cmd = g.pick("SET", "sett", "cas")
		}
	default:
		key = g.pick("", "  "+key)
	}
	return fmt.Sprintf("%s %s %s %s %s%s%s%s%s", cmd, key, flags, exptime, length, cas, nr, g.eol(), data)
}

// forIncr adds a letter to data that incr or decr would read past (see
// generator): data that is all whitespace, and data for append or prepend
// that is all digits and whitespace and could make a stored number longer.
func forIncr(cmd, data string) string {
	digits := (cmd == "append" || cmd == "prepend") && strings.Trim(data, "0123456789 \r\n") == ""
	if data != "" && (digits || strings.TrimSpace(data) == "") {
		return data + "f"
	}
	return data
}

// casArg returns a CAS argument for key: the newest unique seen for key, an
// older or another key's one, or one no item has.
func (g *generator) casArg(key string) string {
	ids := g.seen[key]
	switch n := g.r.IntN(10); {
	case n < 5 && len(ids) > 0:
		return fmt.Sprintf("<cas#%d>", ids[len(ids)-1])
	case n < 8 && g.lastID > 0:
		return fmt.Sprintf("<cas#%d>", 1+g.r.IntN(g.lastID))
	default:
		return g.pick("0", "18446744073709551615")
	}
}

func (g *generator) retrieval() string {
	cmd := g.pick("get", "get", "gets", "gets", "gat", "gats")
	if g.chance(2) {
		cmd = "bget" // memcached's old name for get
	}
	n := 1 + g.r.IntN(3)
	if g.chance(15) {
		n = 1 + g.r.IntN(20)
	}
	if g.chance(3) {
		n = 20 + g.r.IntN(60) // tokenised in parts by memcached
	}
	var b strings.Builder
	b.WriteString(cmd)
	if cmd != "get" && cmd != "gets" {
		// Not a line memcached lets grow: keep it short (see generator).
		n = min(n, 6)
	}
	if cmd == "gat" || cmd == "gats" {
		if g.chance(10) {
			b.WriteString(g.pick("", " abc", " 1.5"))
		} else {
			b.WriteString(" " + g.exptime())
		}
	}
	if g.chance(5) {
		n = 0
	}
	for i := range n {
		b.WriteString(" ")
		if i > 0 && g.chance(1) {
			b.WriteString(tooLongKey + " ")
		}
		if i == n-1 {
			b.WriteString(g.readKey())
		} else {
			b.WriteString(g.key())
		}
	}
	if g.chance(3) {
		b.WriteString(" " + tooLongKey)
	}
	if g.chance(3) {
		b.WriteString(g.pick(" noreply", "  ", " "+g.key()+"  "))
	}
	b.WriteString(g.eol())
	return b.String()
}

func (g *generator) arith() string {
	cmd := g.pick("incr", "decr")
	key, delta, nr := g.readKey(), "1", g.noreply()
	switch n := g.r.IntN(100); {
	case n < 40:
		delta = g.num(delta)
	case n < 60:
		delta = g.num(g.pick("0", "5", "100", strconv.Itoa(g.r.IntN(1000)), strconv.FormatUint(g.r.Uint64N(1e15), 10)))
	case n < 80 && cmd == "decr": // clamps at 0; incr could pass 2^63 (see generator)
		delta = g.num(g.pick("18446744073709551615", "9223372036854775808", strconv.FormatUint(g.r.Uint64(), 10)))
	case n < 90:
		delta = g.pick("-1", "abc", "18446744073709551616", "", "1 x", "1 noreply x", "-0", "0x1", "1"+strings.Repeat(" x", 25))
	default:
		key = g.pick(tooLongKey, "")
	}
	return fmt.Sprintf("%s %s %s%s%s", cmd, key, delta, nr, g.eol())
}

func (g *generator) deletion() string {
	key := g.readKey()
	if g.chance(5) {
		key = tooLongKey
	}
	return "delete " + key + g.pick("", "", "", " noreply", " "+g.num("0"), " 0 noreply", " 1", " noreply x", " 0 0",
		" -0", " +0 noreply", strings.Repeat(" 0", 25)) + g.eol()
}

func (g *generator) touch() string {
	key, exptime := g.readKey(), g.exptime()
	switch g.r.IntN(10) {
	case 0:
		exptime = g.pick("abc", "", "1.5")
	case 1:
		key = tooLongKey
	}
	return "touch " + key + " " + exptime + g.noreply() + g.eol()
}

// overlong returns a line memcached refuses for its length however it
// arrives: not a get nor a gets, or with more than 100 spaces before one,
// and without a newline in its first 16 KB; a command line and data
// block may follow.
func (g *generator) overlong() string {
	if g.chance(20) {
		// Or quit, after other requests: the server writes their
		// replies, then closes.
		return g.pick("", "get k1 k2\r\n", "mg k1 v\r\nmn\r\n") + "quit" + g.pick("", " x") + g.eol() + "get k1\r\n"
	}
	var keys strings.Builder
	for keys.Len() < 16<<10 {
		keys.WriteString(" " + g.key())
	}
	line := g.pick("bget", "gat 0", "gats 0", "mg k1 v", "touch", "delete", "version", "stats",
		strings.Repeat(" ", 101)+"get", strings.Repeat(" ", 101)+"gets",
		"set k1 0 0 1", "foo") + keys.String()
	if g.chance(50) {
		line += g.eol() + "get k1\r\n"
	}
	return line
}

// junk returns a line that is not a valid command.
func (g *generator) junk() string {
	return g.pick("", "   ", "foo", "GET k1", "sets k1", "get", "gets", "gat 0", "incr", "decr k1",
		"delete", "touch k1", "cas k1 0 0 1", "set k1 0 0", "flush_all 0 0 0", "\x01\x02\x03",
		"ключ", "g", "get k1\r", "set k1 0 0 1 noreply extra", "m", "mz k1", "\x00get k1", "get \x00", "shutdown", "shutdown graceful",
		"touch k1 0"+strings.Repeat(" x", 25), "mn"+strings.Repeat(" x", 25), "bget", "quitx", "versions") + g.eol()
}

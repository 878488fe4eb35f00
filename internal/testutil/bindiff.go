package testutil

// A randomized differential of the binary protocol: a seeded stream of
// binary requests, valid and not, goes to two servers (corvid or a corvid
// proxy, and a memcached), and their response frames must be the same.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BinaryDiffConfig says what BinaryDiff sends.
type BinaryDiffConfig struct {
	Seed     uint64
	Requests int // requests to send (frames, sentinels not counted)
	Batch    int // most requests pipelined in one write
	// ItemMax is the servers' item size limit (memcached -I).
	ItemMax int
	// ValueMax, when not 0, bounds the values sent (a proxy refuses a
	// value over 1 MiB itself).
	ValueMax int
	// SameCAS requires the two servers to give out the same CAS uniques,
	// not only uniques that name the same item versions.
	SameCAS bool
	// KeyScoped sends only requests routed by key, besides noop,
	// version, quit and frames refused for their header: no flush, no
	// stat.
	KeyScoped bool
	// NoStat sends no stat requests.
	NoStat bool
}

// Opcodes of the binary protocol, as memcached 1.6.18 numbers them.
const (
	bdGet, bdSet, bdAdd, bdReplace, bdDelete, bdIncr, bdDecr, bdQuit = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
	bdFlush, bdGetQ, bdNoop, bdVersion, bdGetK, bdGetKQ, bdAppend    = 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e
	bdPrepend, bdStat, bdSetQ, bdAddQ, bdReplaceQ, bdDeleteQ         = 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14
	bdIncrQ, bdDecrQ, bdQuitQ, bdFlushQ, bdAppendQ, bdPrependQ       = 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a
	bdVerbosity, bdTouch, bdGAT, bdGATQ, bdGATK, bdGATKQ             = 0x1b, 0x1c, 0x1d, 0x1e, 0x23, 0x24
	bdSASLList, bdSASLAuth, bdSASLStep                               = 0x20, 0x21, 0x22
)

// bdSentinelOpaque marks the noop that ends each batch; generated
// requests never use it.
const bdSentinelOpaque = 0x5e571e1

// bdFrame is one generated request.
type bdFrame struct {
	req BinaryRequest
	// key names the item whose CAS uniques the responses carry, for
	// numbering them.
	key string
	// casKey, casID: the request's CAS is the casID'th unique of casKey
	// the server returned (0: the one in req).
	casKey string
	casID  int
	// tail is sent after the frame: bytes a server skips or reads as the
	// next request.
	tail []byte
	// first: the frame starts a batch, sent after every earlier response
	// has been read (see bdGen.batch).
	first bool
	// closes: the server answers the frame (or not) and closes the
	// connection. Nothing follows it in its batch, not even the sentinel:
	// a server that closes a connection with bytes unread makes the
	// system reset it, which may lose responses the client has not yet
	// read.
	closes bool
}

// bdPeer is one of the two servers.
type bdPeer struct {
	name    string
	addr    string
	conn    *Conn
	cas     map[string]map[uint64]int // per key: unique → number
	casVals map[string][]uint64       // per key: uniques in order
	all     []uint64                  // every unique, in order of first appearance
	allSeen map[uint64]bool
	keys    map[uint32]string // opaque → key
}

// BinaryDiff sends cfg's request stream to the servers at addrs (the one
// under test first, then memcached) in pipelined batches, each split into
// writes at random byte boundaries and ended by a noop, and fails the test
// at the first batch whose responses differ, or whose connection one
// server closes and the other not. Responses are compared byte for byte,
// but for CAS uniques (numbered per key, in order of appearance), the
// version string, and the stat responses bearing a stat (left out).
func BinaryDiff(t testing.TB, cfg BinaryDiffConfig, names, addrs [2]string) {
	t.Helper()
	peers := [2]*bdPeer{}
	for i := range peers {
		peers[i] = &bdPeer{name: names[i], addr: addrs[i], cas: map[string]map[uint64]int{},
			casVals: map[string][]uint64{}, allSeen: map[uint64]bool{}, keys: map[uint32]string{}}
		peers[i].dial(t)
	}
	g := newBDGen(cfg)
	var history []string
	// A debugging aid: CORVID_BINDIFF_PROBE=key gets key from both servers
	// after each batch, and fails at the first batch after which they differ.
	probe := os.Getenv("CORVID_BINDIFF_PROBE")
	probeFrom, _ := strconv.Atoi(os.Getenv("CORVID_BINDIFF_PROBE_FROM"))
	for sent := 0; sent < cfg.Requests; {
		batch := g.batch(cfg.Requests - sent)
		sent += len(batch)
		enc := [2][]byte{}
		for i, p := range peers {
			enc[i] = p.encode(batch)
		}
		if len(enc[0]) != len(enc[1]) {
			t.Fatalf("seed %d: batches of %d and %d bytes", cfg.Seed, len(enc[0]), len(enc[1]))
		}
		// A request the server closes the connection for is written
		// whole and apart, after a pause: bytes of it that arrived after
		// the server closed would make the system reset the connection,
		// which may lose responses not yet read. (corvid judges a header
		// as soon as it arrives, see README, and memcached reads as much
		// of a request as its buffer takes.)
		closing := 0
		if last := batch[len(batch)-1]; last.closes {
			closing = len(last.req.Bytes()) + len(last.tail)
		}
		splits := g.splits(len(enc[0]) - closing)
		if closing > 0 && closing < len(enc[0]) {
			splits = append(splits, len(enc[0])-closing)
		}
		errc := make(chan error, 2)
		for i, p := range peers {
			go func() { errc <- p.send(enc[i], splits, closing > 0) }()
		}
		var got [2]string
		var closed [2]bool
		for i, p := range peers {
			got[i], closed[i] = p.recv()
		}
		if closed[0] || closed[1] {
			for _, p := range peers {
				p.conn.Close() // unblocks a writer
			}
		}
		for range peers {
			<-errc // a write error shows as a closed connection
		}
		if cfg.SameCAS && fmt.Sprint(peers[0].all) != fmt.Sprint(peers[1].all) {
			for i, p := range peers {
				got[i] += fmt.Sprintf("(CAS uniques %v)\n", p.all)
			}
		}
		desc := describeBatch(batch) + fmt.Sprintf("  (%d bytes written in pieces ending at %v)\n", len(enc[0]), splits)
		late := strings.HasSuffix(got[0]+got[1], "<no response in time>\n")
		if got[0] != got[1] || late {
			var b strings.Builder
			if got[0] == got[1] {
				b.WriteString("both servers failed to answer in time\n")
			}
			fmt.Fprintf(&b, "seed %d: responses to batch %d differ\nrequests:\n%s", cfg.Seed, len(history), desc)
			for i, p := range peers {
				fmt.Fprintf(&b, "%s:\n%s", p.name, got[i])
			}
			b.WriteString("earlier batches (newest last):\n")
			for _, h := range history[max(0, len(history)-4):] {
				b.WriteString(h)
				b.WriteString("--\n")
			}
			b.WriteString(keyHistory(history, batch))
			if path := os.Getenv("CORVID_BINDIFF_LOG"); path != "" {
				// the whole stream, for a closer look
				all := strings.Join(append(history, desc), "--\n")
				if err := os.WriteFile(path, []byte(all), 0o644); err != nil {
					t.Log(err)
				}
			}
			t.Fatal(b.String())
		}
		history = append(history, desc)
		if probe != "" && !closed[0] && !closed[1] && len(history) > probeFrom {
			var pr [2]string
			for i, p := range peers {
				p.conn.Send((&BinaryRequest{Opcode: bdGetK, Key: []byte(probe), Opaque: 1}).Bytes())
				r, err := p.conn.ReadBinary()
				pr[i] = fmt.Sprint(r, err)
			}
			if pr[0] != pr[1] {
				t.Fatalf("seed %d: after batch %d, probe %q: %s: %s; %s: %s\nbatch:\n%s", cfg.Seed, len(history)-1, probe,
					names[0], pr[0], names[1], pr[1], desc)
			}
		}
		for i, p := range peers {
			if closed[i] {
				p.dial(t)
			}
		}
		g.learn(peers[1])
	}
}

// keyHistory returns the earlier requests that name a key of batch.
func keyHistory(history []string, batch []bdFrame) string {
	var b strings.Builder
	for _, f := range batch {
		if len(f.req.Key) == 0 {
			continue
		}
		k := " key=" + Quote(f.req.Key, 60) + " "
		var lines []string
		for i, h := range history {
			for l := range strings.Lines(h) {
				if strings.Contains(l, k) {
					lines = append(lines, fmt.Sprintf("  batch %d:%s", i, l))
				}
			}
		}
		fmt.Fprintf(&b, "earlier requests naming%s(last 12 of %d):\n%s", k, len(lines),
			strings.Join(lines[max(0, len(lines)-12):], ""))
	}
	return b.String()
}

func describeBatch(batch []bdFrame) string {
	var b strings.Builder
	for _, f := range batch {
		r := f.req
		fmt.Fprintf(&b, "  magic=%02x op=%02x dt=%02x vb=%d opaque=%x ext=%x key=%s value=%s", r.Magic, r.Opcode,
			r.DataType, r.Reserved, r.Opaque, r.Extras, Quote(r.Key, 60), Quote(r.Value, 60))
		if r.KeyLen != nil || r.ExtLen != nil || r.BodyLen != nil {
			fmt.Fprintf(&b, " lengths=%v/%v/%v", deref(r.KeyLen), deref(r.ExtLen), deref(r.BodyLen))
		}
		if f.casID != 0 {
			fmt.Fprintf(&b, " cas=%q#%d", f.casKey, f.casID)
		} else if r.CAS != 0 {
			fmt.Fprintf(&b, " cas=%d", r.CAS)
		}
		if len(f.tail) > 0 {
			fmt.Fprintf(&b, " tail=%s", Quote(f.tail, 60))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func deref[T any](p *T) any {
	if p == nil {
		return "-"
	}
	return *p
}

// dial connects, and sends a noop first: a connection's first byte
// chooses its protocol, and a frame with a bad magic byte must not.
func (p *bdPeer) dial(t testing.TB) {
	t.Helper()
	p.conn = Dial(t, p.addr)
	p.conn.Timeout = 3 * time.Second
	p.conn.Send((&BinaryRequest{Opcode: bdNoop, Opaque: bdSentinelOpaque}).Bytes())
	if r, err := p.conn.ReadBinary(); err != nil || r.Opcode() != bdNoop || r.Status() != 0 {
		t.Fatalf("%s: noop on a new connection: %v %v", p.name, r, err)
	}
}

// encode returns the batch as sent to this server, ended by the sentinel.
func (p *bdPeer) encode(batch []bdFrame) []byte {
	var out []byte
	for _, f := range batch {
		req := f.req
		if f.casID != 0 {
			req.CAS = 0
			if vals := p.casVals[f.casKey]; f.casID <= len(vals) {
				req.CAS = vals[f.casID-1]
			}
		}
		if f.key != "" || req.Key != nil {
			p.keys[req.Opaque] = string(req.Key)
		}
		out = append(out, req.Bytes()...)
		out = append(out, f.tail...)
	}
	if len(batch) > 0 && batch[len(batch)-1].closes {
		return out
	}
	return append(out, (&BinaryRequest{Opcode: bdNoop, Opaque: bdSentinelOpaque}).Bytes()...)
}

// send writes b in pieces cut at splits, pausing between them now and then
// so that the server reads them apart, and before the last piece when
// pauseLast is set.
func (p *bdPeer) send(b []byte, splits []int, pauseLast bool) error {
	at := 0
	ends := append(slices.Clip(splits), len(b)) // splits is shared
	for i, s := range ends {
		if pauseLast && i == len(ends)-1 && i > 0 {
			time.Sleep(2 * time.Millisecond)
		}
		p.conn.nc.SetWriteDeadline(time.Now().Add(p.conn.Timeout))
		if _, err := p.conn.nc.Write(b[at:s]); err != nil {
			return err
		}
		at = s
		if i%2 == 1 {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// recv reads the responses through the sentinel's and returns them
// normalized, one a line, and whether the server closed the connection
// (then "<closed>" ends them).
func (p *bdPeer) recv() (string, bool) {
	var b strings.Builder
	for {
		r, err := p.conn.ReadBinary()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				b.WriteString("<no response in time>\n")
			case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err):
				b.WriteString("<closed>\n")
			default:
				fmt.Fprintf(&b, "<%v>\n", err)
			}
			return b.String(), true
		}
		if r.Opaque() == bdSentinelOpaque && r.Opcode() == bdNoop {
			return b.String(), false
		}
		if r.Opcode() == bdStat && r.Status() == 0 && r.KeyLen() > 0 {
			// Not compared, nor whether there are any: "items" lists the
			// slab classes holding items, flushed ones too until they are
			// reaped (see bdGen.flush).
			continue
		}
		b.WriteString(p.normalize(r))
		b.WriteByte('\n')
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// normalize formats a response, its CAS numbered per key.
func (p *bdPeer) normalize(r *BinaryResponse) string {
	cas := "0"
	if v := r.CAS(); v != 0 {
		key := p.keys[r.Opaque()]
		ids := p.cas[key]
		if ids == nil {
			ids = map[uint64]int{}
			p.cas[key] = ids
		}
		id, ok := ids[v]
		if !ok {
			p.casVals[key] = append(p.casVals[key], v)
			id = len(p.casVals[key])
			ids[v] = id
		}
		if !p.allSeen[v] {
			p.allSeen[v] = true
			p.all = append(p.all, v)
		}
		cas = fmt.Sprintf("%q#%d", key, id)
	}
	body := string(r.Body)
	if r.Opcode() == bdVersion && r.Status() == 0 {
		body = "<version>"
	}
	return fmt.Sprintf("op=%02x keylen=%d extlen=%d dt=%02x status=%04x bodylen=%d opaque=%x cas=%s body=%s",
		r.Opcode(), r.KeyLen(), r.ExtLen(), r.Header[5], r.Status(), len(r.Body), r.Opaque(), cas, Quote([]byte(body), 200))
}

// bdGen generates the request stream.
type bdGen struct {
	cfg    BinaryDiffConfig
	r      *rand.Rand
	keys   []string
	known  map[string]int // uniques memcached returned per key
	opaque uint32
	pad    []byte
	next   *bdFrame
	// flushed: a flush without a delay was sent (see flush).
	flushed bool
}

// bdValueChars make up values; bdBinaryChars short binary ones, with no
// digit but 0, so that incr reads them as a small number or none.
const (
	bdValueChars  = "0123456789abcdef"
	bdBinaryChars = "\x00\x01\t\n\r \x7f\x80\xffaZ0-+"
)

var (
	bdLongKey    = strings.Repeat("l", 250)
	bdTooLongKey = strings.Repeat("t", 251)
	// A binary key may hold any byte.
	bdOddKeys = []string{"ключ", "\x00", "a b", "k\r\n", "\xff\xfe", "\x80", "k\x00v", strings.Repeat("\x01 é", 62) + "zz"}
)

func newBDGen(cfg BinaryDiffConfig) *bdGen {
	g := &bdGen{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, 0x62696e617279)), known: map[string]int{}}
	for i := range 10 {
		g.keys = append(g.keys, "k"+strconv.Itoa(i))
	}
	g.pad = make([]byte, cfg.ItemMax+16<<10)
	for i := range g.pad {
		g.pad[i] = bdValueChars[g.r.IntN(len(bdValueChars))]
	}
	return g
}

func (g *bdGen) chance(percent int) bool { return g.r.IntN(100) < percent }

func pick[T any](g *bdGen, options ...T) T { return options[g.r.IntN(len(options))] }

// learn notes how many uniques memcached has returned for each key.
func (g *bdGen) learn(p *bdPeer) {
	for k, v := range p.casVals {
		g.known[k] = len(v)
	}
}

// nextOpaque returns a new opaque: distinct from every other, so that a
// response names its request, and from the sentinel's.
func (g *bdGen) nextOpaque() uint32 {
	for {
		g.opaque++
		o := g.opaque * 0x9e3779b1
		if o != bdSentinelOpaque && o != 0 {
			return o
		}
	}
}

// splits returns where to cut n bytes into writes.
func (g *bdGen) splits(n int) []int {
	if n < 2 || g.chance(40) {
		return nil
	}
	var s []int
	for range 1 + g.r.IntN(5) {
		s = append(s, 1+g.r.IntN(n-1))
	}
	// sorted, distinct
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// batch returns up to limit frames to pipeline together. A frame marked
// first starts a batch: an incr or decr, as memcached 1.6.18 pads the
// number in place only if no unwritten response holds the item; and a
// frame with a bad magic byte, on which memcached drops the responses it
// has not written.
func (g *bdGen) batch(limit int) []bdFrame {
	n := min(limit, 1+g.r.IntN(g.cfg.Batch))
	var frames []bdFrame
	if g.next != nil {
		frames = append(frames, *g.next)
		g.next = nil
	}
	for len(frames) < n && (len(frames) == 0 || !frames[len(frames)-1].closes) {
		f := g.frame()
		if f.first && len(frames) > 0 {
			g.next = &f
			break
		}
		frames = append(frames, f)
	}
	return frames
}

func (g *bdGen) key() string {
	switch n := g.r.IntN(100); {
	case n < 88:
		return g.keys[g.r.IntN(len(g.keys))]
	case n < 93:
		return bdLongKey
	default:
		return bdOddKeys[g.r.IntN(len(bdOddKeys))]
	}
}

func (g *bdGen) exptime() uint32 {
	if g.chance(70) {
		return 0
	}
	// Absolute times in the past (2592001: 30 days and a second) expire
	// at once; the others outlast the test.
	return pick[uint32](g, 100000, 2592000, 2592001, 2000000000, 0xffffffff)
}

func (g *bdGen) flags() uint32 {
	if g.chance(70) {
		return 0
	}
	return pick[uint32](g, 1, 42, 0xffffffff)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// value returns a value for key, as TestDiffRandom's generator does (see
// there why no value is all white space and appended data never all
// digits and white space).
func (g *bdGen) value(key string, flags uint32, cat bool) []byte {
	v := g.value1(key, flags, cat)
	if g.cfg.ValueMax > 0 && len(v) > g.cfg.ValueMax {
		v = v[:g.cfg.ValueMax]
	}
	digits := cat && len(bytes.Trim(v, "0123456789 \r\n")) == 0
	if len(v) > 0 && (digits || len(bytes.TrimSpace(v)) == 0) {
		v = append(v, 'f')
	}
	return v
}

func (g *bdGen) hex(n int) []byte {
	at := g.r.IntN(len(g.pad) - n + 1)
	return append([]byte(nil), g.pad[at:at+n]...)
}

func (g *bdGen) value1(key string, flags uint32, cat bool) []byte {
	if !cat && g.chance(6) {
		b := make([]byte, g.r.IntN(16))
		for i := range b {
			b[i] = bdBinaryChars[g.r.IntN(len(bdBinaryChars))]
		}
		return b
	}
	switch n := g.r.IntN(200); {
	case n < 50:
		return g.hex(g.r.IntN(12))
	case n < 120:
		return []byte(pick(g, "0", "1", "9", "99", "100", "007", "999999999999999999",
			"18446744073709551616", "-1", "12a", " 12", "12 ", "1 2", "",
			strconv.Itoa(g.r.IntN(1000)), strconv.FormatUint(g.r.Uint64N(1e18), 10)))
	case n < 135:
		return append(append(g.hex(g.r.IntN(6)), "\r\n"...), g.hex(g.r.IntN(6))...)
	case n < 184:
		return g.hex(12 + g.r.IntN(3000))
	case n < 193:
		return g.hex(3000 + g.r.IntN(300000))
	case n < 198:
		// Around memcached's largest item (see TestDiffRandom).
		limit := g.cfg.ItemMax - 48 - len(key) - 1 - 8 - 2
		if flags != 0 {
			limit -= 4
		}
		return g.hex(limit - 2 + g.r.IntN(5))
	default:
		return g.hex(g.cfg.ItemMax + g.r.IntN(4096))
	}
}

// cas sets f's CAS: mostly none, else the newest unique of its key,
// another one, or one no item has.
func (g *bdGen) cas(f *bdFrame, percent int) {
	if !g.chance(percent) {
		return
	}
	key := string(f.req.Key)
	switch n := g.r.IntN(10); {
	case n < 5 && g.known[key] > 0:
		f.casKey, f.casID = key, g.known[key]
	case n < 7 && g.known[key] > 0:
		f.casKey, f.casID = key, 1+g.r.IntN(g.known[key])
	case n < 8:
		// Servers behind a proxy give out uniques each of its own: one
		// of another key's might then be this key's.
		other := g.keys[g.r.IntN(len(g.keys))]
		if g.known[other] > 0 && g.cfg.SameCAS {
			f.casKey, f.casID = other, 1+g.r.IntN(g.known[other])
		}
	default:
		f.req.CAS = pick[uint64](g, 1<<60, 1<<64-1)
	}
}

func (g *bdGen) frame() bdFrame {
	f := g.frame1()
	if g.chance(3) {
		f.req.DataType = byte(1 + g.r.IntN(255))
	}
	if g.chance(3) {
		f.req.Reserved = uint16(1 + g.r.IntN(0xffff))
	}
	return f
}

func (g *bdGen) frame1() bdFrame {
	switch n := g.r.IntN(100); {
	case n < 28:
		return g.storage()
	case n < 46:
		return g.get()
	case n < 54:
		return g.cat()
	case n < 60:
		return g.delete()
	case n < 68:
		return g.arith()
	case n < 75:
		return g.touch()
	case n < 77 && !g.cfg.KeyScoped:
		return g.flush()
	case n < 80:
		return g.simple(pick[byte](g, bdNoop, bdVersion))
	case n < 82 && !g.cfg.KeyScoped && !g.cfg.NoStat:
		f := g.simple(bdStat)
		if g.chance(60) {
			f.req.Key = []byte(pick(g, "settings", "items", "slabs", "sizes", "reset", "detail on",
				"detail off", "detail dump", "bogus", "conns", "extstore"))
		}
		return f
	case n < 85:
		return g.unknown()
	case n < 86:
		f := g.simple(pick[byte](g, bdQuit, bdQuitQ))
		f.closes = true
		return f
	case n < 95:
		return g.malformed()
	default:
		if g.chance(20) {
			f := g.simple(bdGet)
			f.req.Magic = pick[byte](g, 0x81, 0x00, 0x7f, 'g', 0xff)
			f.first, f.closes = true, true
			return f
		}
		return g.storage()
	}
}

func (g *bdGen) simple(op byte) bdFrame {
	return bdFrame{req: BinaryRequest{Opcode: op, Opaque: g.nextOpaque()}}
}

func (g *bdGen) keyed(op byte) bdFrame {
	f := g.simple(op)
	f.key = g.key()
	f.req.Key = []byte(f.key)
	return f
}

func (g *bdGen) storage() bdFrame {
	f := g.keyed(pick[byte](g, bdSet, bdSet, bdAdd, bdReplace, bdSetQ, bdAddQ, bdReplaceQ))
	flags := g.flags()
	f.req.Extras = append(be32(flags), be32(g.exptime())...)
	f.req.Value = g.value(f.key, flags, false)
	g.cas(&f, 25)
	return f
}

func (g *bdGen) get() bdFrame {
	return g.keyed(pick[byte](g, bdGet, bdGetQ, bdGetK, bdGetKQ))
}

func (g *bdGen) cat() bdFrame {
	f := g.keyed(pick[byte](g, bdAppend, bdPrepend, bdAppendQ, bdPrependQ))
	f.req.Value = g.value(f.key, 0, true)
	g.cas(&f, 20)
	return f
}

func (g *bdGen) delete() bdFrame {
	f := g.keyed(pick[byte](g, bdDelete, bdDeleteQ))
	g.cas(&f, 20)
	return f
}

func (g *bdGen) arith() bdFrame {
	f := g.keyed(pick[byte](g, bdIncr, bdDecr, bdIncrQ, bdDecrQ))
	var delta uint64
	switch n := g.r.IntN(100); {
	case n < 40:
		delta = 1
	case n < 80:
		delta = pick(g, 0, 5, 100, g.r.Uint64N(1000), g.r.Uint64N(1e15))
	case f.req.Opcode == bdDecr || f.req.Opcode == bdDecrQ:
		// decr clamps at 0; incr could pass 2^63 (see TestDiffRandom)
		delta = pick(g, 1<<64-1, 1<<63, g.r.Uint64())
	}
	initial := pick(g, 0, 1, 10, g.r.Uint64N(1e18))
	exp := g.exptime()
	if g.chance(30) {
		exp = 0xffffffff // do not create
	}
	ext := binary.BigEndian.AppendUint64(nil, delta)
	ext = binary.BigEndian.AppendUint64(ext, initial)
	f.req.Extras = append(ext, be32(exp)...)
	g.cas(&f, 15)
	f.first = true
	return f
}

func (g *bdGen) touch() bdFrame {
	f := g.keyed(pick[byte](g, bdTouch, bdGAT, bdGATQ, bdGATK, bdGATKQ))
	f.req.Extras = be32(g.exptime())
	g.cas(&f, 5)
	if g.chance(5) {
		// A body past the extras and key is read as the next request.
		inner := g.keyed(pick[byte](g, bdGetK, bdNoop, bdVersion))
		if inner.req.Opcode != bdGetK {
			inner.req.Key = nil
		}
		f.req.Value = inner.req.Bytes()
	}
	return f
}

func (g *bdGen) flush() bdFrame {
	f := g.simple(pick[byte](g, bdFlush, bdFlushQ))
	if g.chance(50) {
		f.req.Extras = be32(0)
		if !g.flushed {
			// A delay of a few seconds would make replies depend on
			// time. A flush with a delay (or an absolute time in the
			// past, which memcached takes as none) clears the flush
			// time, which brings back the items an earlier flush hid
			// and memcached has not yet reaped; which of them it has
			// reaped depends on how its allocations walked its LRUs.
			// So no delay follows a flush without one.
			f.req.Extras = be32(pick[uint32](g, 0, 100000, 2592001, 2000000000, 0xffffffff))
		}
	}
	if len(f.req.Extras) == 0 || binary.BigEndian.Uint32(f.req.Extras) == 0 {
		g.flushed = true
	}
	return f
}

// unknown returns a request memcached 1.6.18 does not serve, with extras,
// key and value: it reads the extras and key, then skips as many bytes as
// the body's length, which the tail provides.
func (g *bdGen) unknown() bdFrame {
	op := pick(g, bdVerbosity, bdSASLList, bdSASLAuth, bdSASLStep, byte(0x1f), byte(0x25+g.r.IntN(0xff-0x25+1)))
	f := g.simple(op)
	if op == bdSASLList || op == bdSASLAuth || op == bdSASLStep {
		// Without SASL, memcached skips the value after the key (the
		// extras and key of an ill-formed one close the connection).
		if op != bdSASLList {
			f.req.Key = []byte(pick(g, "PLAIN", "CRAM-MD5"))
			f.req.Value = []byte("\x00user\x00pass")
		}
		if g.chance(10) {
			f.req.Extras = be32(1)
			f.closes = true
		}
		return f
	}
	if op == bdVerbosity || g.chance(30) {
		f.req.Extras = be32(uint32(g.r.IntN(3)))
	}
	if g.chance(50) {
		f.req.Key = []byte(pick(g, "PLAIN", "k1", bdLongKey))
	}
	if g.chance(50) {
		f.req.Value = g.hex(g.r.IntN(20))
	}
	f.tail = bytes.Repeat([]byte{'x'}, len(f.req.Extras)+len(f.req.Key))
	return f
}

// malformed returns a request that memcached answers with an error and
// closes the connection for.
func (g *bdGen) malformed() bdFrame {
	var f bdFrame
	switch g.r.IntN(7) {
	case 0: // a key over 250 bytes
		f = g.keyed(pick[byte](g, bdGet, bdGetK, bdDelete, bdTouch, bdSet, bdAppend, bdIncr, bdStat))
		f.req.Key = []byte(pick(g, bdTooLongKey, strings.Repeat("x", 252+g.r.IntN(300))))
		switch f.req.Opcode {
		case bdSet:
			f.req.Extras = make([]byte, 8)
		case bdTouch:
			f.req.Extras = make([]byte, 4)
		case bdIncr:
			f.req.Extras = make([]byte, 20)
		}
	case 1: // extras of the wrong length
		f = g.any()
		n := len(f.req.Extras)
		m := pick(g, 0, 4, 8, 20, 1, 255)
		if m == n {
			m = n + 1
		}
		if f.req.Opcode == bdFlush || f.req.Opcode == bdFlushQ {
			m = pick(g, 1, 8, 20) // 0 and 4 are both right
		}
		f.req.Extras = g.hex(m)
	case 2: // no key where one is needed
		f = g.any()
		if len(f.req.Key) == 0 {
			f.req.Key = []byte("k1")
		} else {
			f.req.Key = nil
		}
		if f.req.Opcode == bdStat {
			f.req.Extras = []byte{0}
		}
	case 3: // a value where none is allowed
		f = g.simple(pick[byte](g, bdGet, bdGetKQ, bdDelete, bdIncr, bdNoop, bdVersion, bdQuit, bdFlush))
		switch f.req.Opcode {
		case bdGet, bdGetKQ, bdDelete, bdIncr:
			f.req.Key = []byte("k1")
		}
		if f.req.Opcode == bdIncr {
			f.req.Extras = make([]byte, 20)
		}
		f.req.Value = g.hex(1 + g.r.IntN(20))
	case 4: // a key and extras longer than the body
		f = g.any()
		kl := len(f.req.Key) + len(f.req.Extras) + 1 + g.r.IntN(300)
		bl := uint32(g.r.IntN(len(f.req.Key) + len(f.req.Extras) + 1))
		f.req.KeyLen, f.req.BodyLen = &kl, &bl
		b := f.req.Bytes()
		// memcached reads the extras and key before judging
		f.tail = bytes.Repeat([]byte{'z'}, max(0, 24+len(f.req.Extras)+kl-len(b)))
	case 5: // a body longer than the opcode allows, not sent
		f = g.simple(pick[byte](g, bdGet, bdDelete, bdNoop, bdVersion))
		if f.req.Opcode == bdGet || f.req.Opcode == bdDelete {
			f.req.Key = []byte("k2")
		}
		bl := uint32(len(f.req.Key) + pick(g, 1, 100, 1<<20, 2<<20, 1<<30))
		f.req.BodyLen = &bl
	default: // a key where none is allowed
		f = g.simple(pick[byte](g, bdNoop, bdVersion, bdQuit, bdFlush, bdQuitQ, bdFlushQ))
		f.req.Key = []byte("k3")
	}
	f.key = ""
	f.casID = 0
	f.closes = true
	if len(f.req.Value) > 512 {
		// what the server reads of it at once (see BinaryDiff)
		f.req.Value = f.req.Value[:512]
	}
	return f
}

// any returns a well-formed request of any served opcode.
func (g *bdGen) any() bdFrame {
	switch g.r.IntN(9) {
	case 0:
		return g.storage()
	case 1:
		return g.get()
	case 2:
		return g.cat()
	case 3:
		return g.delete()
	case 4:
		f := g.arith()
		f.first = false
		return f
	case 5:
		f := g.touch()
		f.req.Value = nil
		return f
	case 6:
		return g.flush()
	case 7:
		return g.simple(bdStat)
	default:
		return g.simple(pick[byte](g, bdNoop, bdVersion, bdQuit))
	}
}

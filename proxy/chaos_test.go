package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
)

// A chaosRelay forwards a loopback port to a server and, on demand,
// delays the server's replies past the proxy's timeout, refuses and
// closes connections, injects garbage or cuts a reply short.
type chaosRelay struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // relayNormal ...
	once   atomic.Int32 // a one-shot fault for the next reply chunk: relayGarbage, relayTruncate, relayDuplicate
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

const (
	relayNormal int32 = iota
	relaySlow
	relayDown
	relayGarbage
	relayTruncate
	relayDuplicate
)

func startRelay(t *testing.T, target string) *chaosRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &chaosRelay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		ln.Close()
		r.closeAll()
		r.wg.Wait()
	})
	return r
}

func (r *chaosRelay) addr() string { return r.ln.Addr().String() }

func (r *chaosRelay) track(nc net.Conn) {
	r.mu.Lock()
	r.conns[nc] = true
	r.mu.Unlock()
}

func (r *chaosRelay) closeAll() {
	r.mu.Lock()
	for nc := range r.conns {
		nc.Close()
		delete(r.conns, nc)
	}
	r.mu.Unlock()
}

func (r *chaosRelay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.mode.Load() == relayDown {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		r.track(in)
		r.track(out)
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			io.Copy(out, in)
			out.Close()
			in.Close()
		}()
		go func() {
			defer r.wg.Done()
			defer in.Close()
			defer out.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := out.Read(buf)
				if n > 0 {
					if r.mode.Load() == relaySlow {
						time.Sleep(400 * time.Millisecond)
					}
					chunk := buf[:n]
					switch r.once.Swap(relayNormal) {
					case relayGarbage:
						// Between replies (the server writes whole
						// ones): garbage within a line could pass for
						// a reply, which no framing can tell.
						cut := n * rand.IntN(2)
						chunk = append(append(append([]byte(nil), buf[:cut]...), "GARBAGE\r\n"...), buf[cut:n]...)
					case relayDuplicate:
						// Binary replies carry their request's opcode and
						// opaque, a get's its keys, a meta one its
						// opaque and key: those sent twice are
						// detectable (a text reply without a key is not).
						if n >= 24 && chunk[0] == 0x81 {
							if first := 24 + int(binary.BigEndian.Uint32(chunk[8:])); first <= n {
								chunk = append(append([]byte(nil), chunk[:first]...), chunk...)
							}
						} else if bytes.HasPrefix(chunk, []byte("VALUE ")) || bytes.HasPrefix(chunk, []byte("VA ")) {
							chunk = append(append([]byte(nil), chunk...), chunk...)
						}
					case relayTruncate:
						in.Write(buf[:rand.IntN(n)])
						return
					}
					if _, err := in.Write(chunk); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// chaosConf is a pool over the relays named in use, with a short timeout
// and quick ejection.
func chaosConf(relays []*chaosRelay, use []bool) string {
	var addrs []string
	for i, r := range relays {
		if use[i] {
			addrs = append(addrs, r.addr())
		}
	}
	return poolYAML("127.0.0.1:0", addrs, "timeout: 200", "auto_eject_hosts: true",
		"server_failure_limit: 2", "server_retry_timeout: 150", "server_connections: 2")
}

// TestChaosRepliesMatchRequests: clients pipeline random mixes of text,
// meta and binary requests (values encode their keys, meta requests carry
// opaques and k, binary ones unique opaques) while servers turn slow past
// the timeout, refuse connections, send garbage or cut replies short,
// are ejected and come back, and the configuration is reloaded with
// servers removed and added; some clients hang up mid-request or
// mid-pipeline. Every reply a client reads must answer the request it
// stands for, in order: a value only for a key the request asked, an
// opaque only of a request awaiting its reply, an error otherwise.
func TestChaosRepliesMatchRequests(t *testing.T) {
	const seed = 20261207
	t.Logf("seed %d", seed)
	backends := startCorvids(t, 3)
	relays := make([]*chaosRelay, 3)
	for i, a := range backends {
		relays[i] = startRelay(t, a)
	}
	all := []bool{true, true, true}
	p := startProxy(t, chaosConf(relays, all))
	addr := p.Addrs()["alpha"].String()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	var checked atomic.Int64
	for id := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(id)))
			binaryClient := id%3 == 2
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					fail("client %d: dial: %v", id, err)
					return
				}
				var n int64
				if binaryClient {
					n, err = chaosBinary(t, nc, rng, id, stop)
				} else {
					n, err = chaosText(nc, rng, id, stop)
				}
				nc.Close()
				checked.Add(n)
				if err != nil {
					fail("client %d: %v", id, err)
					return
				}
			}
		}()
	}

	// The faults.
	rng := rand.New(rand.NewPCG(seed, 99))
	end := time.Now().Add(3 * time.Second)
	use := append([]bool(nil), all...)
	for time.Now().Before(end) {
		i := rng.IntN(3)
		r := relays[i]
		switch rng.IntN(7) {
		case 0:
			r.mode.Store(relaySlow)
			time.Sleep(300 * time.Millisecond)
			r.mode.Store(relayNormal)
		case 1:
			r.mode.Store(relayDown)
			r.closeAll()
			time.Sleep(250 * time.Millisecond)
			r.mode.Store(relayNormal)
		case 2:
			r.once.Store(relayGarbage)
		case 3:
			r.once.Store(relayTruncate)
		case 4:
			use[i] = !use[i]
			if !use[0] && !use[1] && !use[2] {
				use[i] = true
			}
			if err := p.Reload(parseConf(t, chaosConf(relays, use))); err != nil {
				t.Fatal(err)
			}
		case 5:
			r.closeAll()
		case 6:
			r.once.Store(relayDuplicate)
		}
		time.Sleep(time.Duration(50+rng.IntN(100)) * time.Millisecond)
	}
	close(stop)
	for _, r := range relays {
		r.mode.Store(relayNormal)
	}
	wg.Wait()
	t.Logf("%d replies checked", checked.Load())
	for _, e := range errs {
		t.Error(e)
	}
	if checked.Load() == 0 {
		t.Error("no reply checked")
	}
}

// chaosKey returns one of the shared keys.
func chaosKey(rng *rand.Rand) string { return "k" + strconv.Itoa(rng.IntN(40)) }

// A textExpect is what the client knows of a request it sent.
type textExpect struct {
	what    string   // "get", "store", "delete", "arith", "meta", "quiet", "mn"
	keys    []string // the keys asked
	tag     int      // a meta request's opaque
	noreply bool
}

// chaosText runs pipelines of random text and meta requests on nc until
// stop, checking every reply, and returns how many it checked; it hangs up
// at random (mid-request, or with replies unread), returning nil.
func chaosText(nc net.Conn, rng *rand.Rand, id int, stop chan struct{}) (int64, error) {
	rd := bufio.NewReader(nc)
	var checked int64
	tag := 0
	for {
		select {
		case <-stop:
			return checked, nil
		default:
		}
		var req []byte
		var exp []textExpect
		quietRun := false
		for range 1 + rng.IntN(12) {
			k := chaosKey(rng)
			val := fmt.Sprintf("%s/%d/%d", k, id, rng.IntN(1000))
			if rng.IntN(10) == 0 {
				val += strings.Repeat(".", rng.IntN(60<<10))
			}
			tag++
			op := rng.IntN(12)
			q := chaosQuietOp(op) && rng.IntN(2) == 0
			if quietRun && !q {
				// A run of quiet requests ends with mn, so that the
				// replies read up to it are the run's.
				req = append(req, "mn\r\n"...)
				exp = append(exp, textExpect{what: "mn"})
				quietRun = false
			}
			switch op {
			case 0:
				req = fmt.Appendf(req, "get %s\r\n", k)
				exp = append(exp, textExpect{what: "get", keys: []string{k}})
			case 1:
				req = fmt.Appendf(req, "gets %s\r\n", k)
				exp = append(exp, textExpect{what: "get", keys: []string{k}})
			case 2:
				seen := map[string]bool{}
				var keys []string
				for range 2 + rng.IntN(8) {
					if k := chaosKey(rng); !seen[k] {
						seen[k] = true
						keys = append(keys, k)
					}
				}
				if rng.IntN(4) == 0 {
					// Sent in chunks, repeats included.
					for range 30 + rng.IntN(100) {
						keys = append(keys, chaosKey(rng))
					}
				}
				req = fmt.Appendf(req, "get %s\r\n", strings.Join(keys, " "))
				exp = append(exp, textExpect{what: "get", keys: keys})
			case 3:
				nr := rng.IntN(3) == 0
				req = fmt.Appendf(req, "set %s 0 0 %d%s\r\n%s\r\n", k, len(val), map[bool]string{true: " noreply"}[nr], val)
				exp = append(exp, textExpect{what: "store", noreply: nr})
			case 4:
				nr := rng.IntN(3) == 0
				req = fmt.Appendf(req, "delete %s%s\r\n", k, map[bool]string{true: " noreply"}[nr])
				exp = append(exp, textExpect{what: "delete", noreply: nr})
			case 5:
				c := "c" + strconv.Itoa(rng.IntN(5))
				if rng.IntN(2) == 0 {
					req = fmt.Appendf(req, "set %s 0 0 1\r\n7\r\n", c)
					exp = append(exp, textExpect{what: "store"})
				}
				nr := rng.IntN(3) == 0
				req = fmt.Appendf(req, "incr %s 1%s\r\n", c, map[bool]string{true: " noreply"}[nr])
				exp = append(exp, textExpect{what: "arith", noreply: nr})
			case 6, 7:
				req = fmt.Appendf(req, "mg %s v k O%d%s\r\n", k, tag, map[bool]string{true: " q"}[q])
				exp = append(exp, textExpect{what: map[bool]string{true: "quiet", false: "meta"}[q], keys: []string{k}, tag: tag})
				quietRun = quietRun || q
			case 8:
				req = fmt.Appendf(req, "ms %s %d k O%d T0%s\r\n%s\r\n", k, len(val), tag, map[bool]string{true: " q"}[q], val)
				exp = append(exp, textExpect{what: map[bool]string{true: "quiet", false: "meta"}[q], keys: []string{k}, tag: tag})
				quietRun = quietRun || q
			case 9:
				req = fmt.Appendf(req, "md %s k O%d%s\r\n", k, tag, map[bool]string{true: " q"}[q])
				exp = append(exp, textExpect{what: map[bool]string{true: "quiet", false: "meta"}[q], keys: []string{k}, tag: tag})
				quietRun = quietRun || q
			case 10:
				req = append(req, "mn\r\n"...)
				exp = append(exp, textExpect{what: "mn"})
				quietRun = false
			case 11:
				c := "c" + strconv.Itoa(rng.IntN(5))
				req = fmt.Appendf(req, "ma %s k O%d%s\r\n", c, tag, map[bool]string{true: " q"}[q])
				exp = append(exp, textExpect{what: map[bool]string{true: "quiet", false: "meta"}[q], keys: []string{c}, tag: tag})
				quietRun = quietRun || q
			}
		}
		if quietRun {
			req = append(req, "mn\r\n"...)
			exp = append(exp, textExpect{what: "mn"})
		}
		switch rng.IntN(40) {
		case 0: // hang up mid-request
			nc.Write(append(req, "set x 0 0 10\r\nabc"...))
			return checked, nil
		case 1: // hang up with replies unread
			nc.Write(req)
			return checked, nil
		}
		if _, err := nc.Write(req); err != nil {
			return checked, err
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := checkText(rd, exp); err != nil {
			return checked, fmt.Errorf("%w\nrequests:\n%s", err, req)
		}
		checked += int64(len(exp))
	}
}

// chaosQuietOp reports whether chaosText's op may be quiet.
func chaosQuietOp(op int) bool { return op >= 6 && op <= 11 && op != 10 }

// metaFlags returns the flags of a meta reply line (after its code, and
// after the length for VA).
func metaFlags(line string) (code string, flags map[byte]string) {
	f := strings.Fields(line)
	flags = map[byte]string{}
	if len(f) == 0 {
		return "", flags
	}
	rest := f[1:]
	if f[0] == "VA" && len(rest) > 0 {
		rest = rest[1:]
	}
	for _, t := range rest {
		flags[t[0]] = t[1:]
	}
	return f[0], flags
}

func isErrLine(line string) bool {
	return line == "ERROR" || strings.HasPrefix(line, "SERVER_ERROR") || strings.HasPrefix(line, "CLIENT_ERROR")
}

// checkText reads the replies to the requests exp stands for, in order.
func checkText(rd *bufio.Reader, exp []textExpect) error {
	readLine := func() (string, error) {
		l, err := rd.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasSuffix(l, "\r\n") {
			return "", fmt.Errorf("line %q", l)
		}
		return l[:len(l)-2], nil
	}
	readData := func(n int) (string, error) {
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return "", err
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			return "", fmt.Errorf("data %q", b)
		}
		return string(b[:n]), nil
	}
	// metaReply checks one meta reply (line read) against e.
	metaReply := func(line string, e textExpect) error {
		code, flags := metaFlags(line)
		if o, ok := flags['O']; ok && o != strconv.Itoa(e.tag) {
			return fmt.Errorf("reply %q to the request with opaque %d", line, e.tag)
		}
		if k, ok := flags['k']; ok && k != e.keys[0] {
			return fmt.Errorf("reply %q to the request for %s", line, e.keys[0])
		}
		switch code {
		case "VA":
			n, err := strconv.Atoi(strings.Fields(line)[1])
			if err != nil {
				return fmt.Errorf("reply %q", line)
			}
			d, err := readData(n)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(d, e.keys[0]+"/") && !strings.HasPrefix(e.keys[0], "c") {
				return fmt.Errorf("value %q for key %s", d, e.keys[0])
			}
			if _, ok := flags['O']; !ok {
				return fmt.Errorf("hit %q without its opaque", line)
			}
		case "HD", "EN", "NF", "NS", "EX":
			if _, ok := flags['O']; !ok && code != "EN" {
				return fmt.Errorf("reply %q without its opaque", line)
			}
		default:
			return fmt.Errorf("reply %q to a meta request %d", line, e.tag)
		}
		return nil
	}
	for i := 0; i < len(exp); i++ {
		e := exp[i]
		if e.noreply {
			continue
		}
		if e.what == "quiet" {
			// The replies of a run of quiet requests up to the mn that
			// ends it: each optional, in order.
			j := i
			for j < len(exp) && exp[j].what == "quiet" {
				j++
			}
			if j == len(exp) || exp[j].what != "mn" {
				return fmt.Errorf("quiet run without mn")
			}
			next := i
			for {
				line, err := readLine()
				if err != nil {
					return err
				}
				if line == "MN" {
					break
				}
				if isErrLine(line) {
					continue
				}
				_, flags := metaFlags(line)
				o, ok := flags['O']
				if !ok {
					return fmt.Errorf("quiet reply %q without opaque", line)
				}
				for next < j && strconv.Itoa(exp[next].tag) != o {
					next++
				}
				if next == j {
					return fmt.Errorf("quiet reply %q out of order or unasked (run %d..%d)", line, exp[i].tag, exp[j-1].tag)
				}
				if err := metaReply(line, exp[next]); err != nil {
					return err
				}
				next++
			}
			i = j
			continue
		}
		line, err := readLine()
		if err != nil {
			return err
		}
		switch e.what {
		case "get":
			pos := 0
			for strings.HasPrefix(line, "VALUE ") {
				f := strings.Fields(line)
				for pos < len(e.keys) && e.keys[pos] != f[1] {
					pos++
				}
				if pos == len(e.keys) {
					return fmt.Errorf("VALUE %q for get %v", line, e.keys)
				}
				pos++
				n, _ := strconv.Atoi(f[3])
				d, err := readData(n)
				if err != nil {
					return err
				}
				if !strings.HasPrefix(d, f[1]+"/") {
					return fmt.Errorf("value %q for key %s", d, f[1])
				}
				if line, err = readLine(); err != nil {
					return err
				}
			}
			if line != "END" && !strings.HasPrefix(line, "SERVER_ERROR") {
				return fmt.Errorf("reply %q to get %v", line, e.keys)
			}
		case "store":
			if line != "STORED" && !strings.HasPrefix(line, "SERVER_ERROR") {
				return fmt.Errorf("reply %q to a set", line)
			}
		case "delete":
			if line != "DELETED" && line != "NOT_FOUND" && !strings.HasPrefix(line, "SERVER_ERROR") {
				return fmt.Errorf("reply %q to a delete", line)
			}
		case "arith":
			if _, err := strconv.ParseUint(line, 10, 64); err != nil && line != "NOT_FOUND" && !isErrLine(line) {
				return fmt.Errorf("reply %q to an incr", line)
			}
		case "mn":
			if line != "MN" {
				return fmt.Errorf("reply %q to mn", line)
			}
		case "meta":
			if isErrLine(line) {
				continue
			}
			if err := metaReply(line, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// A binExpect is a binary request awaiting its response.
type binExpect struct {
	op     byte
	opaque uint32
	key    string
	quiet  bool
}

// chaosBinary is chaosText for the binary protocol: get, getk, getq,
// getkq, set, setq, delete, each with an opaque of its own, and a noop
// that ends each pipeline.
func chaosBinary(t *testing.T, nc net.Conn, rng *rand.Rand, id int, stop chan struct{}) (int64, error) {
	c := testutil.NewConn(t, nc)
	var checked int64
	opaque := uint32(id) << 24
	for {
		select {
		case <-stop:
			return checked, nil
		default:
		}
		var req []byte
		var exp []binExpect
		for range 1 + rng.IntN(12) {
			k := chaosKey(rng)
			opaque++
			var r testutil.BinaryRequest
			ops := []byte{0x00, 0x0c, 0x09, 0x0d, 0x01, 0x11, 0x04}
			op := ops[rng.IntN(len(ops))]
			r = testutil.BinaryRequest{Opcode: op, Opaque: opaque, Key: []byte(k)}
			quiet := false
			switch op {
			case 0x09, 0x0d, 0x11:
				quiet = true
			}
			if op == 0x01 || op == 0x11 {
				r.Extras = make([]byte, 8)
				r.Value = fmt.Appendf(nil, "%s/%d/%d", k, id, rng.IntN(1000))
			}
			req = append(req, r.Bytes()...)
			exp = append(exp, binExpect{op: op, opaque: opaque, key: k, quiet: quiet})
		}
		opaque++
		req = append(req, testutil.BinaryRequest{Opcode: 0x0a, Opaque: opaque}.Bytes()...)
		exp = append(exp, binExpect{op: 0x0a, opaque: opaque})
		switch rng.IntN(40) {
		case 0:
			full := testutil.BinaryRequest{Opcode: 0x01, Extras: make([]byte, 8), Key: []byte("x"), Value: []byte("0123456789")}.Bytes()
			nc.Write(append(req, full[:len(full)-4]...))
			return checked, nil
		case 1:
			nc.Write(req)
			return checked, nil
		}
		if _, err := nc.Write(req); err != nil {
			return checked, err
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		next := 0
		for next < len(exp) {
			resp, err := c.ReadBinary()
			if err != nil {
				return checked, err
			}
			for next < len(exp) && exp[next].opaque != resp.Opaque() {
				if !exp[next].quiet {
					return checked, fmt.Errorf("response %v skips request opaque %x op %x", resp, exp[next].opaque, exp[next].op)
				}
				next++
			}
			if next == len(exp) {
				return checked, fmt.Errorf("response %v answers no request awaiting one", resp)
			}
			e := exp[next]
			next++
			checked++
			if resp.Opcode() != e.op {
				return checked, fmt.Errorf("response %v to opcode %x", resp, e.op)
			}
			if resp.Status() != 0 {
				continue
			}
			switch e.op {
			case 0x00, 0x0c, 0x09, 0x0d:
				if v := string(resp.Value()); !strings.HasPrefix(v, e.key+"/") {
					return checked, fmt.Errorf("value %q for key %s", v, e.key)
				}
				if (e.op == 0x0c || e.op == 0x0d) && string(resp.Key()) != e.key {
					return checked, fmt.Errorf("key %q for key %s", resp.Key(), e.key)
				}
			case 0x11:
				return checked, fmt.Errorf("setq answered with success: %v", resp)
			}
		}
	}
}

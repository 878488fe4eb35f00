package attack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ioTimeout bounds each read or write of the data set and the prober.
const ioTimeout = 10 * time.Second

// Data is the data set stored before an attack: Big values of BigSize
// bytes (keys "big0", "big1", ...), which the attacks ask for, and Small
// short items (keys "k0000000", ...), enough to make a metadump long.
// With FillMB set, Fill then stores padding values of 100 KB (keys
// "pad0", ...) until the server has evicted some or FillMB*2 MB were
// sent, so that the memory limit is all in use when the attack starts:
// padding lives in a slab class of its own and evicts only padding.
type Data struct {
	Big     int
	BigSize int
	Small   int
	FillMB  int
}

// padSize is the size of a padding value.
const padSize = 100 << 10

// BigKey returns the key of big value i.
func BigKey(i int) string { return "big" + strconv.Itoa(i) }

// bigValue returns big value i: its key's digit repeated, so that a value
// served under the wrong key or cut short is told apart.
func (d Data) bigValue(i int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, d.BigSize)
}

func smallKey(i int) string { return fmt.Sprintf("k%07d", i) }

func smallValue(i int) string { return fmt.Sprintf("value-of-%07d", i) }

// Fill stores d on the server at addr, with noreply sets in batches and
// a round trip after each batch.
func Fill(addr string, d Data) error {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	w := bufio.NewWriterSize(nc, 256<<10)
	r := bufio.NewReader(nc)
	flush := func() error {
		nc.SetDeadline(time.Now().Add(ioTimeout))
		w.WriteString("mn\r\n")
		if err := w.Flush(); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != "MN\r\n" {
			return fmt.Errorf("fill: unexpected reply %q", line)
		}
		return nil
	}
	for i := range d.Big {
		fmt.Fprintf(w, "set %s %d 0 %d noreply\r\n", BigKey(i), i, d.BigSize)
		w.Write(d.bigValue(i))
		w.WriteString("\r\n")
		if err := flush(); err != nil {
			return err
		}
	}
	for i := range d.Small {
		v := smallValue(i)
		fmt.Fprintf(w, "set %s %d 0 %d noreply\r\n%s\r\n", smallKey(i), i, len(v), v)
		if i%2000 == 1999 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	pad := make([]byte, padSize)
	for i := 0; i < d.FillMB*2<<20/padSize; i++ {
		fmt.Fprintf(w, "set pad%d 0 0 %d noreply\r\n", i, padSize)
		w.Write(pad)
		w.WriteString("\r\n")
		if i%64 != 63 {
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		st, err := Stats(addr)
		if err != nil {
			return err
		}
		if st["evictions"] != "0" {
			break
		}
	}
	return flush()
}

// Verify checks that every item of d is on the server at addr, whole.
func Verify(addr string, d Data) error {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)
	var missing []string
	check := func(keys []string, want func(k string) ([]byte, uint32)) error {
		nc.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := fmt.Fprintf(nc, "get %s\r\n", strings.Join(keys, " ")); err != nil {
			return err
		}
		got, err := readValues(r)
		if err != nil {
			return err
		}
		for _, k := range keys {
			v, ok := got[k]
			if !ok {
				missing = append(missing, k)
				continue
			}
			wv, wf := want(k)
			if !bytes.Equal(v.data, wv) || v.flags != wf {
				return fmt.Errorf("%s: got flags %d and %d bytes %.40q, want flags %d and %d bytes %.40q", k, v.flags, len(v.data), v.data, wf, len(wv), wv)
			}
		}
		return nil
	}
	for i := range d.Big {
		err := check([]string{BigKey(i)}, func(string) ([]byte, uint32) { return d.bigValue(i), uint32(i) })
		if err != nil {
			return err
		}
	}
	const batch = 100
	for lo := 0; lo < d.Small; lo += batch {
		var keys []string
		for i := lo; i < min(lo+batch, d.Small); i++ {
			keys = append(keys, smallKey(i))
		}
		err := check(keys, func(k string) ([]byte, uint32) {
			i, _ := strconv.Atoi(k[1:])
			return []byte(smallValue(i)), uint32(i)
		})
		if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d items lost, first %q", len(missing), missing[:min(5, len(missing))])
	}
	return nil
}

type value struct {
	flags uint32
	data  []byte
}

// readValues reads a retrieval reply up to END.
func readValues(r *bufio.Reader) (map[string]value, error) {
	got := make(map[string]value)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "END\r\n" {
			return got, nil
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "VALUE" {
			return nil, fmt.Errorf("unexpected reply line %q", line)
		}
		flags, err1 := strconv.ParseUint(f[2], 10, 32)
		n, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || n < 0 || n > 64<<20 {
			return nil, fmt.Errorf("bad VALUE line %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		if string(b[n:]) != "\r\n" {
			return nil, errors.New("value block not followed by CRLF")
		}
		got[f[1]] = value{uint32(flags), b[:n]}
	}
}

// Stats returns the server's general stats.
func Stats(addr string) (map[string]string, error) {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(nc, "stats\r\n"); err != nil {
		return nil, err
	}
	r := bufio.NewReader(nc)
	st := make(map[string]string)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "END\r\n" {
			return st, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("unexpected stats line %q", line)
		}
		st[f[1]] = f[2]
	}
}

// Prober is a well-behaved client: it gets items of the data set one at a
// time, checks each answer and records how long it took. Its methods are
// safe for concurrent use.
type Prober struct {
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex // guards latencies, err, inflight
	latencies []time.Duration
	err       error
	inflight  time.Time // when the unanswered request was sent; zero if none
}

// StartProber connects to addr and gets items of d until Stop: small
// items, and every tenth request a big one.
func StartProber(addr string, d Data) (*Prober, error) {
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	p := &Prober{stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(nc, d)
	return p, nil
}

func (p *Prober) run(nc net.Conn, d Data) {
	defer close(p.done)
	defer nc.Close()
	r := bufio.NewReaderSize(nc, 64<<10)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		default:
		}
		key, want, flags := "", []byte(nil), uint32(0)
		if i%10 == 9 && d.Big > 0 {
			j := i / 10 % d.Big
			key, want, flags = BigKey(j), d.bigValue(j), uint32(j)
		} else if d.Small > 0 {
			j := i * 7919 % d.Small
			key, want, flags = smallKey(j), []byte(smallValue(j)), uint32(j)
		} else {
			key = "absent"
		}
		start := time.Now()
		p.mu.Lock()
		p.inflight = start
		p.mu.Unlock()
		nc.SetDeadline(start.Add(ioTimeout))
		_, err := fmt.Fprintf(nc, "get %s\r\n", key)
		var got map[string]value
		if err == nil {
			got, err = readValues(r)
		}
		elapsed := time.Since(start)
		if err == nil && want != nil {
			if v, ok := got[key]; !ok {
				err = fmt.Errorf("prober: %s missing", key)
			} else if !bytes.Equal(v.data, want) || v.flags != flags {
				err = fmt.Errorf("prober: %s has the wrong value", key)
			}
		}
		p.mu.Lock()
		p.latencies = append(p.latencies, elapsed)
		p.inflight = time.Time{}
		if err != nil && p.err == nil {
			p.err = fmt.Errorf("get %s after %d requests: %w", key, i, err)
		}
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Take returns the number of requests answered since the last Take, their
// 99th percentile and largest latency, and the first error met (after
// which the prober has stopped). A request still unanswered counts with
// the time it has waited so far, so a stalled server shows.
func (p *Prober) Take() (n int, p99, worst time.Duration, err error) {
	p.mu.Lock()
	l := p.latencies
	p.latencies = nil
	n = len(l)
	if !p.inflight.IsZero() {
		l = append(l, time.Since(p.inflight))
	}
	err = p.err
	p.mu.Unlock()
	if len(l) == 0 {
		return 0, 0, 0, err
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return n, l[(len(l)*99)/100], l[len(l)-1], err
}

// Stop ends the prober and waits for it.
func (p *Prober) Stop() {
	close(p.stop)
	<-p.done
}

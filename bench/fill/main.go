// Command fill loads a memcached-protocol server with items of random size
// and random keys from several connections, samples the server's resident
// memory while it does, and checks that the memory limit (-m) holds.
//
// Item sizes are drawn log-uniformly between -min and -max, so every size
// class from tens of bytes to a hundred kilobytes gets the same share of
// sets: the mix that makes a slab allocator waste the most memory. Keys are
// random, so once the cache is full nearly every set evicts something.
//
// The report goes to stdout as "name value" lines, one per line, for scripts
// (bench/rss.sh) to read; progress goes to stderr. The exit status is 0 when
// the memory check passes, 1 when it fails and 2 on any other error.
//
// Usage:
//
//	fill -addr 127.0.0.1:11211 -pid 1234 -duration 30s -m 64
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// config holds the command-line settings.
type config struct {
	addr     string
	pid      int
	duration time.Duration
	maxSets  int64
	conns    int
	minSize  int
	maxSize  int
	pipeline int
	memMB    float64
	factor   float64
	slackMB  float64
	seed     uint64
}

// counters are shared by the loader goroutines; all fields are atomic.
type counters struct {
	issued       atomic.Int64 // sets handed out to connections (for -sets)
	stored       atomic.Int64
	serverErrors atomic.Int64 // SERVER_ERROR replies, e.g. out of memory
	valueBytes   atomic.Int64
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:11211", "server `host:port`")
	flag.IntVar(&c.pid, "pid", 0, "server process id whose VmRSS is sampled (0: no memory check)")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long to fill")
	flag.Int64Var(&c.maxSets, "sets", 0, "stop after this many sets (0: no limit)")
	flag.IntVar(&c.conns, "conns", 8, "concurrent connections")
	flag.IntVar(&c.minSize, "min", 10, "smallest value in bytes")
	flag.IntVar(&c.maxSize, "max", 100*1024, "largest value in bytes")
	flag.IntVar(&c.pipeline, "pipeline", 16, "sets sent per connection before reading replies")
	flag.Float64Var(&c.memMB, "m", 64, "server memory limit in MiB (its -m)")
	flag.Float64Var(&c.factor, "factor", 1.25, "allowed RSS as a multiple of -m")
	flag.Float64Var(&c.slackMB, "slack", 8, "extra MiB allowed for connection buffers and runtime")
	flag.Uint64Var(&c.seed, "seed", 0, "random seed (0: from the clock)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pass, err := run(ctx, c, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fill:", err)
		stop()
		os.Exit(2)
	}
	if !pass {
		stop()
		os.Exit(1)
	}
}

// run fills the server, writes the report to out and progress to progress,
// and reports whether the memory check passed.
func run(ctx context.Context, c config, out, progress io.Writer) (bool, error) {
	if c.conns < 1 || c.pipeline < 1 || c.minSize < 1 || c.maxSize < c.minSize {
		return false, errors.New("need -conns ≥ 1, -pipeline ≥ 1 and 1 ≤ -min ≤ -max")
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}

	var idle memSample
	if c.pid != 0 {
		var err error
		if idle, err = readMem(c.pid); err != nil {
			return false, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()

	// One random buffer shared read-only by all connections; a value of
	// size n is its first n bytes.
	value := make([]byte, c.maxSize)
	fillRandom(value, rand.New(rand.NewPCG(c.seed, 0)))

	var cnt counters
	var sampler sync.WaitGroup
	var maxRSS atomic.Int64
	maxRSS.Store(idle.rssKiB)
	start := time.Now()
	if c.pid != 0 {
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			sampleRSS(ctx, c.pid, start, &cnt, &maxRSS, progress)
		}()
	}

	var wg sync.WaitGroup
	errs := make([]error, c.conns)
	for i := range c.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(c.seed, uint64(i)+1))
			errs[i] = load(ctx, c, rng, value, &cnt)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	sampler.Wait()
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	if cnt.stored.Load() == 0 {
		return false, errors.New("the server stored no items")
	}

	stats, err := serverStats(c.addr)
	if err != nil {
		return false, err
	}

	var end memSample
	if c.pid != 0 {
		if end, err = readMem(c.pid); err != nil {
			return false, err
		}
		if end.rssKiB > maxRSS.Load() {
			maxRSS.Store(end.rssKiB)
		}
	}

	report := []field{
		{"addr", c.addr},
		{"seconds", fmt.Sprintf("%.1f", elapsed.Seconds())},
		{"conns", c.conns},
		{"value_sizes", fmt.Sprintf("%d-%d", c.minSize, c.maxSize)},
		{"sets", cnt.stored.Load() + cnt.serverErrors.Load()},
		{"sets_per_s", int64(float64(cnt.stored.Load()+cnt.serverErrors.Load()) / elapsed.Seconds())},
		{"stored", cnt.stored.Load()},
		{"server_errors", cnt.serverErrors.Load()},
		{"value_mib", fmt.Sprintf("%.0f", float64(cnt.valueBytes.Load())/(1<<20))},
		{"curr_items", stats["curr_items"]},
		{"evictions", stats["evictions"]},
		{"bytes", stats["bytes"]},
		{"limit_maxbytes", stats["limit_maxbytes"]},
	}
	if c.pid == 0 {
		printReport(out, append(report, field{"result", "unchecked"}))
		return true, nil
	}

	// The kernel's high-water mark catches peaks between samples.
	peak := max(maxRSS.Load(), end.hwmKiB)
	limit := int64((c.factor*c.memMB + c.slackMB) * 1024)
	pass := peak < limit
	result := "PASS"
	if !pass {
		result = "FAIL"
	}
	printReport(out, append(report,
		field{"rss_idle_mib", fmt.Sprintf("%.1f", mib(idle.rssKiB))},
		field{"rss_sampled_max_mib", fmt.Sprintf("%.1f", mib(maxRSS.Load()))},
		field{"rss_hwm_mib", fmt.Sprintf("%.1f", mib(end.hwmKiB))},
		field{"rss_end_mib", fmt.Sprintf("%.1f", mib(end.rssKiB))},
		field{"rss_max_mib", fmt.Sprintf("%.1f", mib(peak))},
		field{"rss_limit_mib", fmt.Sprintf("%.1f", mib(limit))},
		field{"rss_rule", fmt.Sprintf("%g*%gMiB+%gMiB", c.factor, c.memMB, c.slackMB)},
		field{"result", result},
	))
	return pass, nil
}

// field is one line of the report.
type field struct {
	name  string
	value any
}

// printReport writes fields as "name value" lines.
func printReport(w io.Writer, fields []field) {
	for _, f := range fields {
		fmt.Fprintf(w, "%s %v\n", f.name, f.value)
	}
}

// load sends pipelined sets on one connection until ctx is done or the
// -sets budget is spent.
func load(ctx context.Context, c config, rng *rand.Rand, value []byte, cnt *counters) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot dial %q: %w", c.addr, err)
	}
	defer conn.Close()
	// Unblock reads and writes when the run ends.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	w := bufio.NewWriterSize(conn, 256<<10)
	r := bufio.NewReaderSize(conn, 4<<10)
	var line []byte
	for ctx.Err() == nil {
		n := int64(c.pipeline)
		if c.maxSets > 0 {
			first := cnt.issued.Add(n) - n
			if first >= c.maxSets {
				return nil
			}
			n = min(n, c.maxSets-first)
		}
		for range n {
			size := logUniform(rng, c.minSize, c.maxSize)
			line = append(line[:0], "set fill:"...)
			line = strconv.AppendUint(line, rng.Uint64(), 36)
			line = append(line, " 0 0 "...)
			line = strconv.AppendInt(line, int64(size), 10)
			line = append(line, "\r\n"...)
			w.Write(line)
			w.Write(value[:size])
			w.WriteString("\r\n")
			cnt.valueBytes.Add(int64(size))
		}
		if err := w.Flush(); err != nil {
			return ioErr(ctx, "write", err)
		}
		for range n {
			reply, err := r.ReadSlice('\n')
			if err != nil {
				return ioErr(ctx, "read", err)
			}
			switch {
			case string(reply) == "STORED\r\n":
				cnt.stored.Add(1)
			case strings.HasPrefix(string(reply), "SERVER_ERROR"):
				cnt.serverErrors.Add(1)
			default:
				return fmt.Errorf("unexpected reply to set: %q", reply)
			}
		}
	}
	return nil
}

// ioErr drops errors caused by the end of the run.
func ioErr(ctx context.Context, verb string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("cannot %s: %w", verb, err)
}

// logUniform returns a size in [lo, hi] whose logarithm is uniform.
func logUniform(rng *rand.Rand, lo, hi int) int {
	l, h := math.Log(float64(lo)), math.Log(float64(hi)+1)
	return min(hi, int(math.Exp(l+rng.Float64()*(h-l))))
}

// fillRandom fills b with printable random bytes.
func fillRandom(b []byte, rng *rand.Rand) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
}

// sampleRSS reads the server's VmRSS every second until ctx is done,
// keeping the largest value in maxRSS and printing progress.
func sampleRSS(ctx context.Context, pid int, start time.Time, cnt *counters, maxRSS *atomic.Int64, progress io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, err := readMem(pid)
		if err != nil {
			fmt.Fprintln(progress, "fill:", err)
			continue
		}
		if m.rssKiB > maxRSS.Load() {
			maxRSS.Store(m.rssKiB)
		}
		fmt.Fprintf(progress, "  %3.0fs  rss %7.1f MiB  max %7.1f MiB  sets %d\n",
			time.Since(start).Seconds(), mib(m.rssKiB), mib(maxRSS.Load()),
			cnt.stored.Load()+cnt.serverErrors.Load())
	}
}

// memSample is one reading of /proc/PID/status.
type memSample struct {
	rssKiB int64 // VmRSS
	hwmKiB int64 // VmHWM, the peak RSS since the process started
}

// readMem reads the memory figures of process pid.
func readMem(pid int) (memSample, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memSample{}, fmt.Errorf("cannot read memory of pid %d: %w", pid, err)
	}
	return parseStatus(b)
}

// parseStatus extracts VmRSS and VmHWM (in KiB) from /proc/PID/status.
func parseStatus(b []byte) (memSample, error) {
	var m memSample
	var haveRSS bool
	for line := range strings.Lines(string(b)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("cannot parse %q", strings.TrimSpace(line))
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("cannot parse %q: %w", strings.TrimSpace(line), err)
		}
		if name == "VmRSS" {
			m.rssKiB, haveRSS = v, true
		} else {
			m.hwmKiB = v
		}
	}
	if !haveRSS {
		return m, errors.New("no VmRSS in /proc status")
	}
	return m, nil
}

// serverStats returns the server's "stats" as a map.
func serverStats(addr string) (map[string]string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot dial %q: %w", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "stats\r\n"); err != nil {
		return nil, fmt.Errorf("cannot send stats: %w", err)
	}
	return parseStats(bufio.NewReader(conn))
}

// parseStats reads "STAT name value" lines up to "END".
func parseStats(r *bufio.Reader) (map[string]string, error) {
	stats := make(map[string]string)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("cannot read stats: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return stats, nil
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("unexpected stats line %q", line)
		}
		stats[f[1]] = f[2]
	}
}

// mib converts KiB to MiB.
func mib(kib int64) float64 { return float64(kib) / 1024 }

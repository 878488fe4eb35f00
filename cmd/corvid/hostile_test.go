//go:build linux || darwin

package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/attack"
)

// The hostile-client suite runs the corvid binary with a small memory
// limit and values up to 2 MB, stores a data set, and attacks it: unread
// multi-gets of 1 MB values, huge declared values sent slowly or not at
// all, slow readers, half-sent requests, unread metadumps, their binary
// forms and 10k idle connections. The cache is full (-m in use) before
// each attack. Throughout, the server's RSS must stay under -m + 64 MB,
// plus the read-buffer bound (-o read_buf_mem_limit, 64 MB by default)
// for the attacks that make it hold input, or the bound on blocked
// replies (-o write_buf_mem_limit, 64 MB by default) for those that make
// it hold many connections' replies; a well-behaved client must get
// correct answers with a p99 latency under hostileP99; no stored item may
// be lost.
//
// By default the attacks are modest (10-20 s per connection mode, each
// attack on a fresh server); CORVID_HOSTILE=full runs them larger and
// longer. bench/hostile.sh runs
// the full attacks against corvid and memcached side by side.
const (
	hostileMemMB   = 64
	hostileSlackMB = 64 // the documented bound: RSS < -m + 64 MB at default -c
	// hostileReadBufMB is the server's default read_buf_mem_limit at
	// -I 2m: the memory attacks that make it hold input may add.
	hostileReadBufMB = 64
	// hostileWriteBufMB is the server's default write_buf_mem_limit at
	// -I 2m: the memory attacks that leave many connections' replies
	// unread may add.
	hostileWriteBufMB = 64
	// hostileP99 bounds the well-behaved client's p99 latency. The target
	// on a quiet machine is 100 ms (bench/hostile.sh holds corvid to it);
	// the test allows more for a 2-core machine busy with other tests
	// (where 420 ms has been seen over a dozen gets), still well below
	// the stalls of seconds it is there to catch.
	hostileP99 = time.Second
	// hostileKillMB is where the test kills a server whose memory runs
	// away, so that a failure does not take the machine with it.
	hostileKillMB = 1024
	// hostileIdle is the number of idle connections of the idle attack.
	hostileIdle = 10000
)

// hostilePending names the attacks that still fail, by connection mode and
// attack, with the fix they wait for. They are skipped unless
// CORVID_HOSTILE_PENDING is set.
var hostilePending = map[string]string{}

// skipPending skips the attack named mode/name while its fix is pending.
func skipPending(t *testing.T, mode, name string) {
	t.Helper()
	if fix, ok := hostilePending[mode+"/"+name]; ok && os.Getenv("CORVID_HOSTILE_PENDING") == "" {
		t.Skipf("waits for %s; CORVID_HOSTILE_PENDING=1 runs it", fix)
	}
}

// hostileScale returns the sizes of the attacks and how long each is held.
func hostileScale() (attack.Data, attack.Scale, time.Duration) {
	d := attack.Data{Big: 8, BigSize: 1 << 20, Small: 10_000, FillMB: hostileMemMB}
	sc := attack.Scale{Conns: 16, BufConns: 128, DumpItems: 200_000, Keys: 400, DeclaredSize: 2_000_000, HugeLine: true}
	hold := 200 * time.Millisecond
	if os.Getenv("CORVID_HOSTILE") == "full" {
		d.Small = 100_000
		sc.Conns, sc.BufConns, sc.DumpItems = 100, 500, 400_000
		hold = time.Second
	}
	return d, sc, hold
}

// hostileModes are the connection modes every attack runs in.
var hostileModes = []struct {
	name string
	args []string
}{
	{"event-loops", nil},
	{"goroutines", []string{"--event-loops", "0"}},
}

// TestHostileMemoryBound runs each attack against a fresh server, in each
// connection mode.
func TestHostileMemoryBound(t *testing.T) {
	for _, mode := range hostileModes {
		t.Run(mode.name, func(t *testing.T) {
			d, sc, hold := hostileScale()
			peaks := make(map[string]int64)
			for _, a := range attack.Attacks(d, sc) {
				t.Run(a.Name, func(t *testing.T) {
					skipPending(t, mode.name, a.Name)
					d := d
					d.Small = max(d.Small, a.Items)
					h := startHostile(t, d, append([]string{"-m", strconv.Itoa(hostileMemMB), "-I", "2m"}, mode.args...))
					peaks[a.Name] = h.run(t, a, hold).PeakRSS
					h.verify(t)
				})
			}
			// An unread multi-get of ten times as many keys costs about
			// the same: the reply is not built ahead of the reader.
			small, large := peaks[fmt.Sprintf("unread-get-%d", sc.Keys)], peaks[fmt.Sprintf("unread-get-%d", 10*sc.Keys)]
			if small > 0 && large > small+16<<20 {
				t.Errorf("unread get of %d keys: peak RSS %d MB; of %d keys: %d MB", sc.Keys, small>>20, 10*sc.Keys, large>>20)
			}
		})
	}
}

// TestHostileIdleConnections opens 10k connections that send nothing.
func TestHostileIdleConnections(t *testing.T) {
	need := uint64(hostileIdle + 512)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if lim.Cur < need || syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			t.Skipf("the open file limit (%d, hard %d) cannot be raised to %d for %d idle connections", lim.Cur, lim.Max, need, hostileIdle)
		}
	}
	for _, mode := range hostileModes {
		t.Run(mode.name, func(t *testing.T) {
			d, _, hold := hostileScale()
			d.Small = 1000
			h := startHostile(t, d, append([]string{"-m", strconv.Itoa(hostileMemMB), "-I", "2m", "-c", strconv.Itoa(hostileIdle + 100)}, mode.args...))
			r := h.run(t, attack.Idle(hostileIdle), hold)
			t.Logf("curr_connections %d", r.Connections)
			if r.Connections < hostileIdle {
				t.Errorf("curr_connections %d, want at least %d", r.Connections, hostileIdle)
			}
			h.verify(t)
		})
	}
}

// hostile is a corvid process holding a data set, its RSS sampler and a
// well-behaved client.
type hostile struct {
	p       *serverProc
	d       attack.Data
	sampler *attack.Sampler
	prober  *attack.Prober
	killed  chan int64 // receives the RSS at which a runaway server was killed
}

func startHostile(t *testing.T, d attack.Data, args []string) *hostile {
	t.Helper()
	if raceEnabled {
		t.Skip("the server binary is built without the race detector; under it only the test's own clients slow down, and the latency bound would measure them")
	}
	h := &hostile{p: startServerProc(t, args...), d: d, killed: make(chan int64, 1)}
	if err := attack.Fill(h.p.addr, d); err != nil {
		t.Fatalf("cannot store the data set: %v", err)
	}
	h.sampler = attack.StartSampler(h.p.cmd.Process.Pid, 10*time.Millisecond, hostileKillMB<<20, func(rss int64) {
		h.killed <- rss
		h.p.cmd.Process.Kill()
	})
	t.Cleanup(h.sampler.Stop)
	var err error
	if h.prober, err = attack.StartProber(h.p.addr, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.prober.Stop)
	return h
}

// runAttack holds attack a for hold, logs what it measured and fails the
// test if the target died or the attack could not run.
func (h *hostile) runAttack(t *testing.T, a attack.Attack, hold time.Duration) attack.Result {
	t.Helper()
	r, err := attack.Run(h.p.addr, a, h.sampler, h.prober, hold)
	t.Logf("%s: %d connections, peak RSS %d MB; prober: %d gets, p99 %v, worst %v; sends timed out %d, refused %d",
		a.Name, a.Conns, r.PeakRSS>>20, r.Requests, r.P99.Round(time.Microsecond), r.Worst.Round(time.Microsecond), r.SendTimeouts, r.SendErrors)
	h.checkAlive(t)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkLatency checks that the well-behaved client was answered, in time.
func checkLatency(t *testing.T, r attack.Result, hold time.Duration) {
	t.Helper()
	if r.Requests == 0 {
		t.Errorf("the well-behaved client got no answer in %v", hold)
	} else if r.P99 > hostileP99 {
		t.Errorf("the well-behaved client's p99 latency is %v, want under %v", r.P99, hostileP99)
	}
}

// run holds attack a for hold and checks the server's RSS, the prober's
// answers and latency.
func (h *hostile) run(t *testing.T, a attack.Attack, hold time.Duration) attack.Result {
	t.Helper()
	r := h.runAttack(t, a, hold)
	boundMB, also := hostileMemMB+hostileSlackMB, ""
	if a.HoldsInput {
		boundMB += hostileReadBufMB
		also = fmt.Sprintf(" + read_buf_mem_limit %d MB", hostileReadBufMB)
	}
	if a.HoldsOutput {
		boundMB += hostileWriteBufMB
		also += fmt.Sprintf(" + write_buf_mem_limit %d MB", hostileWriteBufMB)
	}
	if r.PeakRSS > int64(boundMB)<<20 {
		t.Errorf("peak RSS %d MB, want under -m %d MB + %d MB%s", r.PeakRSS>>20, hostileMemMB, hostileSlackMB, also)
	}
	checkLatency(t, r, hold)
	return r
}

// verify checks that the cache was full and no item of the data set was
// lost (only padding is evicted).
func (h *hostile) verify(t *testing.T) {
	t.Helper()
	h.checkAlive(t)
	st, err := attack.Stats(h.p.addr)
	if err != nil {
		h.checkAlive(t)
		t.Fatalf("stats after the attacks: %v", err)
	}
	if st["evictions"] == "0" {
		t.Errorf("no evictions: the padding did not fill -m")
	}
	if err := attack.Verify(h.p.addr, h.d); err != nil {
		h.checkAlive(t)
		t.Errorf("after the attacks: %v", err)
	}
}

// checkAlive fails the test if the server was killed for its RSS, which
// can happen after an attack ends while it still builds replies, or
// exited.
func (h *hostile) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case rss := <-h.killed:
		h.killed <- rss
		t.Fatalf("RSS reached %d MB: server killed", rss>>20)
	default:
	}
	select {
	case err := <-h.p.done:
		h.p.done <- err
		t.Fatalf("server exited: %v\n%s", err, h.p.stderr)
	default:
	}
}

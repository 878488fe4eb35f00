//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWarmProc starts a server with -e snap and the extra args, in -short
// mode too, and waits until it answers.
func startWarmProc(t *testing.T, snap string, args ...string) *serverProc {
	t.Helper()
	bin := buildCorvid(t)
	var p *serverProc
	onFreePort(t, func(port int) (bool, error) {
		p = launchServerProc(t, bin, port, procOptions{}, append([]string{"-e", snap}, args...))
		if err := p.ready(10 * time.Second); err != nil {
			return strings.Contains(p.stderr.String(), "address already in use"), fmt.Errorf("%v\n%s", err, p.stderr)
		}
		return false, nil
	})
	return p
}

// kill SIGKILLs the server and waits for it to be gone. It reports
// whether the server had already exited by itself, cleanly.
func (p *serverProc) kill(t *testing.T) (exitedCleanly bool) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err == nil
	default:
	}
	p.cmd.Process.Kill()
	select {
	case err := <-p.done:
		p.done <- err
		return err == nil
	case <-time.After(30 * time.Second):
		t.Fatal("server did not die on SIGKILL")
		return false
	}
}

// TestWarmRestartCrashForgetsSnapshot is issue 12's sequence: after a warm
// start, a deleted item must not come back when the server crashes.
func TestWarmRestartCrashForgetsSnapshot(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "corvid.snapshot")
	p := startWarmProc(t, snap)
	roundTrip(t, p.addr, "set session 0 0 3\r\nold\r\n", "STORED")
	p.stop(t, syscall.SIGTERM)

	p = startWarmProc(t, snap)
	if got := roundTrip(t, p.addr, "get session\r\n", "END"); got != "VALUE session 0 3\r\nold\r\nEND\r\n" {
		t.Fatalf("after a clean stop: %q", got)
	}
	roundTrip(t, p.addr, "delete session\r\n", "DELETED")
	p.kill(t)

	p = startWarmProc(t, snap)
	if got := roundTrip(t, p.addr, "get session\r\n", "END"); got != "END\r\n" {
		t.Fatalf("a deleted item came back after a crash: %q\n%s", got, p.stderr)
	}
}

// cacheState is what a crash test's cache holds: value by key.
type cacheState map[string]string

// crashClient sends requests to a server and reads the replies.
type crashClient struct {
	nc net.Conn
	r  *bufio.Reader
}

func dialCrash(t *testing.T, addr string) *crashClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &crashClient{nc: nc, r: bufio.NewReader(nc)}
}

// do sends req and returns the reply's first line.
func (c *crashClient) do(req string) (string, error) {
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write([]byte(req)); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// crashKeys is the key space of TestWarmRestartCrashSafety.
const crashKeys = 64

// randomOp sends a set (new or overwriting) or a delete of a random key,
// and applies it to model once the server has acknowledged it.
func randomOp(rng *rand.Rand, c *crashClient, model cacheState, seq int) error {
	key := "k" + strconv.Itoa(rng.IntN(crashKeys))
	if rng.IntN(4) == 0 {
		reply, err := c.do("delete " + key + "\r\n")
		if err != nil {
			return err
		}
		if reply != "DELETED" && reply != "NOT_FOUND" {
			return fmt.Errorf("delete %s: %q", key, reply)
		}
		delete(model, key)
		return nil
	}
	n := 8 + rng.IntN(200)
	if rng.IntN(5) == 0 {
		n = 1000 + rng.IntN(100_000)
	}
	val := strconv.Itoa(seq) + ":" + strings.Repeat(string(rune('a'+seq%26)), n)
	reply, err := c.do(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val))
	if err != nil {
		return err
	}
	if reply != "STORED" {
		return fmt.Errorf("set %s: %q", key, reply)
	}
	model[key] = val
	return nil
}

// readState fetches every key of the key space.
func readState(t *testing.T, addr string) cacheState {
	t.Helper()
	c := dialCrash(t, addr)
	defer c.nc.Close()
	var req strings.Builder
	req.WriteString("get")
	for i := range crashKeys {
		req.WriteString(" k" + strconv.Itoa(i))
	}
	req.WriteString("\r\n")
	line, err := c.do(req.String())
	got := cacheState{}
	for err == nil && line != "END" {
		var key string
		var flags, n int
		if _, serr := fmt.Sscanf(line, "VALUE %s %d %d", &key, &flags, &n); serr != nil {
			t.Fatalf("get: unexpected line %q", line)
		}
		buf := make([]byte, n+2)
		if _, err = io.ReadFull(c.r, buf); err != nil {
			break
		}
		got[key] = string(buf[:n])
		line, err = c.r.ReadString('\n')
		line = strings.TrimSuffix(line, "\r\n")
	}
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return got
}

// describe summarises a state for a failure message.
func (s cacheState) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d items:", len(s))
	for i := range crashKeys {
		k := "k" + strconv.Itoa(i)
		if v, ok := s[k]; ok {
			seq, _, _ := strings.Cut(v, ":")
			fmt.Fprintf(&b, " %s=#%s", k, seq)
		}
	}
	return b.String()
}

// TestWarmRestartCrashSafety runs the server with -e through many lives.
// Each does random sets, overwrites and deletes, keeping a model of the
// acknowledged ones, and ends with a clean stop (SIGTERM), after which the
// next start must restore exactly the model, or with SIGKILL at a random
// moment: while idle, during requests, during the shutdown save, right
// after a start, or during a start (while the snapshot loads). After a
// crash the cache must hold nothing or exactly a state that a clean stop
// left, never a deleted item or an overwritten value. Lives alternate
// between event loops and a goroutine per connection.
func TestWarmRestartCrashSafety(t *testing.T) {
	lives, maxOps := 80, 120
	if testing.Short() {
		lives, maxOps = 12, 60
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	snap := filepath.Join(dir, "corvid.snapshot")

	// allowed are the states the next start may find.
	allowed := []cacheState{{}}
	var model cacheState // set from what each start restores
	seq := 0
	ends, starts := map[string]int{}, map[string]int{}
	for life := range lives {
		args := []string{"-t", "2"}
		if life%2 == 1 {
			args = append(args, "--event-loops", "0")
		}
		if rng.IntN(6) == 0 {
			// Crash during the start: before, while or after the
			// snapshot is read. The next start may find it or not.
			p := launchWarm(t, snap, args)
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // a random moment, not a wait
			p.kill(t)
			allowed = append(allowed, cacheState{})
			ends["kill during start"]++
		}
		p := startWarmProc(t, snap, args...)
		got := readState(t, p.addr)
		ok := false
		for _, s := range allowed {
			ok = ok || maps.Equal(got, s)
		}
		if !ok {
			var want []string
			for _, s := range allowed {
				want = append(want, s.describe())
			}
			t.Fatalf("life %d: the cache holds %s; want one of:\n%s\n%s", life, got.describe(), strings.Join(want, "\n"), p.stderr)
		}
		if matches, _ := filepath.Glob(snap + "*"); len(matches) != 0 {
			t.Fatalf("life %d: files left after the start: %q", life, matches)
		}
		model = got
		if len(got) > 0 {
			starts["warm"]++
		} else {
			starts["empty"]++
		}

		c := dialCrash(t, p.addr)
		for range rng.IntN(maxOps) {
			seq++
			if err := randomOp(rng, c, model, seq); err != nil {
				t.Fatalf("life %d: %v", life, err)
			}
		}
		switch end := rng.IntN(10); {
		case end < 4:
			ends["clean stop"]++
			p.stop(t, syscall.SIGTERM)
			allowed = []cacheState{maps.Clone(model)}
		case end < 5:
			ends["kill while idle"]++
			p.kill(t)
			allowed = []cacheState{{}}
		case end < 7:
			// Requests keep going (and the model is not kept) while the
			// server is killed; its snapshot is gone since the start.
			ends["kill during requests"]++
			done := make(chan struct{})
			go func() {
				defer close(done)
				rng := rand.New(rand.NewPCG(seed, uint64(life)))
				scratch := cacheState{}
				for i := 0; i < 100_000; i++ {
					if randomOp(rng, c, scratch, -i) != nil {
						return
					}
				}
			}()
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // a random moment
			p.kill(t)
			<-done
			allowed = []cacheState{{}}
		default:
			// SIGTERM, then SIGKILL during the save: as soon as its
			// temporary file appears, or after a random delay.
			c.nc.Close()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if end == 9 {
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) && !tempExists(dir) && !p.exited() {
					runtime.Gosched()
				}
			} else {
				time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond) // a random moment
			}
			if p.kill(t) {
				ends["clean stop before the kill"]++
				allowed = []cacheState{maps.Clone(model)}
			} else {
				ends["kill during the shutdown save"]++
				allowed = []cacheState{{}, maps.Clone(model)}
			}
		}
	}
	t.Logf("lives ended by %v; started %v", ends, starts)
}

// launchWarm starts a server with -e snap without waiting for it.
func launchWarm(t *testing.T, snap string, args []string) *serverProc {
	t.Helper()
	return launchServerProc(t, buildCorvid(t), freePort(t), procOptions{}, append([]string{"-e", snap}, args...))
}

// exited reports whether the server process has exited.
func (p *serverProc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// tempExists reports whether dir holds a snapshot's temporary file.
func tempExists(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}

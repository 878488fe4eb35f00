// Command hostile runs the hostile-client attacks of corvid's memory-bound
// suite (package internal/attack) against memcached and corvid side by
// side, each attack on a fresh server, and prints each server's peak RSS
// and a well-behaved client's p99 latency under each attack.
//
// Every server is started as PREFIX -p PORT -l 127.0.0.1 -U 0 -t 2 -m M
// -I 2m [-c C], where PREFIX is the command given with -memcached or
// -corvid (corvid runs twice: with its event loops, and with
// --event-loops 0). The exit status is 1 when a corvid column breaks the
// bound (peak RSS over -m + -slack MB, plus -readbuf MB for the attacks
// that make the server hold input and -writebuf MB for those that leave
// many connections' replies unread; p99 over -p99; or items lost), 2 on
// any other error.
//
// Usage:
//
//	hostile -corvid "/tmp/corvid server" -memcached "memcached -u nobody"
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/corvidcache/corvid/internal/attack"
)

// target is a server command line to attack.
type target struct {
	name   string
	argv   []string
	corvid bool
}

// cell is one attack's outcome on one target.
type cell struct {
	peakMB  int64
	p99     time.Duration
	verdict string // "ok", or what went wrong
}

func main() {
	var (
		corvidCmd    = flag.String("corvid", "", "corvid command prefix, e.g. \"/tmp/corvid server\" (required)")
		memcachedCmd = flag.String("memcached", "memcached -u nobody", "memcached command prefix (\"\" = none)")
		memMB        = flag.Int("m", 64, "server memory limit (-m), MB")
		slackMB      = flag.Int("slack", 64, "allowed RSS above -m, MB")
		readBufMB    = flag.Int("readbuf", 64, "further RSS allowed under attacks that make the server hold input: corvid's read_buf_mem_limit, MB")
		writeBufMB   = flag.Int("writebuf", 64, "further RSS allowed under attacks that leave many connections' replies unread: corvid's write_buf_mem_limit, MB")
		p99Limit     = flag.Duration("p99", 100*time.Millisecond, "allowed p99 latency of the well-behaved client")
		conns        = flag.Int("conns", 100, "connections of attacks that make the server write")
		bufConns     = flag.Int("bufconns", 500, "connections of attacks that make the server hold input")
		keys         = flag.Int("keys", 400, "keys of the smaller unread multi-get")
		items        = flag.Int("items", 400_000, "small items stored for the metadump attack")
		idle         = flag.Int("idle", 10_000, "idle connections (0 = skip)")
		hold         = flag.Duration("hold", time.Second, "least time each attack is held")
		killMB       = flag.Int64("kill", 4096, "kill a server whose RSS passes this many MB")
	)
	flag.Parse()
	if *corvidCmd == "" {
		fmt.Fprintln(os.Stderr, "hostile: -corvid is required")
		os.Exit(2)
	}
	var targets []target
	if *memcachedCmd != "" {
		targets = append(targets, target{"memcached", strings.Fields(*memcachedCmd), false})
	}
	targets = append(targets,
		target{"corvid", strings.Fields(*corvidCmd), true},
		target{"corvid-el0", append(strings.Fields(*corvidCmd), "--event-loops", "0"), true})

	d := attack.Data{Big: 8, BigSize: 1 << 20, Small: 100_000, FillMB: *memMB}
	attacks := attack.Attacks(d, attack.Scale{
		Conns: *conns, BufConns: *bufConns, DumpItems: *items,
		Keys: *keys, DeclaredSize: 2_000_000, HugeLine: true,
	})
	if *idle > 0 {
		attacks = append(attacks, attack.Idle(*idle))
	}

	results := make(map[string]map[string]cell)
	failed := false
	for _, a := range attacks {
		results[a.Name] = make(map[string]cell)
		for _, tg := range targets {
			dd := d
			dd.Small = max(d.Small, a.Items)
			c, err := runOne(tg, a, dd, *memMB, *killMB, *hold)
			if err != nil {
				fmt.Fprintf(os.Stderr, "hostile: %s on %s: %v\n", a.Name, tg.name, err)
				os.Exit(2)
			}
			bound := *memMB + *slackMB
			if a.HoldsInput {
				bound += *readBufMB
			}
			if a.HoldsOutput {
				bound += *writeBufMB
			}
			if c.verdict == "ok" && c.peakMB > int64(bound) {
				c.verdict = "OVER"
			}
			if c.verdict == "ok" && c.p99 > *p99Limit {
				c.verdict = "SLOW"
			}
			if tg.corvid && c.verdict != "ok" {
				failed = true
			}
			results[a.Name][tg.name] = c
			fmt.Fprintf(os.Stderr, "%-28s %-11s peak %5d MB  p99 %8v  %s\n", a.Name, tg.name, c.peakMB, c.p99.Round(10*time.Microsecond), c.verdict)
		}
	}

	fmt.Printf("peak RSS (MB) and well-behaved get p99 under each attack; -m %d -I 2m, bound: RSS < %d MB (+%d MB for attacks marked *, +%d MB for those marked +), p99 < %v\n",
		*memMB, *memMB+*slackMB, *readBufMB, *writeBufMB, *p99Limit)
	fmt.Printf("%-28s", "attack (connections)")
	for _, tg := range targets {
		fmt.Printf(" %26s", tg.name)
	}
	fmt.Println()
	for _, a := range attacks {
		mark := ""
		if a.HoldsInput {
			mark = "*"
		}
		if a.HoldsOutput {
			mark += "+"
		}
		fmt.Printf("%-28s", fmt.Sprintf("%s%s (%d)", a.Name, mark, a.Conns))
		for _, tg := range targets {
			c := results[a.Name][tg.name]
			fmt.Printf(" %26s", fmt.Sprintf("%d MB %v %s", c.peakMB, c.p99.Round(100*time.Microsecond), c.verdict))
		}
		fmt.Println()
	}
	if failed {
		os.Exit(1)
	}
}

// runOne starts tg, stores dd, holds a against it and reports.
func runOne(tg target, a attack.Attack, dd attack.Data, memMB int, killMB int64, hold time.Duration) (cell, error) {
	args := []string{"-l", "127.0.0.1", "-U", "0", "-t", "2", "-m", strconv.Itoa(memMB), "-I", "2m"}
	if a.Accepted {
		args = append(args, "-c", strconv.Itoa(a.Conns+100))
	}
	srv, err := start(tg.argv, args)
	if err != nil {
		return cell{}, err
	}
	defer srv.stop()
	if err := attack.Fill(srv.addr, dd); err != nil {
		return cell{}, fmt.Errorf("cannot store the data set: %w", err)
	}
	s := attack.StartSampler(srv.cmd.Process.Pid, 10*time.Millisecond, killMB<<20, func(int64) {
		srv.cmd.Process.Kill()
	})
	defer s.Stop()
	p, err := attack.StartProber(srv.addr, dd)
	if err != nil {
		return cell{}, err
	}
	defer p.Stop()
	r, err := attack.Run(srv.addr, a, s, p, hold)
	c := cell{peakMB: r.PeakRSS >> 20, p99: r.P99, verdict: "ok"}
	switch {
	case s.Over():
		c.verdict = "KILLED"
	case err != nil:
		c.verdict = "PROBE-FAILED"
		fmt.Fprintf(os.Stderr, "hostile: %s on %s: %v\n", a.Name, tg.name, err)
	case a.Accepted && r.Connections < a.Conns:
		c.verdict = fmt.Sprintf("ACCEPTED-%d", r.Connections)
	default:
		if err := attack.Verify(srv.addr, dd); err != nil {
			c.verdict = "LOST"
			fmt.Fprintf(os.Stderr, "hostile: %s on %s: %v\n", a.Name, tg.name, err)
		}
	}
	return c, nil
}

// server is a started server process.
type server struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs argv with args and -p on a free port and waits until it
// answers "version"; it tries other ports when one was taken meanwhile.
func start(argv, args []string) (*server, error) {
	var lastErr error
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		s := &server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
		full := append(append(append([]string{}, argv[1:]...), args...), "-p", strconv.Itoa(port))
		s.cmd = exec.Command(argv[0], full...)
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		if lastErr = s.ready(10 * time.Second); lastErr == nil {
			return s, nil
		}
		s.stop()
	}
	return nil, fmt.Errorf("cannot start %s: %w", strings.Join(argv, " "), lastErr)
}

func (s *server) ready(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; time.Now().Before(deadline); delay = min(2*delay, 50*time.Millisecond) {
		select {
		case <-s.done:
			return errors.New("server exited")
		default:
		}
		if nc, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			nc.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(nc, "version\r\n")
			line, _ := bufio.NewReader(nc).ReadString('\n')
			nc.Close()
			if strings.HasPrefix(line, "VERSION ") {
				return nil
			}
		}
		time.Sleep(delay)
	}
	return errors.New("no answer")
}

func (s *server) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

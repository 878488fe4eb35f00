package attack

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// RSS returns the resident memory of process pid in bytes (VmRSS in
// /proc/<pid>/status).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			break
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// Sampler reads a process's RSS at a fixed interval and keeps the peak.
// Its methods are safe for concurrent use.
type Sampler struct {
	pid   int
	limit int64
	over  func(rss int64)
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex // guards peak, err, fired
	peak  int64
	err   error
	fired bool
}

// StartSampler samples pid's RSS every interval until Stop. When the RSS
// first exceeds limit (if limit > 0), over is called once with it, from
// the sampler's goroutine: a caller can kill a server whose memory runs
// away before it takes the machine with it.
func StartSampler(pid int, interval time.Duration, limit int64, over func(rss int64)) *Sampler {
	s := &Sampler{pid: pid, limit: limit, over: over, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *Sampler) sample() {
	rss, err := RSS(s.pid)
	s.mu.Lock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
		return
	}
	s.peak = max(s.peak, rss)
	fire := s.limit > 0 && rss > s.limit && !s.fired && s.over != nil
	if fire {
		s.fired = true
	}
	s.mu.Unlock()
	if fire {
		s.over(rss)
	}
}

// Peak returns the largest RSS seen since the start or the last Reset,
// sampling once more first, and the first error met reading it.
func (s *Sampler) Peak() (int64, error) {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.err
}

// Reset forgets the peak; the next sample starts a new one.
func (s *Sampler) Reset() {
	s.mu.Lock()
	s.peak = 0
	s.mu.Unlock()
	s.sample()
}

// Over reports whether the RSS has exceeded the limit.
func (s *Sampler) Over() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fired
}

// Stop ends the sampling and waits for its goroutine.
func (s *Sampler) Stop() {
	close(s.stop)
	<-s.done
}

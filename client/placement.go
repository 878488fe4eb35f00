package client

import (
	"strings"
	"time"

	"github.com/corvidcache/corvid/ring"
)

// pick returns the server for a wire key, applying the failure policy.
func (c *Client) pick(wire string) (*node, error) {
	pk := c.placementKey(wire)
	s := c.servers[c.ring.PickString(pk)]
	if c.ndead.Load() == 0 {
		return s, nil
	}
	if !s.dead() {
		return s, nil
	}
	if c.cfg.OnDead == FailError {
		return nil, &ServerError{Addr: s.addr, Op: "pick", Err: ErrServerDead}
	}
	lr := c.live.Load()
	if lr == nil {
		return nil, &ServerError{Addr: s.addr, Op: "pick", Err: ErrServerDead}
	}
	return c.servers[lr.index[lr.ring.PickString(pk)]], nil
}

// replicas returns the copies rule for a key, or 0.
func (c *Client) replicas(key string) int {
	for _, r := range c.cfg.Replicas {
		if strings.HasPrefix(key, r.Prefix) && r.Copies > 1 {
			return min(r.Copies, len(c.servers))
		}
	}
	return 0
}

// replicaServers returns the servers holding copies of a replicated key:
// its own server and the next distinct ones on the ring, leaving out dead
// ones.
func (c *Client) replicaServers(wire string, n int) []*node {
	var buf [8]int
	idx := c.ring.PickN(buf[:0], bytesOf(c.placementKey(wire)), n)
	out := make([]*node, 0, len(idx))
	for _, i := range idx {
		if s := c.servers[i]; c.ndead.Load() == 0 || !s.dead() {
			out = append(out, s)
		}
	}
	return out
}

// dead reports whether s is marked dead; a server whose retry timeout has
// passed comes back.
func (s *node) dead() bool {
	until := s.deadUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	if s.deadUntil.CompareAndSwap(until, 0) {
		s.failMu.Lock()
		s.failures = 0
		s.failMu.Unlock()
		s.c.ndead.Add(-1)
		s.c.rebuildLive()
	}
	return false
}

// fail records a network failure of s and marks it dead when it failed
// MaxFailures times within FailureTimeout.
func (s *node) fail() {
	cfg := &s.c.cfg
	if cfg.MaxFailures <= 0 {
		return
	}
	now := time.Now()
	s.failMu.Lock()
	if now.Sub(s.windowStart) > cfg.FailureTimeout {
		s.windowStart, s.failures = now, 0
	}
	s.failures++
	mark := s.failures >= cfg.MaxFailures
	s.failMu.Unlock()
	if mark && s.deadUntil.CompareAndSwap(0, now.Add(cfg.RetryTimeout).UnixNano()) {
		s.c.ndead.Add(1)
		s.c.rebuildLive()
		s.closeIdle()
	}
}

// closeIdle closes the node's idle connections.
func (s *node) closeIdle() {
	s.mu.Lock()
	free := s.free
	s.free = nil
	s.mu.Unlock()
	for _, cn := range free {
		cn.nc.Close()
	}
}

// rebuildLive recomputes the placement over the live servers.
func (c *Client) rebuildLive() {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	var servers []Server
	var index []int
	now := time.Now().UnixNano()
	for i, s := range c.servers {
		if u := s.deadUntil.Load(); u == 0 || now >= u {
			servers = append(servers, c.cfg.Servers[i])
			index = append(index, i)
		}
	}
	if len(servers) == 0 {
		c.live.Store(nil)
		return
	}
	r, err := ring.New(ring.Config{Servers: servers, Distribution: c.cfg.Distribution, Hash: c.cfg.Hash, HashTag: c.cfg.HashTag})
	if err != nil {
		c.live.Store(nil)
		return
	}
	c.live.Store(&liveRing{ring: r, index: index})
}

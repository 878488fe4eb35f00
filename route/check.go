package route

import (
	"errors"
	"fmt"
	"strings"

	"github.com/corvidcache/corvid/ring"
)

// Check verifies a configuration before it is served: every handle has a
// known type and what that type needs, every pool a route names exists
// and has servers, hashes are known, ranges are within bounds, and the
// tree has no cycle. The error is one line naming the offending node's
// Path.
func Check(cfg *Config) error {
	if cfg == nil || cfg.Root == nil {
		return errors.New("no route")
	}
	for name, p := range cfg.Pools {
		if p == nil || len(p.Servers) == 0 {
			return failf(poolPath(name, p), "pool %q has no servers", name)
		}
	}
	c := &checker{cfg: cfg, state: map[*Handle]uint8{}}
	return c.handle(cfg.Root, "route")
}

func poolPath(name string, p *Pool) string {
	if p != nil && p.Path != "" {
		return p.Path
	}
	return join("pools", name)
}

type checker struct {
	cfg   *Config
	state map[*Handle]uint8 // 1: being checked, 2: checked
	depth int
}

func (c *checker) handle(h *Handle, where string) error {
	if h == nil {
		return failf(where, "no route")
	}
	switch c.state[h] {
	case 1:
		return failf(where, "a cycle: this route leads back to %s", pathOf(h, where))
	case 2:
		return nil
	}
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxDepth {
		return failf(where, "routes nested more than %d deep", maxDepth)
	}
	c.state[h] = 1
	path := pathOf(h, where)
	if err := c.fields(h, path); err != nil {
		return err
	}
	c.state[h] = 2
	return nil
}

func pathOf(h *Handle, where string) string {
	if h.Path != "" {
		return h.Path
	}
	return where
}

func (c *checker) children(h *Handle, path string, min int) error {
	if len(h.Children) < min {
		return failf(path, "%s has no children", h.Type)
	}
	for i, ch := range h.Children {
		if err := c.handle(ch, join(path, fmt.Sprintf("children[%d]", i))); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) fields(h *Handle, path string) error {
	if _, ok := props[h.Type]; !ok {
		return failf(path, "unknown type %q", h.Type)
	}
	switch h.Type {
	case PoolRoute:
		p := c.cfg.Pools[h.Pool]
		if h.Pool == "" {
			return failf(path, "PoolRoute has no pool")
		}
		if p == nil {
			return failf(path, "pool %q is not defined", h.Pool)
		}
		if err := checkHash(h.Hash, len(p.Servers), path); err != nil {
			return err
		}
		for i, s := range h.Shadows {
			sp := s.Path
			if sp == "" {
				sp = join(path, fmt.Sprintf("shadows[%d]", i))
			}
			if err := checkFraction(s.KeyFractionRange, join(sp, "key_fraction_range")); err != nil {
				return err
			}
			if s.IndexRange[0] < 0 || s.IndexRange[0] > s.IndexRange[1]+1 {
				return failf(join(sp, "index_range"), "[%d, %d] is not a range of server indexes", s.IndexRange[0], s.IndexRange[1]+1)
			}
			if err := c.handle(s.Target, join(sp, "target")); err != nil {
				return err
			}
		}
	case HashRoute:
		if err := checkHash(h.Hash, len(h.Children), path); err != nil {
			return err
		}
		return c.children(h, path, 1)
	case FailoverRoute, MissFailoverRoute, AllSyncRoute, AllAsyncRoute, AllInitialRoute,
		AllMajorityRoute, AllFastestRoute, RandomRoute:
		return c.children(h, path, 1)
	case LatestRoute:
		if h.FailoverCount < 0 {
			return failf(path, "failover_count %d is negative", h.FailoverCount)
		}
		return c.children(h, path, 1)
	case PrefixSelectorRoute, OperationSelectorRoute:
		other, pk, dk := h.Wildcard, "policies", "wildcard"
		if h.Type == OperationSelectorRoute {
			other, pk, dk = h.Default, "operation_policies", "default_policy"
			if h.Wildcard != nil {
				return failf(path, "OperationSelectorRoute has a wildcard")
			}
		} else if h.Default != nil {
			return failf(path, "PrefixSelectorRoute has a default_policy")
		}
		if len(h.Policies) == 0 && other == nil {
			return failf(path, "%s has no policies", h.Type)
		}
		for k, p := range h.Policies {
			if h.Type == OperationSelectorRoute && !contains(Operations, k) {
				return failf(path, "unknown operation %q", k)
			}
			if err := c.handle(p, join(join(path, pk), k)); err != nil {
				return err
			}
		}
		if other != nil {
			return c.handle(other, join(path, dk))
		}
	case WarmUpRoute:
		if h.Exptime < 0 {
			return failf(path, "exptime %d is negative", h.Exptime)
		}
		if err := c.handle(h.Cold, join(path, "cold")); err != nil {
			return err
		}
		return c.handle(h.Warm, join(path, "warm"))
	case RateLimitRoute:
		if len(h.Children) != 1 {
			return failf(path, "RateLimitRoute needs one target, has %d", len(h.Children))
		}
		for k, r := range h.Rates {
			if !contains([]string{"gets", "sets", "deletes"}, k) {
				return failf(path, "unknown rate class %q", k)
			}
			if !(r.PerSecond > 0) || !(r.Burst > 0) {
				return failf(path, "%s rate and burst must be positive", k)
			}
		}
		return c.children(h, path, 1)
	}
	return nil
}

// checkHash checks a hash over n destinations.
func checkHash(h Hash, n int, path string) error {
	switch h.Func {
	case "", "Ch3", "Crc32":
	case "WeightedCh3":
		if len(h.Weights) != n {
			return failf(path, "WeightedCh3 needs one weight per destination: %d weights, %d destinations", len(h.Weights), n)
		}
	default:
		dist, hash, ok := strings.Cut(h.Func, "/")
		if !ok {
			return failf(path, "unknown hash function %q", h.Func)
		}
		if !contains(distributions(), dist) {
			return failf(path, "unknown distribution %q in hash %q", dist, h.Func)
		}
		if _, err := ring.HashNamed(hash); err != nil {
			return failf(path, "unknown hash %q in %q", hash, h.Func)
		}
	}
	for i, w := range h.Weights {
		if !(w >= 0 && w <= 1) {
			return failf(path, "weight %d (%v) is outside [0, 1]", i, w)
		}
	}
	if h.HashTag != "" && len(h.HashTag) != 2 {
		return failf(path, "hash_tag %q is not two characters", h.HashTag)
	}
	return nil
}

func distributions() []string {
	var out []string
	for _, d := range ring.Distributions() {
		out = append(out, string(d))
	}
	return out
}

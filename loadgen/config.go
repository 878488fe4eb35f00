package loadgen

import (
	"crypto/tls"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Protocol selects the memcached wire format requests are sent in.
type Protocol string

// Protocols.
const (
	Text Protocol = "text" // get/set
	Meta Protocol = "meta" // mg/ms (memcached 1.6 meta commands)
)

// Config describes a run. The zero value of a field means the default noted
// beside it; Servers is required.
type Config struct {
	Servers   []string // host:port; connection i uses Servers[i%len(Servers)]
	Conns     int      // busy connections; default 1
	Idle      int      // extra connections opened, checked with "version", then left idle
	Pipeline  int      // requests in flight per connection; default 1
	MultiGet  int      // keys per get request; default 1
	GetWeight int      // gets in GetWeight:SetWeight; both 0 = 9:1
	SetWeight int
	Keys      int      // key space; default 100000
	KeyPrefix string   // default "key:"
	Zipf      float64  // key skew: 0 uniform; otherwise Zipf exponent (not 1)
	ValueMin  int      // value size in bytes, drawn uniformly from [ValueMin, ValueMax]; default 100
	ValueMax  int      // default ValueMin
	Protocol  Protocol // default Text

	Duration time.Duration // measured time; default 10s unless Requests is set
	Requests int64         // stop after this many measured requests (0 = Duration only)
	Warmup   time.Duration // unmeasured load before the measurement
	Prefill  bool          // set every key once on every server before the run

	Timeout  time.Duration // dial and reply timeout; default 10s
	TLS      *tls.Config   // when set, connections speak TLS (memcached -Z)
	Seed     uint64        // random seed; 0 = fixed default
	Progress io.Writer     // once-a-second progress lines; nil = none
}

func (c Config) withDefaults() Config {
	if c.Conns == 0 {
		c.Conns = 1
	}
	if c.Pipeline == 0 {
		c.Pipeline = 1
	}
	if c.MultiGet == 0 {
		c.MultiGet = 1
	}
	if c.GetWeight == 0 && c.SetWeight == 0 {
		c.GetWeight, c.SetWeight = 9, 1
	}
	if c.Keys == 0 {
		c.Keys = 100000
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "key:"
	}
	if c.ValueMin == 0 && c.ValueMax == 0 {
		c.ValueMin = 100
	}
	if c.ValueMax == 0 {
		c.ValueMax = c.ValueMin
	}
	if c.Protocol == "" {
		c.Protocol = Text
	}
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 0x636f72766964 // "corvid"
	}
	return c
}

// maxKeyLen is memcached's key limit.
const maxKeyLen = 250

// Validate reports the first setting that cannot be run, after applying
// defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case len(c.Servers) == 0:
		return fmt.Errorf("%w: no server", ErrConfig)
	case c.Conns < 1:
		return fmt.Errorf("%w: connections must be at least 1, got %d", ErrConfig, c.Conns)
	case c.Idle < 0:
		return fmt.Errorf("%w: idle connections must be 0 or more, got %d", ErrConfig, c.Idle)
	case c.Pipeline < 1 || c.Pipeline > 1<<16:
		return fmt.Errorf("%w: pipeline depth must be 1 to 65536, got %d", ErrConfig, c.Pipeline)
	case c.MultiGet < 1 || c.MultiGet > 1<<12:
		return fmt.Errorf("%w: multi-get must be 1 to 4096 keys, got %d", ErrConfig, c.MultiGet)
	case c.GetWeight < 0 || c.SetWeight < 0:
		return fmt.Errorf("%w: get:set ratio must not be negative", ErrConfig)
	case c.Keys < 1:
		return fmt.Errorf("%w: key space must be at least 1, got %d", ErrConfig, c.Keys)
	case c.Zipf < 0 || c.Zipf == 1:
		return fmt.Errorf("%w: zipf exponent must be 0 (uniform) or positive and not 1, got %g", ErrConfig, c.Zipf)
	case c.ValueMin < 0 || c.ValueMax < c.ValueMin:
		return fmt.Errorf("%w: value size range %d-%d is empty", ErrConfig, c.ValueMin, c.ValueMax)
	case c.ValueMax > 1<<30:
		return fmt.Errorf("%w: value size %d is too large", ErrConfig, c.ValueMax)
	case c.Protocol != Text && c.Protocol != Meta:
		return fmt.Errorf("%w: protocol must be text or meta, got %q", ErrConfig, c.Protocol)
	case c.Duration < 0 || c.Requests < 0 || c.Warmup < 0:
		return fmt.Errorf("%w: duration, requests and warm-up must not be negative", ErrConfig)
	case len(c.KeyPrefix)+len(strconv.Itoa(c.Keys-1)) > maxKeyLen || strings.ContainsAny(c.KeyPrefix, " \r\n\t"):
		return fmt.Errorf("%w: key prefix %q makes invalid keys", ErrConfig, c.KeyPrefix)
	}
	for _, s := range c.Servers {
		if _, _, err := splitHostPort(s); err != nil {
			return fmt.Errorf("%w: server %q: %v", ErrConfig, s, err)
		}
	}
	return nil
}

// ParseRatio parses "GET:SET" weights such as "9:1" or "1:0".
func ParseRatio(s string) (get, set int, err error) {
	g, st, ok := strings.Cut(s, ":")
	if ok {
		get, err = strconv.Atoi(g)
		if err == nil {
			set, err = strconv.Atoi(st)
		}
	}
	if !ok || err != nil || get < 0 || set < 0 || get+set == 0 {
		return 0, 0, fmt.Errorf("%w: ratio %q is not GET:SET with non-negative weights", ErrConfig, s)
	}
	return get, set, nil
}

// ParseSize parses a value size "N" or a range "MIN-MAX" in bytes.
func ParseSize(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = strconv.Atoi(a)
	hi = lo
	if err == nil && isRange {
		hi, err = strconv.Atoi(b)
	}
	if err != nil || lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("%w: value size %q is not N or MIN-MAX bytes", ErrConfig, s)
	}
	return lo, hi, nil
}

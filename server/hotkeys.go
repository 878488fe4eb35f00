package server

import (
	"math"
	"strconv"
	"time"

	"github.com/corvidcache/corvid/internal/topk"
)

// Hot keys: each connection passes one request in Config.HotKeySample to
// two trackers, one counting requests and one counting bytes (the value
// stored or served), whose counts halve every Config.HotKeyHalfLife. The
// sampling keeps the cost to a lock and a map lookup every N requests.
const (
	hotKeyCounters = 128 // keys each tracker holds
	hotKeyShown    = 16  // keys "stats hotkeys" lists per tracker
)

type hotKeys struct {
	sample   uint32
	halfLife time.Duration
	requests *topk.Tracker
	bytes    *topk.Tracker
}

func newHotKeys(cfg *Config) *hotKeys {
	if cfg.HotKeySample < 0 {
		return nil
	}
	return &hotKeys{
		sample:   uint32(cfg.HotKeySample),
		halfLife: cfg.HotKeyHalfLife,
		requests: topk.New(hotKeyCounters, cfg.HotKeyHalfLife),
		bytes:    topk.New(hotKeyCounters, cfg.HotKeyHalfLife),
	}
}

// noteKey counts a request for key that moved n bytes of value, when it
// falls in the connection's sample.
func (c *conn) noteKey(key []byte, n int) {
	h := c.srv.hot
	if h == nil {
		return
	}
	c.hotTick++
	if c.hotTick%h.sample != 0 {
		return
	}
	now := time.Now()
	h.requests.Add(key, 1, now)
	h.bytes.Add(key, float64(n), now)
}

// writeHotKeys answers "stats hotkeys": the sampling settings, then for
// requests and for bytes the hottest keys, hottest first, each as
// "STAT requests:RANK KEY RATE" and "STAT bytes:RANK KEY RATE", where
// RATE is the estimated requests (or bytes) per second of the recent past.
func (s *Server) writeHotKeys(w *statWriter) {
	h := s.hot
	if h == nil {
		w.str("hotkeys", "disabled")
		return
	}
	w.u("hotkeys_sample", uint64(h.sample))
	w.u("hotkeys_half_life", uint64(h.halfLife/time.Second))
	// A steady rate r with half-life T weighs r*T/ln 2; each sampled
	// request stands for sample requests.
	perSec := float64(h.sample) * math.Ln2 / h.halfLife.Seconds()
	now := time.Now()
	for _, t := range []struct {
		name string
		tr   *topk.Tracker
	}{{"requests", h.requests}, {"bytes", h.bytes}} {
		for i, e := range t.tr.Top(hotKeyShown, now) {
			if e.Weight == 0 {
				break
			}
			w.str(t.name+":"+strconv.Itoa(i+1), e.Key+" "+strconv.FormatFloat(e.Weight*perSec, 'f', 3, 64))
		}
	}
}

func (h *hotKeys) reset() {
	if h != nil {
		h.requests.Reset()
		h.bytes.Reset()
	}
}

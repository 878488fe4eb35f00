package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Result is what one Run measured. Counts cover the measured phase only.
type Result struct {
	Servers  []string `json:"servers"`
	Protocol Protocol `json:"protocol"`
	Conns    int      `json:"connections"`
	Idle     int      `json:"idle_connections"`
	Pipeline int      `json:"pipeline"`
	MultiGet int      `json:"multiget"`
	Ratio    string   `json:"ratio"`
	Keys     int      `json:"keys"`
	Zipf     float64  `json:"zipf"`
	ValueMin int      `json:"value_min"`
	ValueMax int      `json:"value_max"`

	Seconds    float64 `json:"seconds"`
	Requests   int64   `json:"requests"` // gets + sets answered
	Gets       int64   `json:"gets"`
	Sets       int64   `json:"sets"`
	GetKeys    int64   `json:"get_keys"` // keys asked for: Gets x MultiGet
	Hits       int64   `json:"hits"`
	Misses     int64   `json:"misses"`
	Errors     int64   `json:"errors"` // ERROR, CLIENT_ERROR, SERVER_ERROR, NOT_STORED replies
	OpsPerSec  float64 `json:"ops_per_sec"`
	KeysPerSec float64 `json:"keys_per_sec"` // get keys + sets per second
	HitRatio   float64 `json:"hit_ratio"`    // Hits / GetKeys

	// Latency in microseconds, from the write carrying a request to the
	// parse of its reply.
	Latency Latency `json:"latency_us"`
	// MaxInFlight is the most requests any connection had in flight.
	MaxInFlight int `json:"max_in_flight"`

	// Histogram holds every latency in nanoseconds.
	Histogram *Histogram `json:"-"`
}

// Latency summarises a latency histogram in microseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

func us(ns uint64) float64 { return float64(ns) / 1e3 }

func (r *run) result(conns []*conn, elapsed time.Duration) *Result {
	cfg := r.cfg
	h := NewHistogram()
	res := &Result{
		Servers: cfg.Servers, Protocol: cfg.Protocol, Conns: cfg.Conns, Idle: cfg.Idle,
		Pipeline: cfg.Pipeline, MultiGet: cfg.MultiGet,
		Ratio: fmt.Sprintf("%d:%d", cfg.GetWeight, cfg.SetWeight),
		Keys:  cfg.Keys, Zipf: cfg.Zipf, ValueMin: cfg.ValueMin, ValueMax: cfg.ValueMax,
		Seconds: elapsed.Seconds(), Histogram: h,
	}
	for _, c := range conns {
		h.Merge(c.hist)
		res.Gets += c.c.gets.Load()
		res.Sets += c.c.sets.Load()
		res.GetKeys += c.c.getKeys.Load()
		res.Hits += c.c.hits.Load()
		res.Errors += c.c.errors.Load()
		res.MaxInFlight = max(res.MaxInFlight, c.maxN)
	}
	res.Requests = res.Gets + res.Sets
	res.Misses = res.GetKeys - res.Hits
	if res.Seconds > 0 {
		res.OpsPerSec = float64(res.Requests) / res.Seconds
		res.KeysPerSec = float64(res.GetKeys+res.Sets) / res.Seconds
	}
	if res.GetKeys > 0 {
		res.HitRatio = float64(res.Hits) / float64(res.GetKeys)
	}
	res.Latency = Latency{
		Min: us(h.Min()), Mean: h.Mean() / 1e3,
		P50: us(h.Percentile(50)), P90: us(h.Percentile(90)), P99: us(h.Percentile(99)),
		P999: us(h.Percentile(99.9)), Max: us(h.Max()),
	}
	return res
}

// WriteJSON writes res as one JSON object.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteText writes res for people.
func (res *Result) WriteText(w io.Writer) error {
	values := fmt.Sprint(res.ValueMin)
	if res.ValueMax != res.ValueMin {
		values = fmt.Sprintf("%d-%d", res.ValueMin, res.ValueMax)
	}
	dist := "uniform"
	if res.Zipf > 0 {
		dist = fmt.Sprintf("zipf %g", res.Zipf)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "servers      %s (%s protocol)\n", strings.Join(res.Servers, ", "), res.Protocol)
	fmt.Fprintf(&b, "load         %d connections (+%d idle), pipeline %d, %d keys per get, get:set %s\n",
		res.Conns, res.Idle, res.Pipeline, res.MultiGet, res.Ratio)
	fmt.Fprintf(&b, "keys         %d (%s), values %s bytes\n", res.Keys, dist, values)
	fmt.Fprintf(&b, "measured     %.2f s, %d requests (%d gets, %d sets), max %d in flight per connection\n",
		res.Seconds, res.Requests, res.Gets, res.Sets, res.MaxInFlight)
	fmt.Fprintf(&b, "throughput   %.0f ops/s, %.0f keys/s\n", res.OpsPerSec, res.KeysPerSec)
	fmt.Fprintf(&b, "hits         %d of %d keys (%.2f%%), errors %d\n",
		res.Hits, res.GetKeys, 100*res.HitRatio, res.Errors)
	l := res.Latency
	fmt.Fprintf(&b, "latency µs   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	_, err := io.WriteString(w, b.String())
	return err
}

package admin

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Dashboard is what the page at / shows for a daemon: charts of the last
// minutes, sampled by the admin port once a second, and tables of the
// present. The admin port calls Sample from one goroutine at a time, and
// Tables from a request's.
type Dashboard struct {
	// Title heads the page ("corvid server 127.0.0.1:11211").
	Title string
	// Charts are drawn in this order.
	Charts []Chart
	// Sample returns the daemon's figures now by name, counters as their
	// running totals: the charts take rates and ratios of their changes.
	Sample func() map[string]float64
	// Tables returns the tables shown under the charts, as they are now;
	// nil for none.
	Tables func() []Table
}

// Chart is one chart of the page: one line per series.
type Chart struct {
	ID    string // names the chart in the page (its element's id)
	Title string
	Unit  string // shown beside the title: "ops/s", "bytes", "%"
	Lines []Line
}

// Line is one series of a chart, computed from two consecutive samples:
// the figure Key itself, its change per second (Rate), or with Per set
// the change of Key over the change of Per, times Scale (Scale 100 and
// Per "cmd_get" over "get_hits" is the hit ratio in percent).
type Line struct {
	Label string
	Key   string
	Rate  bool
	Per   string
	Scale float64
}

// Table is a table of the page.
type Table struct {
	ID      string     `json:"id"`
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// history is the ring of the last samples' chart values: times[i] and
// values[i][line] for each point, oldest first from head.
type history struct {
	d    *Dashboard
	size int

	mu     sync.Mutex // guards the fields below
	times  []int64    // Unix milliseconds
	values [][]float64
	head   int // index of the oldest point once the ring is full
	prev   map[string]float64
	prevAt time.Time
}

func newHistory(d *Dashboard, size int) *history {
	return &history{d: d, size: size}
}

// sample takes one sample and appends the values of every line, NaN where
// a line has no value yet (the first sample of a rate) or none at all (a
// ratio of no change).
func (h *history) sample(now time.Time) {
	cur := h.d.Sample()
	var row []float64
	h.mu.Lock()
	defer h.mu.Unlock()
	dt := now.Sub(h.prevAt).Seconds()
	for _, c := range h.d.Charts {
		for _, l := range c.Lines {
			v := math.NaN()
			switch {
			case l.Per != "":
				if h.prev != nil {
					if den := cur[l.Per] - h.prev[l.Per]; den > 0 {
						v = (cur[l.Key] - h.prev[l.Key]) / den
					}
				}
			case l.Rate:
				if h.prev != nil && dt > 0 {
					v = (cur[l.Key] - h.prev[l.Key]) / dt
				}
			default:
				v = cur[l.Key]
			}
			if l.Scale != 0 {
				v *= l.Scale
			}
			row = append(row, v)
		}
	}
	h.prev, h.prevAt = cur, now
	ms := now.UnixMilli()
	if len(h.times) < h.size {
		h.times = append(h.times, ms)
		h.values = append(h.values, row)
		return
	}
	h.times[h.head], h.values[h.head] = ms, row
	h.head = (h.head + 1) % h.size
}

// appendValues appends vs as a JSON array, NaN and infinities as null;
// written by hand, as encoding/json's reflection was most of the cost of
// /api/stats.
func appendValues(dst []byte, vs []float64) []byte {
	dst = append(dst, '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			dst = append(dst, "null"...)
			continue
		}
		dst = strconv.AppendFloat(dst, v, 'g', 6, 64)
	}
	return append(dst, ']')
}

type chartJSON struct {
	ID    string     `json:"id"`
	Title string     `json:"title"`
	Unit  string     `json:"unit"`
	Lines []lineJSON `json:"lines"`
}

type lineJSON struct {
	Label  string          `json:"label"`
	Values json.RawMessage `json:"values"`
}

type pageJSON struct {
	Title  string      `json:"title"`
	Times  []int64     `json:"times"`
	Charts []chartJSON `json:"charts"`
	Tables []Table     `json:"tables"`
}

// page returns the history and the tables as /api/stats serves them.
func (h *history) page() pageJSON {
	p := pageJSON{Title: h.d.Title, Times: []int64{}, Charts: []chartJSON{}, Tables: []Table{}}
	h.mu.Lock()
	n := len(h.times)
	order := make([]int, n)
	for i := range order {
		order[i] = (h.head + i) % n
	}
	for _, i := range order {
		p.Times = append(p.Times, h.times[i])
	}
	col := 0
	for _, c := range h.d.Charts {
		cj := chartJSON{ID: c.ID, Title: c.Title, Unit: c.Unit}
		for _, l := range c.Lines {
			vs := make([]float64, 0, n)
			for _, i := range order {
				vs = append(vs, h.values[i][col])
			}
			lj := lineJSON{Label: l.Label, Values: appendValues(nil, vs)}
			cj.Lines = append(cj.Lines, lj)
			col++
		}
		p.Charts = append(p.Charts, cj)
	}
	h.mu.Unlock()
	if h.d.Tables != nil {
		if t := h.d.Tables(); t != nil {
			p.Tables = t
		}
	}
	return p
}

// run samples every interval until stop is closed.
func (h *history) run(interval time.Duration, stop <-chan struct{}) {
	h.sample(time.Now())
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.sample(now)
		}
	}
}

func (h *history) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(h.page())
}

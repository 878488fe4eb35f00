package top

import (
	"sort"
	"strconv"
	"time"
)

// Commands are the command columns of the ops/s line, in order.
var Commands = []string{"get", "set", "delete", "incr", "decr", "cas", "touch", "flush"}

// commandCounters are the "stats" counters that add up to each command.
var commandCounters = map[string][]string{
	"get":    {"cmd_get"},
	"set":    {"cmd_set"},
	"delete": {"delete_hits", "delete_misses"},
	"incr":   {"incr_hits", "incr_misses"},
	"decr":   {"decr_hits", "decr_misses"},
	"cas":    {"cas_hits", "cas_misses", "cas_badval"},
	"touch":  {"cmd_touch"},
	"flush":  {"cmd_flush"},
}

// Rates is what changed between two samples of a server, per second.
type Rates struct {
	Interval     time.Duration
	Ops          map[string]float64 // by command (Commands)
	Hits, Misses float64            // get hits and misses
	Evictions    float64
	BytesRead    float64 // bytes_read: what clients sent
	BytesWritten float64 // bytes_written: what the server sent
	Classes      map[int]ClassRates
}

// ClassRates are one slab class's rates.
type ClassRates struct {
	Gets, Sets float64 // get_hits and cmd_set of "stats slabs"
	Evictions  float64
}

// Total is the sum of the command rates.
func (r *Rates) Total() float64 {
	var t float64
	for _, v := range r.Ops {
		t += v
	}
	return t
}

// HitRatio is hits over gets during the interval, and false when there
// were no gets.
func (r *Rates) HitRatio() (float64, bool) {
	if r.Hits+r.Misses == 0 {
		return 0, false
	}
	return r.Hits / (r.Hits + r.Misses), true
}

// Diff returns the rates between prev and cur, two samples of one server.
// A counter that went down (a restart, "stats reset") counts from zero.
func Diff(prev, cur *Sample) Rates {
	dt := cur.Time.Sub(prev.Time)
	secs := dt.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	rate := func(p, c uint64) float64 {
		if c < p {
			return float64(c) / secs
		}
		return float64(c-p) / secs
	}
	r := Rates{Interval: dt, Ops: map[string]float64{}, Classes: map[int]ClassRates{}}
	for cmd, names := range commandCounters {
		for _, n := range names {
			r.Ops[cmd] += rate(prev.Int(n), cur.Int(n))
		}
	}
	r.Hits = rate(prev.Int("get_hits"), cur.Int("get_hits"))
	r.Misses = rate(prev.Int("get_misses"), cur.Int("get_misses"))
	r.Evictions = rate(prev.Int("evictions"), cur.Int("evictions"))
	r.BytesRead = rate(prev.Int("bytes_read"), cur.Int("bytes_read"))
	r.BytesWritten = rate(prev.Int("bytes_written"), cur.Int("bytes_written"))
	for id, c := range cur.Classes {
		p := prev.Classes[id]
		r.Classes[id] = ClassRates{
			Gets:      rate(classInt(p, "get_hits"), classInt(c, "get_hits")),
			Sets:      rate(classInt(p, "cmd_set"), classInt(c, "cmd_set")),
			Evictions: rate(classInt(p, "evicted"), classInt(c, "evicted")),
		}
	}
	return r
}

// classInt returns a class stat as an integer, or 0.
func classInt(c map[string]string, name string) uint64 {
	v, _ := strconv.ParseUint(c[name], 10, 64)
	return v
}

// ClassRow is one row of the slab class table.
type ClassRow struct {
	ID        int
	ChunkSize uint64
	Items     uint64 // items:N:number
	Pages     uint64
	Memory    uint64 // total_pages × the page size it implies: chunk_size × chunks_per_page
	Evicted   uint64
	Rates     ClassRates
}

// SortColumns are the columns the class table can be sorted by, in the
// order the sort key cycles through them. "class" sorts ascending, the
// others descending.
var SortColumns = []string{"class", "items", "memory", "evicted", "gets/s", "sets/s"}

// ClassRows returns the class table of cur, with rates when r is not nil,
// sorted by SortColumns[col].
func ClassRows(cur *Sample, r *Rates, col int) []ClassRow {
	rows := make([]ClassRow, 0, len(cur.Classes))
	for id, c := range cur.Classes {
		row := ClassRow{
			ID:        id,
			ChunkSize: classInt(c, "chunk_size"),
			Items:     classInt(c, "number"),
			Pages:     classInt(c, "total_pages"),
			Memory:    classInt(c, "total_pages") * classInt(c, "chunk_size") * classInt(c, "chunks_per_page"),
			Evicted:   classInt(c, "evicted"),
		}
		if row.ChunkSize == 0 && row.Items == 0 && row.Pages == 0 {
			continue
		}
		if r != nil {
			row.Rates = r.Classes[id]
		}
		rows = append(rows, row)
	}
	key := func(row ClassRow) float64 {
		switch SortColumns[col%len(SortColumns)] {
		case "items":
			return float64(row.Items)
		case "memory":
			return float64(row.Memory)
		case "evicted":
			return float64(row.Evicted)
		case "gets/s":
			return row.Rates.Gets
		case "sets/s":
			return row.Rates.Sets
		}
		return -float64(row.ID)
	}
	sort.Slice(rows, func(i, j int) bool {
		ki, kj := key(rows[i]), key(rows[j])
		if ki != kj {
			return ki > kj
		}
		return rows[i].ID < rows[j].ID
	})
	return rows
}

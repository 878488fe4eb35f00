package mctool

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// SlabClass is one row of memcached-tool's display table.
type SlabClass struct {
	Class       int    `json:"class"`
	ChunkSize   int64  `json:"chunk_size"`
	ItemSize    string `json:"item_size"` // as displayed: "96B", "1.2K"
	MaxAge      int64  `json:"max_age"`
	Pages       int64  `json:"pages"`
	Count       int64  `json:"count"`
	Full        bool   `json:"full"`
	Evicted     int64  `json:"evicted"`
	EvictTime   int64  `json:"evict_time"`
	OutOfMemory int64  `json:"oom"`
}

var (
	itemStat = regexp.MustCompile(`^items:(\d+):(\w+)$`)
	slabStat = regexp.MustCompile(`^(\d+):(\w+)$`)
	digits   = regexp.MustCompile(`^\d+`)
)

// SlabTable builds memcached-tool's display rows from "stats items" and
// "stats slabs": one per class up to the last class "stats slabs" lists,
// leaving out classes without pages.
func SlabTable(items, slabs []Stat) []SlabClass {
	byClass := map[int]map[string]int64{}
	put := func(class, name, value string) bool {
		v := digits.FindString(value)
		if v == "" {
			return false // memcached-tool's pattern wants digits
		}
		id, _ := strconv.Atoi(class)
		n, _ := strconv.ParseInt(v, 10, 64)
		if byClass[id] == nil {
			byClass[id] = map[string]int64{}
		}
		byClass[id][name] = n
		return true
	}
	for _, s := range items {
		if m := itemStat.FindStringSubmatch(s.Name); m != nil {
			put(m[1], m[2], s.Value)
		}
	}
	maxClass := 0
	for _, s := range slabs {
		if m := slabStat.FindStringSubmatch(s.Name); m != nil && put(m[1], m[2], s.Value) {
			maxClass, _ = strconv.Atoi(m[1])
		}
	}
	var out []SlabClass
	for n := 1; n <= maxClass; n++ {
		it := byClass[n]
		if it["total_pages"] == 0 {
			continue
		}
		size := strconv.FormatInt(it["chunk_size"], 10) + "B"
		if it["chunk_size"] >= 1024 {
			size = fmt.Sprintf("%.1fK", float64(it["chunk_size"])/1024)
		}
		out = append(out, SlabClass{
			Class: n, ChunkSize: it["chunk_size"], ItemSize: size, MaxAge: it["age"],
			Pages: it["total_pages"], Count: it["number"], Full: it["used_chunks"] == it["total_chunks"],
			Evicted: it["evicted"], EvictTime: it["evicted_time"], OutOfMemory: it["outofmemory"],
		})
	}
	return out
}

// WriteDisplay prints the slab table as memcached-tool's display mode.
func WriteDisplay(w io.Writer, classes []SlabClass) error {
	var b strings.Builder
	b.WriteString("  #  Item_Size  Max_age   Pages   Count   Full?  Evicted Evict_Time OOM\n")
	for _, c := range classes {
		full := " no"
		if c.Full {
			full = "yes"
		}
		fmt.Fprintf(&b, "%3d %8s %9ds %7d %7d %7s %8d %8d %4d\n",
			c.Class, c.ItemSize, c.MaxAge, c.Pages, c.Count, full, c.Evicted, c.EvictTime, c.OutOfMemory)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TableStyle is the layout of one of memcached-tool's name/value tables.
type TableStyle struct {
	NameWidth  int    // width of the right-aligned name column
	ValueWidth int    // width of the right-aligned value column and its header
	Field      string // the header over the names
	Value      string // the header over the values (one server)
}

// Layouts of memcached-tool's tables: stats, and settings (which its
// sizes mode and corvid's items, slabs and conns modes share, with their
// own headers). memcached-tool pads each value one column wider but
// leaves the server's \r at its end, so the values it shows line up with
// the header: corvid prints them that way, without the \r.
var (
	StatsStyle    = TableStyle{NameWidth: 29, ValueWidth: 13, Field: "Field", Value: "Value"}
	SettingsStyle = TableStyle{NameWidth: 24, ValueWidth: 11, Field: "Field", Value: "Value"}
	SizesStyle    = TableStyle{NameWidth: 24, ValueWidth: 11, Field: "Size", Value: "Count"}
)

// WriteTable prints stats sorted by name. For one server it is
// memcached-tool's table, headed by "#host:port"; for several, one
// column per server headed by its address, "-" where a server lacks a
// stat.
func WriteTable(w io.Writer, st TableStyle, addrs []string, stats [][]Stat) error {
	maps := make([]map[string]string, len(stats))
	for i, s := range stats {
		maps[i] = StatMap(s)
	}
	names := sortedNames(maps)
	var b strings.Builder
	if len(addrs) == 1 {
		fmt.Fprintf(&b, "#%-*s %5s %*s\n", st.NameWidth-7, addrs[0], st.Field, st.ValueWidth, st.Value)
		for _, n := range names {
			fmt.Fprintf(&b, "%*s %*s\n", st.NameWidth, n, st.ValueWidth, maps[0][n])
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	widths := make([]int, len(addrs))
	for i, a := range addrs {
		widths[i] = max(st.ValueWidth, len(a))
		for _, v := range maps[i] {
			widths[i] = max(widths[i], len(v))
		}
	}
	nameWidth := st.NameWidth
	for _, n := range names {
		nameWidth = max(nameWidth, len(n))
	}
	fmt.Fprintf(&b, "%*s", nameWidth, st.Field)
	for i, a := range addrs {
		fmt.Fprintf(&b, " %*s", widths[i], a)
	}
	b.WriteByte('\n')
	for _, n := range names {
		fmt.Fprintf(&b, "%*s", nameWidth, n)
		for i := range addrs {
			v, ok := maps[i][n]
			if !ok {
				v = "-"
			}
			fmt.Fprintf(&b, " %*s", widths[i], v)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

package admin

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

// TestHistory checks the chart values a history derives from samples:
// gauges as they are, counters as rates, ratios of changes, a gap (null)
// where there is no value, and only the last History points kept.
func TestHistory(t *testing.T) {
	n := 0.0
	d := &Dashboard{
		Charts: []Chart{{ID: "a", Lines: []Line{
			{Label: "gauge", Key: "g"},
			{Label: "rate", Key: "c", Rate: true},
			{Label: "ratio", Key: "hits", Per: "gets", Scale: 100},
		}}},
		Sample: func() map[string]float64 {
			n++
			// gets grow by 10 a sample but stop after the third, hits by 5.
			return map[string]float64{"g": n, "c": 4 * n, "hits": 5 * n, "gets": 10 * min(n, 3)}
		},
	}
	h := newHistory(d, 4)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		h.sample(t0.Add(time.Duration(i) * 2 * time.Second))
	}
	b, err := json.Marshal(h.page())
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Times  []int64
		Charts []struct{ Lines []struct{ Values []*float64 } }
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1002000, 1004000, 1006000, 1008000}; !slices.Equal(p.Times, want) {
		t.Errorf("times %v, want %v", p.Times, want)
	}
	nan := math.NaN()
	want := [][]float64{
		{2, 3, 4, 5},       // the gauge
		{2, 2, 2, 2},       // 4 a sample, 2 s apart
		{50, 50, nan, nan}, // hits over gets; none once gets stop
	}
	for i, line := range p.Charts[0].Lines {
		for j, v := range line.Values {
			w := want[i][j]
			if (v == nil) != math.IsNaN(w) || v != nil && *v != w {
				t.Errorf("line %d point %d: %v, want %v (%s)", i, j, v, w, b)
			}
		}
	}
}

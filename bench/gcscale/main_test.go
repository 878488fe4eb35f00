package main

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	for _, engine := range []string{"storage", "map"} {
		t.Run(engine, func(t *testing.T) {
			var out bytes.Buffer
			err := run(config{
				items: 20000, value: 32, memMB: 64, duration: 300 * time.Millisecond,
				workers: 2, gcEvery: 50 * time.Millisecond, garbage: 8, engine: engine,
			}, &out, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				name, value, _ := strings.Cut(sc.Text(), " ")
				got[name] = value
			}
			num := func(name string) float64 {
				v, err := strconv.ParseFloat(got[name], 64)
				if err != nil {
					t.Fatalf("%s = %q: %v", name, got[name], err)
				}
				return v
			}
			if num("items") != 20000 || got["engine"] != engine {
				t.Errorf("report names the wrong run: %v", got)
			}
			// Every key was loaded and the cache is large enough: no misses.
			if num("miss_ratio") != 0 {
				t.Errorf("miss_ratio %v, want 0", got["miss_ratio"])
			}
			// Forced collections ran during the measured phase, each with
			// at least two stop-the-world pauses (sweep termination, mark
			// termination).
			if c, p := num("gc_cycles"), num("stw_pauses"); c < 1 || p < 2*c {
				t.Errorf("gc_cycles %v, stw_pauses %v: want cycles, two pauses each", c, p)
			}
			if p50, p99, mx := num("stw_pause_p50_us"), num("stw_pause_p99_us"), num("stw_pause_max_us"); !(0 < p50 && p50 <= p99 && p99 <= mx) {
				t.Errorf("pause quantiles p50 %v p99 %v max %v out of order", p50, p99, mx)
			}
			if num("ops_per_sec") <= 0 || num("heap_live_bytes") <= 0 {
				t.Errorf("no operations or no heap: %v", got)
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	for _, cfg := range []config{
		{items: 0, workers: 1, duration: time.Second, engine: "storage"},
		{items: 10, workers: 1, duration: time.Second, engine: "btree"},
		{items: 10, workers: 0, duration: time.Second, engine: "map"},
	} {
		if err := run(cfg, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%+v) succeeded", cfg)
		}
	}
}

func TestRunTooSmall(t *testing.T) {
	// 1 MB cannot hold 200000 items: the load reports it rather than
	// measuring a half-empty cache.
	err := run(config{items: 200000, value: 100, memMB: 1, duration: time.Second, workers: 1, engine: "storage"}, io.Discard, io.Discard)
	if err == nil {
		t.Error("load into a too small cache succeeded")
	}
}

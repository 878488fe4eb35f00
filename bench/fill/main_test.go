package main

import (
	"bufio"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    memSample
		wantErr bool
	}{
		{
			name: "both",
			in:   "Name:\tmemcached\nVmPeak:\t  400000 kB\nVmHWM:\t   70000 kB\nVmRSS:\t   65536 kB\nThreads:\t10\n",
			want: memSample{rssKiB: 65536, hwmKiB: 70000},
		},
		{name: "rss only", in: "VmRSS:\t 12 kB\n", want: memSample{rssKiB: 12}},
		{name: "missing", in: "Name:\tx\n", wantErr: true},
		{name: "bad unit", in: "VmRSS:\t 12 MB\n", wantErr: true},
		{name: "overflow", in: "VmRSS:\t 99999999999999999999 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatus error = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("parseStatus = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStats(t *testing.T) {
	in := "STAT pid 12\r\nSTAT version 1.6.18\r\nSTAT curr_items 3\r\nEND\r\n"
	got, err := parseStats(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if got["curr_items"] != "3" || got["version"] != "1.6.18" || len(got) != 3 {
		t.Errorf("parseStats = %v", got)
	}
	for _, bad := range []string{"STAT x 1\r\n", "ERROR\r\n"} {
		if _, err := parseStats(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("parseStats(%q) succeeded, want error", bad)
		}
	}
}

func TestLogUniform(t *testing.T) {
	const lo, hi, n = 10, 100 * 1024, 200000
	rng := rand.New(rand.NewPCG(1, 2))
	var decades [5]int // [10,100) [100,1e3) [1e3,1e4) [1e4,1e5) [1e5,hi]
	for range n {
		s := logUniform(rng, lo, hi)
		if s < lo || s > hi {
			t.Fatalf("logUniform = %d, outside [%d, %d]", s, lo, hi)
		}
		d := 0
		for v := s; v >= 100 && d < 4; v /= 10 {
			d++
		}
		decades[d]++
	}
	// Each of the four full decades should get about a quarter of the sets.
	for d := range 4 {
		if share := float64(decades[d]) / n; share < 0.22 || share > 0.27 {
			t.Errorf("decade %d got %.3f of sizes, want about 0.245", d, share)
		}
	}
}

package server_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/corvidcache/corvid/server"
)

// TestStatsFunc checks that Server.Stats hands over, for each group, the
// stats the stats command prints, with the values the traffic made.
func TestStatsFunc(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	num := regexp.MustCompile(`^(items:)?\d+:`)
	for _, group := range []string{"", "settings", "items", "slabs"} {
		want := statNames(t, addr, group) // also sets and gets a:b
		seen := map[string]bool{}
		if !srv.Stats(group, func(name, _ string) { seen[num.ReplaceAllString(name, "${1}N:")] = true }) {
			t.Fatalf("Stats(%q) refused the group", group)
		}
		var got []string
		for n := range seen {
			got = append(got, n)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("Stats(%q) names:\n%q\nthe stats command's:\n%q", group, got, want)
		}
	}
	vals := map[string]string{}
	srv.Stats("", func(name, v string) { vals[name] = v })
	if vals["cmd_set"] != "4" || vals["get_hits"] != "4" {
		t.Errorf("after 4 sets and 4 hits: cmd_set %q get_hits %q", vals["cmd_set"], vals["get_hits"])
	}
	if srv.Stats("conns", func(string, string) {}) {
		t.Error(`Stats("conns") is not a group it serves, yet it reported true`)
	}
}

package server_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// notReported are the memcached stats corvid leaves out on purpose: they
// describe memcached's own build or subsystems corvid does not have
// (libevent, extstore, NAPI).
var notReported = regexp.MustCompile(`^(libevent|ext_.*|num_napi_ids)$`)

// statNames returns the names a "stats [group]" reply lists, with the slab
// class or connection number replaced by N.
func statNames(t *testing.T, addr, group string) []string {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.Send([]byte("set a:b 0 0 1\r\n1\r\n"))
	c.ReadReply(testutil.LineReply)
	c.Send([]byte("get a:b\r\n"))
	c.ReadReply(testutil.ValuesReply)
	cmd := "stats"
	if group != "" {
		cmd += " " + group
	}
	c.Send([]byte(cmd + "\r\n"))
	num := regexp.MustCompile(`^(items:)?\d+:`)
	seen := map[string]bool{}
	for _, line := range strings.Split(string(c.ReadReply(testutil.StatsReply)), "\r\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "STAT" {
			continue
		}
		seen[num.ReplaceAllString(f[1], "${1}N:")] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestStatsNamesMatchMemcached checks that every stat memcached reports in
// each stats group is reported by corvid under the same name, so that
// dashboards and exporters find what they look for.
func TestStatsNamesMatchMemcached(t *testing.T) {
	mc := testutil.StartMemcached(t)
	cv := testutil.StartCorvid(t, server.Config{})
	for _, group := range []string{"", "settings", "items", "slabs", "conns"} {
		ours := map[string]bool{}
		for _, n := range statNames(t, cv, group) {
			ours[n] = true
		}
		var missing []string
		for _, n := range statNames(t, mc, group) {
			base := strings.TrimPrefix(strings.TrimPrefix(n, "items:N:"), "N:")
			if !ours[n] && !notReported.MatchString(base) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			t.Errorf("stats %s: corvid lacks %v", group, missing)
		}
	}
}

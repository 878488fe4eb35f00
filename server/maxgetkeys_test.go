package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

// TestMaxGetKeysMatchesMemcached checks a get line's bound on its keys
// (Config.MaxGetKeys, set from -o read_buf_mem_limit) against memcached
// 1.6.18 with read_buf_mem_limit=1 at its default 4 threads: a line of
// 195 keys, hits and misses, is answered whole; one of 196 or 500 keys,
// of any get command, is answered SERVER_ERROR out of memory writing get
// response and nothing else, counted in response_obj_oom; pipelined
// single-key gets are not bounded.
func TestMaxGetKeysMatchesMemcached(t *testing.T) {
	servers := map[string]string{
		"corvid": testutil.StartCorvid(t, server.Config{MaxGetKeys: server.MemcachedMaxGetKeys(1<<20, 4)}),
	}
	if testutil.MemcachedPath() != "" {
		servers["memcached"] = testutil.StartMemcached(t, "-o", "read_buf_mem_limit=1")
	}
	keys := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " key%d", i)
		}
		return b.String()
	}
	// Lines other than get and gets are at most 2048 bytes.
	short := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " k%d", i)
		}
		return b.String()
	}
	const refused = "SERVER_ERROR out of memory writing get response\r\n"
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			a := dialAdmin(t, addr)
			for i := range 100 {
				if r := a.do(fmt.Sprintf("set key%d 0 0 1\r\n%d\r\n", i, i%10)); r != "STORED\r\n" {
					t.Fatalf("set: %q", r)
				}
			}
			if r := a.do("get" + keys(195) + "\r\n"); strings.Count(r, "VALUE ") != 100 {
				t.Errorf("get of 195 keys: %d values, want 100", strings.Count(r, "VALUE "))
			}
			for _, req := range []string{"get" + keys(196), "get" + keys(500), "gets" + keys(500), "gat 0" + short(400), "gats 0" + short(196)} {
				if _, err := a.nc.Write([]byte(req + "\r\nversion\r\n")); err != nil {
					t.Fatal(err)
				}
				if r := a.read(); r != refused {
					t.Errorf("%.12s... (%d keys): %q, want %q", req, strings.Count(req, " key"), r, refused)
				}
				if r := a.read(); !strings.HasPrefix(r, "VERSION ") {
					t.Fatalf("after the refused get: %q", r)
				}
			}
			var pipelined strings.Builder
			for i := range 500 {
				fmt.Fprintf(&pipelined, "get key%d\r\n", i%100)
			}
			a.nc.Write([]byte(pipelined.String()))
			for i := range 500 {
				if r := a.read(); !strings.HasPrefix(r, "VALUE ") {
					t.Fatalf("pipelined get %d: %q", i, r)
				}
				a.read() // the value
				if r := a.read(); r != "END\r\n" {
					t.Fatalf("pipelined get %d ends with %q", i, r)
				}
			}
			if stats := a.do("stats\r\n"); !strings.Contains(stats, "STAT response_obj_oom 5\r\n") {
				t.Errorf("stats, want response_obj_oom 5:\n%s", stats)
			}
		})
	}
}

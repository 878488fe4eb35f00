package main

import (
	"errors"
	"testing"
	"time"

	"github.com/corvidcache/corvid/server"
)

// configOf parses args as corvid server's command line and returns the
// configuration, or the error and exit status it is refused with.
func configOf(t *testing.T, args ...string) (server.Config, string, int) {
	t.Helper()
	o := &serverOptions{}
	if err := serverCommand(o).Flags().Parse(args); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	cfg, err := o.config()
	if err == nil {
		return cfg, "", 0
	}
	code := 1
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	return cfg, err.Error(), code
}

// TestServerRefusesAsMemcachedReads checks command lines memcached 1.6.18
// refuses, with its message and status: the first bad option in
// command-line order (each occurrence of an option checked as it is
// read), a suboption without the value it needs ("name" with no "="),
// an empty suboption between commas, numbers read as its atoi and
// safe_strtoul read them, and its checks after the options in its order.
func TestServerRefusesAsMemcachedReads(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"-o", "bogus=1", "-f", "1.0"}, `Illegal suboption "bogus=1"`, 1},
		{[]string{"-f", "1.0", "-o", "bogus=1"}, "Factor must be greater than 1", 1},
		{[]string{"-B", "bogus", "-t", "0"}, "Invalid value for binding protocol: bogus\n -- should be one of auto, binary, or ascii", exUsage},
		{[]string{"-c", "0", "-c", "10"}, "Maximum connections must be greater than 0", 1},
		{[]string{"-R", "0", "-R", "5"}, "Number of requests per event must be greater than 0", 1},
		{[]string{"-D", ""}, "No delimiter specified", 1},
		{[]string{"-c", "abc"}, "Maximum connections must be greater than 0", 1},
		{[]string{"-t", "0x4"}, "Number of threads must be greater than 0", 1},
		{[]string{"-f", "x"}, "Factor must be greater than 1", 1},
		{[]string{"-o", "modern,,modern"}, `Illegal suboption ""`, 1},
		{[]string{"-o", ",modern"}, `Illegal suboption ""`, 1},
		{[]string{"-o", "hashpower"}, "Missing numeric argument for hashpower", 1},
		{[]string{"-o", "idle_timeout"}, "Missing numeric argument for idle_timeout", 1},
		{[]string{"-o", "hot_lru_pct"}, "Missing hot_lru_pct argument", 1},
		{[]string{"-o", "warm_lru_pct"}, "Missing warm_lru_pct argument", 1},
		{[]string{"-o", "hot_max_factor"}, "Missing hot_max_factor argument", 1},
		{[]string{"-o", "temporary_ttl"}, "Missing temporary_ttl argument", 1},
		{[]string{"-o", "lru_crawler_sleep"}, "Missing lru_crawler_sleep value", 1},
		{[]string{"-o", "lru_crawler_tocrawl"}, "Missing lru_crawler_tocrawl value", 1},
		{[]string{"-o", "lru_crawler_tocrawl="}, "lru_crawler_tocrawl takes a numeric 32bit value", 1},
		{[]string{"-o", "slab_automove_window"}, "Missing slab_automove_window argument", 1},
		{[]string{"-o", "slab_automove_freeratio"}, "Missing slab_automove_freeratio argument", 1},
		{[]string{"-o", "hash_algorithm"}, "Missing hash_algorithm argument", 1},
		{[]string{"-o", "read_buf_mem_limit="}, "could not parse argument to read_buf_mem_limit", 1},
		{[]string{"-o", "slab_automove_ratio="}, "slab_automove_ratio must be > 0 and < 1", 1},
		{[]string{"-o", "ext_threads"}, "Missing ext_threads argument", 1},
		{[]string{"-o", "ext_page_size=x"}, "could not parse argument to ext_page_size", 1},
		{[]string{"-o", "ext_max_frag=0.5x"}, "could not parse argument to ext_max_frag", 1},
		{[]string{"-o", "ext_path=/nonexistent:64m,ext_page_size=8"}, "Must specify ext_page_size before any ext_path arguments", 1},
		{[]string{"-o", "slab_sizes="}, "", exUsage},
		{[]string{"-m", "4294967296"}, "Cannot set item size limit higher than 1/2 of memory max.", exUsage},
		// After the options, memcached checks slab sizes, then the LRU
		// shares, then the protocol with -Y.
		{[]string{"-o", "hot_lru_pct=50,warm_lru_pct=40", "-o", "slab_sizes=100-90"},
			"slab size 90 cannot be lower than or equal to a previous class size", exUsage},
		{[]string{"-Y", "/dev/null", "-B", "binary", "-o", "hot_lru_pct=50,warm_lru_pct=40"},
			"hot_lru_pct + warm_lru_pct cannot be more than 80% combined", exUsage},
	} {
		_, msg, code := configOf(t, tc.args...)
		if msg != tc.want || code != tc.code {
			t.Errorf("%q: %q, exit %d; want %q, exit %d", tc.args, msg, code, tc.want, tc.code)
		}
	}
}

// TestServerTakesAsMemcachedReads checks values memcached 1.6.18 takes
// where corvid once refused them or read them otherwise.
func TestServerTakesAsMemcachedReads(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   func(server.Config) bool
	}{
		{[]string{"-o", "idle_timeout="}, func(c server.Config) bool { return c.IdleTimeout == 0 }},
		{[]string{"-o", "idle_timeout=-1"}, func(c server.Config) bool { return c.IdleTimeout == -time.Second }},
		{[]string{"-o", "slab_automove="}, func(c server.Config) bool { return c.Storage.SlabAutomove == -1 }},
		{[]string{"-o", "slab_automove"}, func(c server.Config) bool { return c.Storage.SlabAutomove == 1 }},
		{[]string{"-o", "lru_crawler_sleep="}, func(c server.Config) bool { return c.Storage.CrawlerSleep == -1 }},
		{[]string{"-o", "lru_crawler_tocrawl=4294967296"}, func(c server.Config) bool { return c.Storage.CrawlerToCrawl == 0 }},
		{[]string{"-o", "lru_crawler_tocrawl= 7 "}, func(c server.Config) bool { return c.Storage.CrawlerToCrawl == 7 }},
		{[]string{"-o", "hot_max_factor=0.5x"}, func(c server.Config) bool { return c.Storage.HotMaxFactor == 0.5 }},
		{[]string{"-o", "read_buf_mem_limit=4096"}, func(c server.Config) bool { return c.ReadBufMemLimit == -1 }},
		{[]string{"-o", "read_buf_mem_limit=4097"}, func(c server.Config) bool { return c.ReadBufMemLimit == 1<<20 }},
		{[]string{"-o", "watcher_logbuf_size=4194305"}, func(c server.Config) bool { return c.WatcherLogBufSize == 1<<10 }},
		{[]string{"-o", "worker_logbuf_size=0"}, func(c server.Config) bool { return c.WorkerLogBufSize < 0 }},
		{[]string{"-m", "4294968320"}, func(c server.Config) bool { return c.Storage.MemoryLimit == 1<<30 }},
		{[]string{"-b", "0"}, func(c server.Config) bool { return c.Backlog == server.ZeroBacklog }},
		{[]string{"-o", "slab_sizes=100- 200"}, func(c server.Config) bool {
			return len(c.Storage.SlabSizes) == 2 && c.Storage.SlabSizes[0] == 100 && c.Storage.SlabSizes[1] == 200
		}},
		{[]string{"-o", "temporary_ttl=-5"}, func(c server.Config) bool { return c.Storage.TempLRU && c.Storage.TemporaryTTL == -5 }},
		{[]string{"-o", "slab_automove_freeratio=5"}, func(c server.Config) bool {
			return c.SlabAutomoveFreeRatio != nil && *c.SlabAutomoveFreeRatio == 5
		}},
		// atoi and atof: decimal whatever the leading zeros, up to the
		// first byte that is not part of the number.
		{[]string{"-c", "0100", "-t", "010", "-p", "011211", "-U", "011211"}, func(c server.Config) bool {
			return c.MaxConns == 100 && c.Threads == 10 && c.TCPPort == 11211 && c.UDPPort == 11211
		}},
		{[]string{"-c", "50conns", "-t", " 3x", "-b", "0x20", "-n", "064z"}, func(c server.Config) bool {
			return c.MaxConns == 50 && c.Threads == 3 && c.Backlog == server.ZeroBacklog && c.Storage.ChunkSizeMin == 64
		}},
		{[]string{"-f", "1.5x"}, func(c server.Config) bool { return c.Storage.GrowthFactor == 1.5 }},
		{[]string{"-o", "modern,"}, func(c server.Config) bool { return true }},
		{[]string{"-o", "ext_item_size=512,ext_max_frag=0.5,ext_drop_unread"}, func(c server.Config) bool { return true }},
	} {
		cfg, msg, code := configOf(t, tc.args...)
		if msg != "" || code != 0 || !tc.ok(cfg) {
			t.Errorf("%q: %q, exit %d, config %+v", tc.args, msg, code, cfg)
		}
	}
}

// TestSafeStrtoul checks memcached's safe_strtoul: white space around the
// number, a sign, 32 bits kept, negative numbers refused.
func TestSafeStrtoul(t *testing.T) {
	for in, want := range map[string]int64{
		"5": 5, " 5": 5, "5 ": 5, "+5": 5, "4294967296": 0, "4294967297": 1,
		"-1": -1, "5x": -1, "": -1, "x": -1, "-": -1, "99999999999999999999": -1, "-0": 0,
	} {
		v, ok := safeStrtoul(in)
		got := int64(v)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("safeStrtoul(%q) = %d, %v; want %d", in, v, ok, want)
		}
	}
	for in, want := range map[string]int64{"4294967296": 0, "4294968320": 1024, "2147483648": -2147483648, "99999999999999999999": -1} {
		if got := leadingInt(in); got != want {
			t.Errorf("leadingInt(%q) = %d, want %d", in, got, want)
		}
	}
}

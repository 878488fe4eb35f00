package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/corvidcache/corvid/server"
	"github.com/google/go-cmp/cmp"
)

func TestServerConfigDefaults(t *testing.T) {
	o := &serverOptions{}
	cmd := serverCommand(o)
	if err := cmd.Flags().Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{":11211"}, cfg.TCPAddrs); diff != "" {
		t.Errorf("TCPAddrs (-want +got):\n%s", diff)
	}
	if cfg.MaxConns != 1024 || cfg.Threads != 4 || cfg.EventLoops != 4 || cfg.Storage.MemoryLimit != 64<<20 ||
		cfg.Storage.ItemSizeMax != 1<<20 || cfg.Storage.GrowthFactor != 1.25 || cfg.Storage.ChunkSizeMin != 48 ||
		cfg.ShutdownGrace != server.DefaultShutdownGrace {
		t.Errorf("defaults differ from memcached's: %+v", cfg)
	}
}

// TestServerConfigShutdownGrace checks --shutdown-grace, where 0 means no
// grace at all.
func TestServerConfigShutdownGrace(t *testing.T) {
	for _, c := range []struct {
		arg  string
		want time.Duration
	}{
		{"1500ms", 1500 * time.Millisecond},
		{"1m", time.Minute},
		{"0", -1},
		{"-1s", -1},
	} {
		o := &serverOptions{}
		if err := serverCommand(o).Flags().Parse([]string{"--shutdown-grace", c.arg}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ShutdownGrace != c.want {
			t.Errorf("--shutdown-grace %s: ShutdownGrace %v, want %v", c.arg, cfg.ShutdownGrace, c.want)
		}
	}
}

func TestServerConfigFlags(t *testing.T) {
	o := &serverOptions{}
	cmd := serverCommand(o)
	args := []string{"-p", "12345", "-l", "127.0.0.1,::1", "-m", "128", "-c", "10", "-t", "2",
		"-M", "-C", "-A", "-F", "-vv", "-I", "2m", "-f", "1.5", "-n", "64", "-D", "/",
		"-o", "idle_timeout=5,hashpower=20,read_buf_mem_limit=32", "-o", "hotkey_sample=4,hotkey_half_life=30", "--listen-backlog=99",
		"-o", "hot_lru_pct=10,warm_lru_pct=30,hot_max_factor=0.5,warm_max_factor=3,temporary_ttl=20",
		"-o", "lru_crawler_sleep=50,lru_crawler_tocrawl=7,klog_file=/tmp/k.log,klog_sample=5,watcher_logbuf_size=8",
		"-X", "-W"}
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"TCPAddrs", strings.Join(cfg.TCPAddrs, " "), "127.0.0.1:12345 [::1]:12345"},
		{"MemoryLimit", cfg.Storage.MemoryLimit, int64(128 << 20)},
		{"MaxConns", cfg.MaxConns, 10},
		{"Threads", cfg.Threads, 2},
		{"EventLoops", cfg.EventLoops, 2},
		{"NoEvict", cfg.Storage.NoEvict, true},
		{"DisableCAS", cfg.Storage.DisableCAS, true},
		{"EnableShutdown", cfg.EnableShutdown, true},
		{"DisableFlushAll", cfg.DisableFlushAll, true},
		{"Verbosity", cfg.Verbosity, 2},
		{"ItemSizeMax", cfg.Storage.ItemSizeMax, 2 << 20},
		{"GrowthFactor", cfg.Storage.GrowthFactor, 1.5},
		{"ChunkSizeMin", cfg.Storage.ChunkSizeMin, 64},
		{"PrefixDelimiter", cfg.PrefixDelimiter, byte('/')},
		{"DetailEnabled", cfg.DetailEnabled, true},
		{"IdleTimeout", cfg.IdleTimeout, 5 * time.Second},
		{"ReadBufMemLimit", cfg.ReadBufMemLimit, int64(32 << 20)},
		{"HashPowerInit", cfg.Storage.HashPowerInit, 20},
		{"Backlog", cfg.Backlog, 99},
		{"HotKeySample", cfg.HotKeySample, 4},
		{"HotKeyHalfLife", cfg.HotKeyHalfLife, 30 * time.Second},
		{"HotLRUPct", cfg.Storage.HotLRUPct, 10},
		{"WarmLRUPct", cfg.Storage.WarmLRUPct, 30},
		{"HotMaxFactor", cfg.Storage.HotMaxFactor, 0.5},
		{"WarmMaxFactor", cfg.Storage.WarmMaxFactor, 3.0},
		{"TempLRU", cfg.Storage.TempLRU, true},
		{"TemporaryTTL", cfg.Storage.TemporaryTTL, 20},
		{"CrawlerSleep", cfg.Storage.CrawlerSleep, 50 * time.Microsecond},
		{"CrawlerToCrawl", cfg.Storage.CrawlerToCrawl, uint32(7)},
		{"KlogFile", cfg.KlogFile, "/tmp/k.log"},
		{"KlogSample", cfg.KlogSample, 5},
		{"WatcherLogBufSize", cfg.WatcherLogBufSize, 8 << 10},
		{"DisableDumping", cfg.DisableDumping, true},
		{"DisableWatch", cfg.DisableWatch, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestServerReqsPerEvent checks that -R is read as memcached's atoi reads
// it: leading digits, and a negative number taken.
func TestServerReqsPerEvent(t *testing.T) {
	for arg, want := range map[string]int{"": 20, "5": 5, "5x": 5, "-1": -1, " 7": 7} {
		o := &serverOptions{}
		cmd := serverCommand(o)
		var args []string
		if arg != "" {
			args = []string{"-R", arg}
		}
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("-R %q: %v", arg, err)
			continue
		}
		if cfg.ReqsPerEvent != want {
			t.Errorf("-R %q: ReqsPerEvent %d, want %d", arg, cfg.ReqsPerEvent, want)
		}
	}
}

// TestServerLogBufSizes checks watcher_logbuf_size and worker_logbuf_size,
// kilobytes as memcached takes them, 0 included.
func TestServerLogBufSizes(t *testing.T) {
	cases := []struct {
		opt             string
		watcher, worker int
	}{
		{"watcher_logbuf_size=1", 1 << 10, 0},
		{"watcher_logbuf_size=0", -1, 0},
		{"worker_logbuf_size=128", 0, 128 << 10},
		{"watcher_logbuf_size=2,worker_logbuf_size=1", 2 << 10, 1 << 10},
	}
	for _, c := range cases {
		o := &serverOptions{}
		cmd := serverCommand(o)
		if err := cmd.Flags().Parse([]string{"-o", c.opt}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("%s: %v", c.opt, err)
			continue
		}
		if cfg.WatcherLogBufSize != c.watcher || cfg.WorkerLogBufSize != c.worker {
			t.Errorf("%s: WatcherLogBufSize %d, WorkerLogBufSize %d, want %d, %d",
				c.opt, cfg.WatcherLogBufSize, cfg.WorkerLogBufSize, c.watcher, c.worker)
		}
	}
}

// TestServerConfigErrors checks that what memcached refuses is refused with
// memcached's message and exit status: EX_USAGE (64) for the checks it makes
// once its options are read, 1 for a bad option value.
func TestServerConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
		code int // memcached's exit status
	}{
		{[]string{"-o", "bogus"}, `Illegal suboption "bogus"`, 1},
		{[]string{"-o", "hashpower=5"}, "Initial hashtable multiplier of 5 is too low", 1},
		{[]string{"-o", "hotkey_sample=-2"}, "hotkey_sample must be 0 (off) or a positive number", 1},
		{[]string{"-o", "hotkey_half_life=0"}, "hotkey_half_life must be a positive number", 1},
		{[]string{"-f", "0.5"}, "Factor must be greater than 1", 1},
		{[]string{"-n", "0"}, "Chunk size must be greater than 0", 1},
		{[]string{"-c", "0"}, "Maximum connections must be greater than 0", 1},
		{[]string{"-t", "0"}, "Number of threads must be greater than 0", 1},
		{[]string{"-R", "0"}, "Number of requests per event must be greater than 0", 1},
		{[]string{"-R", "abc"}, "Number of requests per event must be greater than 0", 1},
		{[]string{"-B", "foo"}, "Invalid value for binding protocol: foo", 64},
		{[]string{"-p", "70000"}, "ERROR: Invalid port number 70000.", 64},
		{[]string{"-I", "5"}, "Item max size cannot be less than 1024 bytes.", 64},
		{[]string{"-I", "2k"}, "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 2048)", 64},
		{[]string{"-m", "1g"}, "Cannot set item size limit higher than 1/2 of memory max.", 64},
		{[]string{"-I", "2048m", "-m", "100000"}, "Item max size cannot be less than 1024 bytes.", 64},
		{[]string{"-I", "1025m", "-m", "100000"}, "Cannot set item size limit higher than a gigabyte.", 64},
		{[]string{"-o", "hot_lru_pct=80"}, "hot_lru_pct must be > 1 and < 80", 1},
		{[]string{"-o", "warm_lru_pct=0"}, "warm_lru_pct must be > 1 and < 80", 1},
		{[]string{"-o", "hot_lru_pct=50,warm_lru_pct=40"}, "hot_lru_pct + warm_lru_pct cannot be more than 80% combined", 64},
		{[]string{"-o", "hot_max_factor=0"}, "hot_max_factor must be > 0", 1},
		{[]string{"-o", "warm_max_factor=x"}, "warm_max_factor must be > 0", 1},
		{[]string{"-o", "lru_crawler_sleep=2000000"}, "LRU crawler sleep must be between 0 and 1 second", 1},
		{[]string{"-o", "lru_crawler_tocrawl=-1"}, "lru_crawler_tocrawl takes a numeric 32bit value", 1},
		{[]string{"-o", "no_lru_maintainer,temporary_ttl=5"}, "temporary_ttl requires lru_maintainer to be enabled", 64},
		{[]string{"-o", "klog_sample=0"}, "klog_sample must be a positive number", 1},
		{[]string{"-o", "watcher_logbuf_size"}, "Missing watcher_logbuf_size argument", 1},
		{[]string{"-o", "watcher_logbuf_size=-1"}, "could not parse argument to watcher_logbuf_size", 1},
		{[]string{"-o", "watcher_logbuf_size=abc"}, "could not parse argument to watcher_logbuf_size", 1},
		{[]string{"-o", "worker_logbuf_size"}, "Missing worker_logbuf_size argument", 1},
		{[]string{"-o", "worker_logbuf_size=abc"}, "could not parse argument to worker_logbuf_size", 1},
		{[]string{"-o", "slab_sizes"}, "Missing slab_sizes argument", 1},
		{[]string{"-o", "tail_repair_time"}, "Missing numeric argument for tail_repair_time", 1},
		{[]string{"-o", "hashpower=12"}, "Hash table power size (12) cannot be equal to or less than item lock table (12)", 1},
		{[]string{"-t", "2", "-o", "hashpower=10"}, "Initial hashtable multiplier of 10 is too low", 1},
		{[]string{"-t", "11", "-o", "hashpower=14"}, "Hash table power size (14) cannot be equal to or less than item lock table (14)", 1},
		{[]string{"-t", "21", "-o", "hashpower=15"}, "Hash table power size (15) cannot be equal to or less than item lock table (15)", 1},
		{[]string{"-o", "tail_repair_time=9"}, "Cannot set tail_repair_time to less than 10 seconds", 1},
		{[]string{"-o", "tail_repair_time=abc"}, "Cannot set tail_repair_time to less than 10 seconds", 1},
		{[]string{"-o", "slab_sizes=47"}, "slab size 47 is out of valid range", 64},
		{[]string{"-n", "100", "-o", "slab_sizes=96-200"}, "slab size 96 is out of valid range", 64},
		{[]string{"-o", "slab_sizes=100-524289"}, "slab size 524289 is out of valid range", 64},
		{[]string{"-o", "slab_sizes=100-20000,slab_chunk_max=16384"}, "slab size 20000 is out of valid range", 64},
		{[]string{"-o", "slab_sizes=60-5x"}, "slab size 0 is out of valid range", 64},
		{[]string{"-o", "slab_sizes=100-90"}, "slab size 90 cannot be lower than or equal to a previous class size", 64},
		{[]string{"-o", "slab_sizes=100-108"}, "slab size 108 must be at least 8 bytes larger than previous class", 64},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			o := &serverOptions{}
			cmd := serverCommand(o)
			if err := cmd.Flags().Parse(c.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := o.config()
			if err == nil {
				// Checked as the server starts, as memcached does.
				err = checkLockPower(o.threads, orDefault(cfg.Storage.HashPowerInit, 16))
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
			if got := exitStatus(err); got != c.code {
				t.Fatalf("exit status %d, want %d", got, c.code)
			}
		})
	}
}

func TestServerConfigUnixSocketDisablesTCP(t *testing.T) {
	o := &serverOptions{}
	cmd := serverCommand(o)
	if err := cmd.Flags().Parse([]string{"-s", "/tmp/x.sock", "-a", "770"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TCPAddrs) != 0 || cfg.UnixPath != "/tmp/x.sock" || cfg.UnixMask != 0o770 {
		t.Errorf("got TCPAddrs %v, UnixPath %q, mask %o", cfg.TCPAddrs, cfg.UnixPath, cfg.UnixMask)
	}
}

func TestLeadingInt(t *testing.T) {
	for in, want := range map[string]int64{"64": 64, "64m": 64, "1g": 1, "x": 0, "-3": -3, " 12": 12} {
		if got := leadingInt(in); got != want {
			t.Errorf("leadingInt(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestServerConfigAuthRules(t *testing.T) {
	tests := []struct {
		args    []string
		want    server.Protocol
		wantErr string
	}{
		{[]string{"-S"}, server.ProtoBinary, ""},
		{[]string{"-S", "-B", "binary"}, server.ProtoBinary, ""},
		{[]string{"-S", "-B", "auto"}, 0, "ERROR: You cannot allow the ASCII protocol while using SASL."},
		{[]string{"-S", "-U", "11211"}, 0, "ERROR: Cannot enable UDP while using binary SASL authentication."},
		{[]string{"-Y", "/dev/null"}, server.ProtoASCII, ""},
		{[]string{"-Y", "/dev/null", "-B", "binary"}, 0, "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."},
		{[]string{"-Y", "/dev/null", "-B", "auto"}, 0, "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."},
		{[]string{"-Y", "/dev/null", "-B", "ascii"}, server.ProtoASCII, ""},
		{[]string{"-Y", "/dev/null", "-U", "11211"}, 0, "Cannot use UDP with ascii authentication enabled (-U 0 to disable)"},
		{[]string{"-Y", "/dev/null", "-U", "0"}, server.ProtoASCII, ""},
		{[]string{"-B", "binary"}, server.ProtoBinary, ""},
		{nil, server.ProtoAuto, ""},
	}
	for _, tt := range tests {
		o := &serverOptions{}
		if err := serverCommand(o).Flags().Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%v: error %v, want %q", tt.args, err, tt.wantErr)
			} else if code := exitStatus(err); code != 64 {
				t.Errorf("%v: exit status %d, want memcached's EX_USAGE (64)", tt.args, code)
			}
			continue
		}
		if err != nil || cfg.Protocol != tt.want {
			t.Errorf("%v: protocol %v, err %v; want %v", tt.args, cfg.Protocol, err, tt.want)
		}
	}
}

func TestServerConfigUDP(t *testing.T) {
	tests := []struct {
		args     []string
		tcp, udp []string
	}{
		{[]string{"-U", "11311"}, []string{":11311"}, []string{":11311"}}, // as memcached: -U without -p moves TCP too
		{[]string{"-p", "11211", "-U", "11311"}, []string{":11211"}, []string{":11311"}},
		{[]string{"-U", "0"}, []string{":11211"}, nil},
		{[]string{"-p", "0", "-U", "11311"}, nil, []string{":11311"}},
		{[]string{"-p", "0", "-U", "11311", "-l", "127.0.0.1,::1"}, nil, []string{"127.0.0.1:11311", "[::1]:11311"}},
		{[]string{"-l", "127.0.0.1"}, []string{"127.0.0.1:11211"}, nil},
		{[]string{"-s", "/tmp/x.sock", "-U", "11311"}, nil, nil},
	}
	for _, tt := range tests {
		o := &serverOptions{}
		if err := serverCommand(o).Flags().Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if fmt.Sprint(cfg.TCPAddrs) != fmt.Sprint(tt.tcp) || fmt.Sprint(cfg.UDPAddrs) != fmt.Sprint(tt.udp) {
			t.Errorf("%v: TCP %q UDP %q, want %q %q", tt.args, cfg.TCPAddrs, cfg.UDPAddrs, tt.tcp, tt.udp)
		}
	}
	o := &serverOptions{}
	serverCommand(o).Flags().Parse([]string{"-p", "0"})
	if _, err := o.config(); err == nil {
		t.Error("-p 0 without -U or -s: no error")
	}
	o = &serverOptions{}
	serverCommand(o).Flags().Parse([]string{"-U", "70000"})
	if _, err := o.config(); err == nil || err.Error() != "ERROR: Invalid port number 70000." || exitStatus(err) != 64 {
		t.Errorf("-U 70000 alone: %v, want memcached's invalid port number, exit 64", err)
	}
}

// TestServerMaxGetKeys checks that a read_buf_mem_limit given on the
// command line bounds a get line's keys as memcached 1.6.18 does with the
// same -t and limit (measured against it: 195 keys at -t 4 and 1 MB, 819
// at -t 1, 403 at -t 4 and 2 MB, 260 at -t 3), and that without it, or
// with 0, a line's keys are not bounded.
func TestServerMaxGetKeys(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"-o", "read_buf_mem_limit=0"}, 0},
		{[]string{"-o", "read_buf_mem_limit=1"}, 195},
		{[]string{"-t", "1", "-o", "read_buf_mem_limit=1"}, 819},
		{[]string{"-o", "read_buf_mem_limit=2", "-t", "4"}, 403},
		{[]string{"-t", "3", "-o", "read_buf_mem_limit=1"}, 260},
		{[]string{"-t", "64", "-o", "read_buf_mem_limit=1"}, -1},
	}
	for _, c := range cases {
		o := &serverOptions{}
		cmd := serverCommand(o)
		if err := cmd.Flags().Parse(c.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if cfg.MaxGetKeys != c.want {
			t.Errorf("%q: MaxGetKeys %d, want %d", c.args, cfg.MaxGetKeys, c.want)
		}
	}
}

// TestServerModernOptions checks the crawler and maintainer options in
// the order memcached applies them: no_modern turns off the crawler, the
// maintainer and page moves, a later option turns one back on, and
// modern changes nothing.
func TestServerModernOptions(t *testing.T) {
	type want struct{ noCrawler, noMaintainer, noReassign bool }
	for opts, w := range map[string]want{
		"no_modern":                         {true, true, true},
		"no_modern,lru_crawler":             {false, true, true},
		"no_modern,lru_maintainer":          {true, false, true},
		"no_modern,slab_reassign":           {true, true, false},
		"no_slab_reassign,modern":           {false, false, true},
		"no_lru_crawler,no_lru_maintainer":  {true, true, false},
		"no_lru_crawler,lru_crawler":        {false, false, false},
		"no_lru_maintainer,lru_maintainer":  {false, false, false},
		"lru_crawler,lru_maintainer,modern": {false, false, false},
	} {
		o := &serverOptions{}
		cmd := serverCommand(o)
		if err := cmd.Flags().Parse([]string{"-o", opts}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("-o %s: %v", opts, err)
			continue
		}
		sc := cfg.Storage
		got := want{sc.NoCrawler, sc.NoLRUMaintainer, sc.NoSlabReassign}
		if got != w {
			t.Errorf("-o %s: (NoCrawler, NoLRUMaintainer, NoSlabReassign) = %v, want %v", opts, got, w)
		}
		if len(cfg.Unsupported) != 0 {
			t.Errorf("-o %s: reported unsupported: %v", opts, cfg.Unsupported)
		}
		if strings.Contains(opts, "no_modern") && sc.SlabAutomove != -1 {
			t.Errorf("-o %s: SlabAutomove %d, want -1 (off)", opts, sc.SlabAutomove)
		}
	}
}

// TestServerSuboptionsMemcachedTakes checks suboptions memcached 1.6.18
// takes that corvid once refused as illegal: no_slab_automove turns the
// automover off as slab_automove=0 does, the dead inline_ascii_resp and
// no_inline_ascii_resp change nothing (as in memcached).
func TestServerSuboptionsMemcachedTakes(t *testing.T) {
	for _, tc := range []struct {
		opts        string
		automove    int
		unsupported string
	}{
		{"no_slab_automove", -1, ""},
		{"slab_automove=2,no_slab_automove", -1, ""},
		{"inline_ascii_resp", 0, ""},
		{"no_hashexpand", 0, ""},
		{"no_inline_ascii_resp", 0, ""},
	} {
		o := &serverOptions{}
		if err := serverCommand(o).Flags().Parse([]string{"-o", tc.opts}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("-o %s: %v", tc.opts, err)
			continue
		}
		if cfg.Storage.SlabAutomove != tc.automove {
			t.Errorf("-o %s: SlabAutomove %d, want %d", tc.opts, cfg.Storage.SlabAutomove, tc.automove)
		}
		if cfg.Storage.NoHashExpand != (tc.opts == "no_hashexpand") {
			t.Errorf("-o %s: NoHashExpand %v", tc.opts, cfg.Storage.NoHashExpand)
		}
		if got := strings.Join(cfg.Unsupported, ","); got != tc.unsupported {
			t.Errorf("-o %s: reported unsupported %q, want %q", tc.opts, got, tc.unsupported)
		}
	}
}

// TestServerSlabSizes checks that -o slab_sizes is read as memcached reads
// it: sizes between dashes, empty ones skipped (so "-" leaves only the
// largest class), trailing white space and a plus sign taken.
func TestServerSlabSizes(t *testing.T) {
	for opts, want := range map[string][]int{
		"slab_sizes=96-128-256":                    {96, 128, 256},
		"slab_sizes=-":                             {},
		"slab_sizes=100 -200":                      {100, 200},
		"slab_sizes=+100--200-":                    {100, 200},
		"slab_chunk_max=16384,slab_sizes=48-16384": {48, 16384},
	} {
		o := &serverOptions{}
		if err := serverCommand(o).Flags().Parse([]string{"-o", opts}); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config()
		if err != nil {
			t.Errorf("-o %s: %v", opts, err)
			continue
		}
		if got := cfg.Storage.SlabSizes; got == nil || fmt.Sprint(got) != fmt.Sprint(want) || len(cfg.Unsupported) != 0 {
			t.Errorf("-o %s: sizes %v (unsupported %v), want %v", opts, got, cfg.Unsupported, want)
		}
	}
}

package procs

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestInputs: the inputs read twice in a row are the same, count the
// CPUs the process may use, and give the default GOMAXPROCS the runtime
// computes.
func TestInputs(t *testing.T) {
	read := newInputs()
	a, ok := read()
	if !ok {
		t.Fatal("cannot read the inputs")
	}
	b, ok := read()
	if !ok || a != b {
		t.Fatalf("read twice: %+v then %+v (ok %v)", a, b, ok)
	}
	if a.cpus < 1 || a.cpus != runtime.NumCPU() {
		t.Fatalf("inputs count %d CPUs, runtime.NumCPU %d", a.cpus, runtime.NumCPU())
	}
	if os.Getenv("GOMAXPROCS") != "" || os.Getenv("GODEBUG") != "" {
		t.Skip("GOMAXPROCS or GODEBUG set: the runtime's default is not checked")
	}
	want := a.cpus
	if limit, ok := parseLimit(t, a.limit); ok {
		want = min(want, max(2, int(math.Ceil(limit))))
	}
	// GOMAXPROCS is the runtime's default in a test process that has
	// not set it.
	if got := runtime.GOMAXPROCS(0); got != want {
		t.Errorf("inputs %+v give GOMAXPROCS %d, the runtime has %d", a, want, got)
	}
}

// parseLimit reads the CPUs a cgroup's limit files allow from their
// text (one line, quota and period, for cgroup v2; two, quota then
// period, for v1); ok is false without a limit.
func parseLimit(t *testing.T, text string) (cpus float64, ok bool) {
	t.Helper()
	f := strings.Fields(text)
	switch {
	case len(f) == 0 || f[0] == "max" || f[0] == "-1":
		return 0, false
	case len(f) != 2:
		t.Fatalf("limit %q: want a quota and a period", text)
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		t.Fatalf("limit %q: want a quota and a period", text)
	}
	return quota / period, true
}

func TestCPUCgroup(t *testing.T) {
	for _, c := range []struct {
		name, text string
		v1         bool
		cgroup     string
	}{
		{"v2", "0::/user.slice/corvid.scope\n", false, "/user.slice/corvid.scope"},
		{"hybrid", "9:name=systemd:/a\n2:cpuacct:/b\n1:cpu,cpuacct:/c/d\n0::/e\n", true, "/c/d"},
		{"v1 after v2", "0::/e\n1:cpu:/c\n", true, "/c"},
		{"no cpu controller", "4:memory:/m\n3:cpuset:/s\n", false, ""},
		{"colon in path", "0::/a:b\n", false, "/a:b"},
	} {
		v1, cgroup, err := cpuCgroup(c.text)
		if err != nil || v1 != c.v1 || cgroup != c.cgroup {
			t.Errorf("%s: v1 %v, cgroup %q, err %v; want %v, %q", c.name, v1, cgroup, err, c.v1, c.cgroup)
		}
	}
	if _, _, err := cpuCgroup("0:/a\n"); err == nil {
		t.Error("a line with two fields: no error")
	}
}

func TestCgroupDir(t *testing.T) {
	const mounts = `24 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
25 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 24 0:24 /kube/pod1 /sys/fs/cgroup/cpuset rw shared:10 - cgroup cgroup rw,cpuset
27 24 0:25 /docker/abc /sys/fs/cgroup/unified\040dir rw master:3 - cgroup2 cgroup2 rw
`
	for _, c := range []struct {
		name   string
		v1     bool
		cgroup string
		dir    string
	}{
		{"v1", true, "/user.slice/x", "/sys/fs/cgroup/cpu,cpuacct/user.slice/x"},
		{"v1 root", true, "/", "/sys/fs/cgroup/cpu,cpuacct"},
		{"v2 at the mount's root", false, "/docker/abc", "/sys/fs/cgroup/unified dir"},
		{"v2 below it", false, "/docker/abc/sub", "/sys/fs/cgroup/unified dir/sub"},
		{"v2 not under the mount's root", false, "/docker/abcd", ""},
		{"v2 outside", false, "/other", ""},
	} {
		dir, err := cgroupDir(mounts, c.v1, c.cgroup)
		if err != nil || dir != c.dir {
			t.Errorf("%s: %q, %v; want %q", c.name, dir, err, c.dir)
		}
	}
	// A cgroup namespace's view of a cgroup outside it.
	ns := "40 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	if dir, err := cgroupDir(ns, false, "/../x"); err != nil || dir != "" {
		t.Errorf("cgroup outside the namespace: %q, %v; want none", dir, err)
	}
	if _, err := cgroupDir("1 2 0:3 / /x rw\n", false, "/"); err == nil {
		t.Error("a line without its file system type: no error")
	}
}

package procs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// newInputs returns a reader of defaultInputs: the CPUs in the affinity
// mask and the text of the CPU limit files of the cgroup the process is
// in, found once here, as the runtime finds them once when the process
// starts. Where those files cannot be told, the reader reports that it
// cannot read the inputs.
func newInputs() func() (defaultInputs, bool) {
	files, err := cpuLimitFiles()
	if err != nil {
		return func() (defaultInputs, bool) { return defaultInputs{}, false }
	}
	return func() (defaultInputs, bool) { return readInputs(files) }
}

// readInputs reads the affinity mask's CPUs and the text of files.
func readInputs(files []string) (defaultInputs, bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return defaultInputs{}, false
	}
	in := defaultInputs{cpus: set.Count()}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return defaultInputs{}, false
		}
		in.limit += string(b)
	}
	return in, true
}

// cpuLimitFiles returns the files the runtime reads the process's cgroup
// CPU limit from (cpu.cfs_quota_us and cpu.cfs_period_us of a cgroup v1
// hierarchy with the cpu controller, else cpu.max of the cgroup v2
// one), none where the process has no such cgroup or the runtime could
// not open them, or an error where that cannot be told.
func cpuLimitFiles() ([]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v1, cgroup, err := cpuCgroup(string(b))
	if err != nil || cgroup == "" {
		return nil, err
	}
	b, err = os.ReadFile("/proc/self/mountinfo")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dir, err := cgroupDir(string(b), v1, cgroup)
	if err != nil || dir == "" {
		return nil, err
	}
	names := []string{"cpu.max"}
	if v1 {
		names = []string{"cpu.cfs_quota_us", "cpu.cfs_period_us"}
	}
	var files []string
	for _, n := range names {
		f, err := os.Open(path.Join(dir, n))
		if err != nil {
			// Nor could the runtime open it: it reads no limit.
			return nil, nil
		}
		f.Close()
		files = append(files, f.Name())
	}
	return files, nil
}

var errMalformed = errors.New("procs: malformed cgroup file")

// cpuCgroup returns the path of the process's CPU cgroup from the text
// of /proc/self/cgroup: that of the first cgroup v1 hierarchy whose
// controllers include cpu (v1 true), else that of the cgroup v2 one, ""
// without either.
func cpuCgroup(text string) (v1 bool, cgroup string, err error) {
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		hierarchy, rest, ok1 := strings.Cut(line, ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			return false, "", errMalformed
		}
		switch {
		case hierarchy == "0" && controllers == "":
			cgroup = p
		case hasWord(controllers, "cpu"):
			return true, p, nil
		}
	}
	return false, cgroup, nil
}

// cgroupDir returns the directory of cgroup from the text of
// /proc/self/mountinfo: under the first mount of the hierarchy (v1 with
// the cpu controller, else v2) whose root holds it, "" where none does.
func cgroupDir(text string, v1 bool, cgroup string) (string, error) {
	for line := range strings.Lines(text) {
		// ID, parent ID, device, root, mount point, options,
		// optional fields up to "-", file system type, source,
		// super options.
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			return "", errMalformed
		}
		fsType, super := f[sep+1], ""
		if sep+3 < len(f) {
			super = f[sep+3]
		}
		if v1 && (fsType != "cgroup" || !hasWord(super, "cpu")) || !v1 && fsType != "cgroup2" {
			continue
		}
		root, err1 := unescapeMount(f[3])
		mnt, err2 := unescapeMount(f[4])
		if err1 != nil || err2 != nil || !strings.HasPrefix(root, "/") {
			return "", errMalformed
		}
		rel := cgroup
		if root != "/" {
			var ok bool
			if rel, ok = strings.CutPrefix(cgroup, root); !ok || rel != "" && rel[0] != '/' {
				continue
			}
		}
		if rel == "/.." || strings.HasPrefix(rel, "/../") {
			continue // outside the mount
		}
		return path.Join(mnt, rel), nil
	}
	return "", nil
}

// hasWord reports whether the comma-separated list holds word.
func hasWord(list, word string) bool {
	for w := range strings.SplitSeq(list, ",") {
		if w == word {
			return true
		}
	}
	return false
}

// unescapeMount undoes the octal escapes (\040 for a space) of a path in
// /proc/self/mountinfo.
func unescapeMount(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", errMalformed
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", errMalformed
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), nil
}

package procs

// defaultInputs is what the runtime computes its default GOMAXPROCS
// from, as far as it can change while the process runs: on Linux the
// default is the fewer of the CPUs in the process's affinity mask and
// its cgroup CPU limit (rounded up, at least 2), read from the files of
// the cgroup the process was in when it started. Equal inputs give an
// equal default, so while they stay the same the Scaler need not hand
// GOMAXPROCS back to the runtime to learn it.
type defaultInputs struct {
	cpus  int    // CPUs in the affinity mask
	limit string // the text of the cgroup's CPU limit files, "" without them
}

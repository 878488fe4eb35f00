//go:build !linux

package procs

// newInputs returns a reader of defaultInputs. Elsewhere than on Linux
// the runtime's default is the CPUs the process may use, which seldom
// change while it runs, and they are not read here: the Scaler hands
// GOMAXPROCS back to the runtime to learn its default every
// followFallback checks (30 s), not at each.
func newInputs() func() (defaultInputs, bool) {
	return func() (defaultInputs, bool) { return defaultInputs{}, false }
}

//go:build !unix

package admin_test

import "time"

// cpuTime is 0 where the system has no getrusage: the benchmarks report
// no CPU time there.
func cpuTime() time.Duration { return 0 }

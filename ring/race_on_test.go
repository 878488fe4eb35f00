//go:build race

package ring

// raceEnabled is set under the race detector. The hash functions share
// nothing, so the long checksum tests (pure arithmetic, many times slower
// there) run only their small cases under it.
const raceEnabled = true

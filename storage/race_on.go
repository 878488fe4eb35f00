//go:build race

package storage

// raceEnabled is set under the race detector: Prefetch's unlocked reads
// are skipped, and the heaviest stress tests scale down, since the detector
// slows page-wide loops tenfold.
const raceEnabled = true

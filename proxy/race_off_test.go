//go:build !race

package proxy

// raceEnabled is set under the race detector, whose sync.Pool drops
// pooled values at random: allocation counts are checked without it.
const raceEnabled = false

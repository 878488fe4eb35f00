//go:build race

package storage

// raceEnabled lets the heaviest stress tests scale down under the race
// detector, which slows page-wide loops tenfold.
const raceEnabled = true

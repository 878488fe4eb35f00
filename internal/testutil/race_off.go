//go:build !race

package testutil

// RaceEnabled is true in a build with the race detector, which makes the
// code under test several times slower: tests use it to do less of the
// same work (the run without the detector does all of it).
const RaceEnabled = false

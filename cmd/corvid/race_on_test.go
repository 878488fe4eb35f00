//go:build race

package main

// raceEnabled is set under the race detector, which slows the test's own
// clients (not the server binary it builds) several times.
const raceEnabled = true

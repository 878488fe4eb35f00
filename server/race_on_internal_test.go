//go:build race

package server

// raceEnabled is set under the race detector, which slows the server
// several times: latency bounds are checked without it.
const raceEnabled = true

// Package testutil starts servers for tests and talks to them: corvid
// in-process on a free port, real memcached when it is installed, and a raw
// text-protocol connection that reads whole replies with a deadline.
//
// Every helper calls t.Helper, stops what it starts through t.Cleanup, and
// fails the test from the test's own goroutine only.
package testutil

// Package attack drives hostile clients against a memcached-protocol
// server and measures what they cost it: the attacks of corvid's
// hostile-client suite (unread multi-gets, huge declared values, slow
// readers, half-sent requests, unread metadumps, their binary-protocol
// forms, idle connections, clients that disconnect in the middle of a
// request), a sampler of the server's resident memory, a
// data set stored before the attack and checked after it, and a
// well-behaved client whose latency is recorded while the attack runs.
//
// The same code serves the tests in cmd/corvid, of the server and of the
// proxy (modest sizes, a few seconds), and bench/hostile (larger sizes,
// corvid next to memcached). Nothing here logs or calls testing: errors
// are returned for the caller to judge.
package attack

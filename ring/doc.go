// Package ring decides which server of a pool holds a key, the way
// twemproxy (nutcracker) and libmemcached decide it, so that corvid's
// client, corvid's proxy and existing deployments agree on every key.
//
// It offers the twelve hash functions twemproxy offers (see HashNames) and
// the distributions ketama (twemproxy's consistent hashing: 160 points per
// server scaled by weight), modula, random, and libmemcached's ketama
// (weighted or not). A Ring is built once from a Config and is then
// read-only: Pick is safe for concurrent use and does not allocate.
//
// The placement is checked against real nutcracker and libmemcached: the
// vectors in testdata/ were recorded from them (see nutcracker_test.go and
// internal/libmemcached).
package ring

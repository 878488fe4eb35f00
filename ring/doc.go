// Package ring decides which server of a pool holds a key, the way
// twemproxy (nutcracker), libmemcached and mcrouter decide it, so that
// corvid's client, corvid's proxy and router and existing deployments
// agree on every key.
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
//
// For mcrouter it offers the functions a route's "hash_func" names: Ch3
// (the default of PoolRoute and HashRoute, built on FurcHash), Crc32 and
// WeightedCh3, and what ShadowRoute's "key_fraction_range" compares
// (RoutingKeyHash, KeyFractionRange), with the hashes under them
// (SpookyHashV2_32/64/128, FurcHash). mcrouter hashes a key's routing key
// (RoutingKey: without "/region/cluster/", up to "|#|"), followed by the
// route's "salt" when it has one. These functions are pure, safe for
// concurrent use and do not allocate for keys up to 256 bytes; their
// tests hold the values of mcrouter's and folly's own tests.
package ring

// Package client is corvid's Go client for memcached-protocol servers:
// corvid, memcached, and anything behind twemproxy.
//
// Keys are placed with package ring, so a Client configured with the same
// servers, distribution and hash as a twemproxy pool or a libmemcached
// client sends every key to the same server they do. GetMulti sends one
// pipelined request per server, to all servers at once, and reads each
// reply into one buffer.
//
// Options cover what large deployments used Cache::Memcached::Fast and
// libmemcached for: weights, a key namespace (optionally part of the
// hash), gzip compression above a size threshold marked by a flag bit,
// marking a failing server dead for a while and either failing or
// rehashing its keys, and replicated key prefixes written to several
// servers and read from one. The meta protocol (memcached 1.6) adds
// stale-while-revalidate reads and opaque-pipelined multi-gets; see
// MetaGet and MetaGetMulti.
//
// A Client is safe for concurrent use by multiple goroutines. Every
// operation takes a context whose deadline, when sooner than
// Config.Timeout, bounds it; errors about a server name it (ServerError).
//
// Locks: node.mu guards a server's idle connections, node.failMu its
// failure count, Client.liveMu the rebuild of the placement over live
// servers. None is held while another is taken.
package client

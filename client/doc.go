// Package client is corvid's Go client for memcached-protocol servers:
// corvid, memcached, and anything behind twemproxy.
//
// Keys are placed with package ring, so a Client configured with the same
// servers, distribution and hash as a twemproxy pool or a libmemcached
// client sends every key to the same server they do. GetMulti sends one
// pipelined request per server, to all servers at once, and reads the
// replies with few allocations: small values share buffers of at most
// 16 KB (which a returned Item keeps alive), larger ones are allocated to
// size.
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
// Compression (Config.CompressThreshold) marks compressed values with a
// flag bit, which is then reserved: Flags that use it are refused, every
// client uncompresses values that carry it (up to MaxUncompressedSize)
// unless its CompressThreshold is negative, and a client that compresses
// refuses Append and Prepend, which would corrupt a compressed value.
// Code that uses that bit of Flags for its own ends (as gomemcache allows)
// sets CompressThreshold negative or moves CompressFlag to a free bit.
//
// A Client is safe for concurrent use by multiple goroutines. Every
// operation takes a context whose deadline, when sooner than
// Config.Timeout, bounds it; errors about a server name it (ServerError).
//
// A connection goes back to the pool only when the reply was read whole
// and nothing else is pending on it: a cache answer (miss, not stored, CAS
// conflict) or a whole error line answering one request (ReplyError).
// Anything else (a line the request does not expect, an error in the
// middle of a reply or pipeline, a CLIENT_ERROR after a data block) is a
// ProtocolError and closes the connection, without counting it as a
// failure of the server. Every reply is checked against the key asked
// for: a VALUE line must name it, and meta requests ask for it back (the
// k flag); a reply for another key is a ProtocolError, never a value.
//
// Locks: node.mu guards a server's idle connections, node.failMu its
// failure count, Client.liveMu the rebuild of the placement over live
// servers. None is held while another is taken.
package client

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
// # Connections and failures
//
// Each server has a pool of up to MaxIdleConns idle connections. Before a
// pooled connection is reused it is checked: one idle for longer than
// IdleTimeout, closed by the server (it restarted, or expired idle
// connections), or holding bytes no request asked for is closed instead,
// and none of that counts against the server. A request that still finds
// its pooled connection closed before any byte of the reply arrived is
// sent once more on a fresh connection, but only when the server cannot
// have executed it already: reads (Get, GetAndTouch, MetaGet, Stats,
// Version, Ping) are retried, writes (Set, Delete, Incr, Append, MetaSet
// ..., and a MetaGet with Vivify or RecacheBelow, which may win) only
// when writing the request itself failed. Multi-gets rely on the
// check alone.
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
// Meta requests also carry an opaque (O) that no earlier request on the
// connection carried, so that a reply repeated late is not taken for a
// later request's; the text protocol has no such tag.
//
// With MaxFailures set, a server that fails that many times within
// FailureTimeout is marked dead for RetryTimeout. Failures are the
// server's: a refused or timed-out dial (DialTimeout), a connection closed
// under a request, a reply that is late by the client's Timeout. The
// caller's own cancellation, or a context deadline sooner than Timeout,
// ends the call with the context's error and counts nothing.
//
// # Coming from gomemcache
//
// Names that mean the same thing are kept:
//
//	gomemcache                       corvid client
//	memcache.New(addrs...)           New(Config{Servers: ...})
//	NewFromSelector(ss)              Config.Distribution, Hash, HashTag
//	Client.Timeout (500ms)           Config.Timeout (1s) per operation, and the ctx deadline
//	Client.MaxIdleConns (2)          Config.MaxIdleConns (4)
//	Client.DialContext               Config.DialContext (bounded by DialTimeout)
//	(idle connections never expire)  Config.IdleTimeout (1 minute)
//	Get, GetMulti, Set, Add,         the same, with a context first
//	Replace, Append, Prepend,
//	CompareAndSwap, Delete, Touch,
//	GetAndTouch, Ping, Close
//	Increment, Decrement             Incr, Decr
//	FlushAll, DeleteAll              Flush(ctx, 0)
//	Item{Key, Value, Flags,          Item{Key, Value, Flags, Expiration, CAS}
//	Expiration}
//	ErrCacheMiss, ErrCASConflict,    the same
//	ErrNotStored, ErrMalformedKey,
//	ErrNoServers
//	ErrServerError                   *ReplyError (the server's error line)
//	ConnectTimeoutError              *ServerError with Op "dial"
//
// Locks: node.mu guards a server's idle connections, node.failMu its
// failure count, Client.liveMu the rebuild of the placement over live
// servers. None is held while another is taken.
package client

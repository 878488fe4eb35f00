// Package loadgen drives load against memcached-protocol servers and
// measures what they answer: throughput, latency percentiles, hit ratio and
// errors. It is the engine behind "corvid bench", in the spirit of memtier
// and memaslap.
//
// Each busy connection is one goroutine that keeps up to Config.Pipeline
// requests in flight: it writes a batch, reads every reply that has
// arrived, and immediately writes as many new requests as replies it has
// read, in one write. Latency is measured per request from the write that
// carried it to the parse of its reply, into a log-linear Histogram per
// connection; the histograms are merged at the end.
//
// Keys are "<prefix><n>" for n in [0, Config.Keys), chosen uniformly or
// Zipf-distributed; values are filled with a fixed pattern whose length is
// drawn uniformly between Config.ValueMin and Config.ValueMax. With several
// servers, connection i talks to server i mod len(servers), so every server
// sees the same key space.
package loadgen

package proxy

// Stats is a snapshot of a proxy's counters, under twemproxy's names: the
// stats port and the admin HTTP port both print it.
type Stats struct {
	// Uptime is seconds since the proxy started.
	Uptime int64
	// Timestamp is the Unix time of the snapshot.
	Timestamp int64
	// TotalConnections counts client connections accepted since start,
	// CurrConnections those open now (every pool's).
	TotalConnections int64
	CurrConnections  int64
	// ReadBufBytes is the bytes of the large read buffers clients hold
	// (past the first 4 KiB each), ReadBufOOM the requests refused for
	// Config.ReadBufMemLimit. twemproxy has neither: the stats command
	// prints them (read_buf_large_bytes, read_buf_oom), the stats port
	// does not.
	ReadBufBytes int64
	ReadBufOOM   int64
	// WriteBufBytes is the bytes of completed replies held for clients,
	// not yet written, WriteBufOOM the clients closed for
	// Config.WriteBufMemLimit (their socket took nothing for a second
	// while the replies held were past it): the stats command prints them
	// (write_buf_bytes, write_buf_oom, corvid server's names), the stats
	// port does not.
	WriteBufBytes int64
	WriteBufOOM   int64
	// Pools are in the order of the configuration file.
	Pools []PoolStats
	// Routes are the counters of the route trees' nodes (corvid
	// router's tree, and the route: of nutcracker.yml pools).
	Routes []RouteStats
}

// RouteStats are one route node's counters. A node is named by its
// name property, else by where the configuration defines it.
type RouteStats struct {
	Name string
	Type string
	// Requests counts the requests that took the node; Errors the
	// error replies a composer saw from its children (and the requests a
	// RateLimitRoute refused, a PoolRoute could not send).
	Requests int64
	Errors   int64
	// Failovers counts the requests FailoverRoute, LatestRoute or
	// MissFailoverRoute sent to a next child.
	Failovers int64
	// WarmFills counts the adds a WarmUpRoute sent to cold after a hit
	// in warm.
	WarmFills int64
	// ShadowSent and ShadowDropped count a PoolRoute's shadow copies
	// sent, and dropped at the bound on copies in flight.
	ShadowSent    int64
	ShadowDropped int64
	// AsyncPending is the node's detached copies in flight (AllAsync's
	// children, shadows, warm-up adds), at most 1024, and
	// AsyncPendingBytes their bytes (the proxy's copies together at most
	// Config.WriteBufMemLimit); AsyncDropped counts those dropped at
	// either bound.
	AsyncPending      int64
	AsyncPendingBytes int64
	AsyncDropped      int64
}

// Counters returns the node's counters under their stats names.
func (r *RouteStats) Counters() [9]Counter {
	return [...]Counter{
		{"requests", r.Requests}, {"errors", r.Errors}, {"failovers", r.Failovers},
		{"warmup_fills", r.WarmFills}, {"shadow_sent", r.ShadowSent},
		{"shadow_dropped", r.ShadowDropped}, {"async_pending", r.AsyncPending},
		{"async_pending_bytes", r.AsyncPendingBytes}, {"async_dropped", r.AsyncDropped},
	}
}

// PoolStats are one pool's counters (twemproxy's per-pool stats).
type PoolStats struct {
	Name              string
	ClientEOF         int64 // clients that closed their connection
	ClientErr         int64 // client connections closed on an error
	ClientConnections int64 // open client connections
	ServerEjects      int64 // times a server was ejected
	ForwardError      int64 // requests that could not be forwarded
	Fragments         int64 // fragments made by splitting multi-key requests
	// Servers are in the order of the pool's servers list.
	Servers []ServerStats
}

// ServerStats are one server's counters (twemproxy's per-server stats).
type ServerStats struct {
	// Name is what twemproxy's stats call the server: its name when the
	// servers line gives one, else its host:port.
	Name              string
	ServerEOF         int64 // the server closed a connection
	ServerErr         int64 // connections closed on an error
	ServerTimedout    int64 // requests that timed out
	ServerConnections int64 // open connections to the server
	ServerEjectedAt   int64 // Unix microseconds of the last ejection, 0 if none
	Requests          int64
	RequestBytes      int64
	Responses         int64
	ResponseBytes     int64
	InQueue           int64 // requests waiting to be sent
	InQueueBytes      int64
	OutQueue          int64 // requests sent, awaiting their reply
	OutQueueBytes     int64
	// Ejected is whether the server is out of its pool's continuum, as
	// the pool routes now (twemproxy's stats do not show it).
	Ejected bool
}

// Counter is one counter of a snapshot, under twemproxy's name.
type Counter struct {
	Name  string
	Value int64
}

// Counters returns the pool's own counters (not its servers') in the
// order twemproxy prints them.
func (p *PoolStats) Counters() [6]Counter {
	return [...]Counter{
		{"client_eof", p.ClientEOF}, {"client_err", p.ClientErr},
		{"client_connections", p.ClientConnections}, {"server_ejects", p.ServerEjects},
		{"forward_error", p.ForwardError}, {"fragments", p.Fragments},
	}
}

// Counters returns the server's counters in the order twemproxy prints
// them.
func (s *ServerStats) Counters() [13]Counter {
	return [...]Counter{
		{"server_eof", s.ServerEOF}, {"server_err", s.ServerErr},
		{"server_timedout", s.ServerTimedout}, {"server_connections", s.ServerConnections},
		{"server_ejected_at", s.ServerEjectedAt}, {"requests", s.Requests},
		{"request_bytes", s.RequestBytes}, {"responses", s.Responses},
		{"response_bytes", s.ResponseBytes}, {"in_queue", s.InQueue},
		{"in_queue_bytes", s.InQueueBytes}, {"out_queue", s.OutQueue},
		{"out_queue_bytes", s.OutQueueBytes},
	}
}

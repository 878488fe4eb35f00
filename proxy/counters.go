package proxy

import "sync/atomic"

// The proxy's counters live here, in one place, so that every reader (the
// stats command, the stats port, the admin HTTP port) takes the same
// snapshot through Proxy.Stats.

// proxyCounters are the proxy-wide counters.
type proxyCounters struct {
	totalConnections atomic.Int64
	currConnections  atomic.Int64
}

// poolCounters are a pool's counters (twemproxy's names in PoolStats).
type poolCounters struct {
	clientEOF         atomic.Int64
	clientErr         atomic.Int64
	clientConnections atomic.Int64
	serverEjects      atomic.Int64
	forwardError      atomic.Int64
	fragments         atomic.Int64
}

// serverCounters are a server's counters (twemproxy's names in
// ServerStats).
type serverCounters struct {
	eof           atomic.Int64
	err           atomic.Int64
	timedout      atomic.Int64
	connections   atomic.Int64
	ejectedAt     atomic.Int64
	requests      atomic.Int64
	requestBytes  atomic.Int64
	responses     atomic.Int64
	responseBytes atomic.Int64
	inQueue       atomic.Int64
	inQueueBytes  atomic.Int64
	outQueue      atomic.Int64
	outQueueBytes atomic.Int64
}

func (c *poolCounters) snapshot(name string) PoolStats {
	return PoolStats{
		Name:              name,
		ClientEOF:         c.clientEOF.Load(),
		ClientErr:         c.clientErr.Load(),
		ClientConnections: c.clientConnections.Load(),
		ServerEjects:      c.serverEjects.Load(),
		ForwardError:      c.forwardError.Load(),
		Fragments:         c.fragments.Load(),
	}
}

func (c *serverCounters) snapshot(name string) ServerStats {
	return ServerStats{
		Name:              name,
		ServerEOF:         c.eof.Load(),
		ServerErr:         c.err.Load(),
		ServerTimedout:    c.timedout.Load(),
		ServerConnections: c.connections.Load(),
		ServerEjectedAt:   c.ejectedAt.Load(),
		Requests:          c.requests.Load(),
		RequestBytes:      c.requestBytes.Load(),
		Responses:         c.responses.Load(),
		ResponseBytes:     c.responseBytes.Load(),
		InQueue:           c.inQueue.Load(),
		InQueueBytes:      c.inQueueBytes.Load(),
		OutQueue:          c.outQueue.Load(),
		OutQueueBytes:     c.outQueueBytes.Load(),
	}
}

func (c *routeCounters) snapshot(n *rnode) RouteStats {
	return RouteStats{
		Name:              n.name,
		Type:              string(n.typ),
		Requests:          c.requests.Load(),
		Errors:            c.errors.Load(),
		Failovers:         c.failovers.Load(),
		WarmFills:         c.warmFills.Load(),
		ShadowSent:        c.shadowSent.Load(),
		ShadowDropped:     c.shadowDropped.Load(),
		AsyncPending:      c.asyncPending.Load(),
		AsyncPendingBytes: c.asyncBytes.Load(),
		AsyncDropped:      c.asyncDropped.Load(),
	}
}

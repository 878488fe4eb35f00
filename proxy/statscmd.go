package proxy

import (
	"strconv"

	"github.com/corvidcache/corvid/protocol"
)

// appendStats appends the reply to "stats": the proxy's own counters as
// "STAT name value" lines, then END. Pool counters are named
// "<pool>:<counter>", server counters "<pool>:<server>:<counter>", with
// twemproxy's counter names.
func (p *Proxy) appendStats(dst []byte) []byte {
	s := p.Stats()
	dst = protocol.AppendStatInt(dst, "uptime", s.Uptime)
	dst = protocol.AppendStatInt(dst, "time", s.Timestamp)
	dst = protocol.AppendStat(dst, "version", p.cfg.Version)
	dst = protocol.AppendStatInt(dst, "total_connections", s.TotalConnections)
	dst = protocol.AppendStatInt(dst, "curr_connections", s.CurrConnections)
	for _, ps := range s.Pools {
		for _, v := range []struct {
			name string
			v    int64
		}{
			{"client_eof", ps.ClientEOF}, {"client_err", ps.ClientErr},
			{"client_connections", ps.ClientConnections}, {"server_ejects", ps.ServerEjects},
			{"forward_error", ps.ForwardError}, {"fragments", ps.Fragments},
		} {
			dst = protocol.AppendStatInt(dst, ps.Name+":"+v.name, v.v)
		}
		for _, ss := range ps.Servers {
			prefix := ps.Name + ":" + ss.Name + ":"
			for _, v := range []struct {
				name string
				v    int64
			}{
				{"server_eof", ss.ServerEOF}, {"server_err", ss.ServerErr},
				{"server_timedout", ss.ServerTimedout}, {"server_connections", ss.ServerConnections},
				{"server_ejected_at", ss.ServerEjectedAt}, {"requests", ss.Requests},
				{"request_bytes", ss.RequestBytes}, {"responses", ss.Responses},
				{"response_bytes", ss.ResponseBytes}, {"in_queue", ss.InQueue},
				{"in_queue_bytes", ss.InQueueBytes}, {"out_queue", ss.OutQueue},
				{"out_queue_bytes", ss.OutQueueBytes},
			} {
				dst = protocol.AppendStat(dst, prefix+v.name, strconv.FormatInt(v.v, 10))
			}
		}
	}
	return append(dst, "END\r\n"...)
}

package proxy

import "github.com/corvidcache/corvid/protocol"

// appendStats appends the reply to "stats": the proxy's own counters as
// "STAT name value" lines, then END: twemproxy's, and read_buf_large_bytes,
// read_buf_oom, write_buf_bytes and write_buf_oom (see Stats). Pool counters are named
// "<pool>:<counter>", server counters "<pool>:<server>:<counter>", with
// twemproxy's counter names.
func (p *Proxy) appendStats(dst []byte) []byte {
	s := p.Stats()
	dst = protocol.AppendStatInt(dst, "uptime", s.Uptime)
	dst = protocol.AppendStatInt(dst, "time", s.Timestamp)
	dst = protocol.AppendStat(dst, "version", p.cfg.Version)
	dst = protocol.AppendStatInt(dst, "total_connections", s.TotalConnections)
	dst = protocol.AppendStatInt(dst, "curr_connections", s.CurrConnections)
	dst = protocol.AppendStatInt(dst, "read_buf_large_bytes", s.ReadBufBytes)
	dst = protocol.AppendStatInt(dst, "read_buf_oom", s.ReadBufOOM)
	dst = protocol.AppendStatInt(dst, "write_buf_bytes", s.WriteBufBytes)
	dst = protocol.AppendStatInt(dst, "write_buf_oom", s.WriteBufOOM)
	for _, ps := range s.Pools {
		for _, c := range ps.Counters() {
			dst = protocol.AppendStatInt(dst, ps.Name+":"+c.Name, c.Value)
		}
		for _, ss := range ps.Servers {
			prefix := ps.Name + ":" + ss.Name + ":"
			for _, c := range ss.Counters() {
				dst = protocol.AppendStatInt(dst, prefix+c.Name, c.Value)
			}
		}
	}
	for _, rs := range s.Routes {
		prefix := "route:" + rs.Name + ":"
		for _, c := range rs.Counters() {
			dst = protocol.AppendStatInt(dst, prefix+c.Name, c.Value)
		}
	}
	return append(dst, "END\r\n"...)
}

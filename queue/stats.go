package queue

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
)

// QueueStats are one queue's figures, those the stats command prints
// under queue_<name>_.
type QueueStats struct {
	Name string
	StoreStats
	// Waiters is the clients blocked in get/t= on the queue.
	Waiters int64
}

// Queues returns each queue's stats, sorted by name. It is safe for
// concurrent use; each queue's figures are read under its own lock, so
// two queues' may be a moment apart.
func (s *Server) Queues() []QueueStats {
	names := s.queueNames()
	out := make([]QueueStats, 0, len(names))
	for _, n := range names {
		if q := s.lookup(n); q != nil {
			out = append(out, QueueStats{Name: n, StoreStats: q.st.Stats(), Waiters: int64(q.waiterCount())})
		}
	}
	return out
}

// queueStats are one queue's stats, in Kestrel's order.
func (s *Server) queueStats(q *queue) [][2]string {
	st := q.st.Stats()
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	out := [][2]string{
		{"items", i(st.Items)},
		{"bytes", i(st.Bytes)},
		{"total_items", i(st.TotalItems)},
		{"logsize", i(st.LogSize)},
		{"expired_items", i(st.ExpiredItems)},
		{"mem_items", i(st.MemItems)},
		{"mem_bytes", i(st.MemBytes)},
		{"age", i(st.Age.Milliseconds())},
		{"discarded", i(st.Discarded)},
		{"waiters", strconv.Itoa(q.waiterCount())},
		{"open_transactions", i(st.OpenTransactions)},
	}
	if !strings.Contains(q.name, "+") {
		var kids []string
		for _, c := range s.children(q.name) {
			kids = append(kids, c.name)
		}
		if len(kids) > 0 {
			sort.Strings(kids)
			out = append(out, [2]string{"children", strings.Join(kids, ",")})
		}
	}
	return out
}

// Stats returns the global stats and each queue's (queue_<name>_<stat>)
// as the stats command answers them, in order.
func (s *Server) Stats() [][2]string {
	now := s.cfg.Now()
	var perQueue [][2]string
	var items, byteCount int64
	for _, n := range s.queueNames() {
		q := s.lookup(n)
		if q == nil {
			continue
		}
		qs := s.queueStats(q)
		items += mustInt(qs[0][1])
		byteCount += mustInt(qs[1][1])
		for _, kv := range qs {
			perQueue = append(perQueue, [2]string{"queue_" + n + "_" + kv[0], kv[1]})
		}
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	c := &s.stats
	out := [][2]string{
		{"uptime", i(int64(now.Sub(s.start).Seconds()))},
		{"time", i(now.Unix())},
		{"version", Version},
		{"curr_items", i(items)},
		{"total_items", i(c.totalItems.Load())},
		{"bytes", i(byteCount)},
		{"curr_connections", i(c.currConns.Load())},
		{"total_connections", i(c.totalConns.Load())},
		{"cmd_get", i(c.cmdGet.Load())},
		{"cmd_set", i(c.cmdSet.Load())},
		{"cmd_peek", i(c.cmdPeek.Load())},
		{"get_hits", i(c.getHits.Load())},
		{"get_misses", i(c.getMisses.Load())},
		{"bytes_read", i(c.bytesRead.Load())},
		{"bytes_written", i(c.bytesWritten.Load())},
		{"queue_creates", i(c.queueCreates.Load())},
		{"queue_deletes", i(c.queueDeletes.Load())},
		{"queue_expires", i(c.queueExpires.Load())},
	}
	return append(out, perQueue...)
}

func mustInt(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

// statsText is the reply to stats.
func (s *Server) statsText() []byte {
	var b bytes.Buffer
	for _, kv := range s.Stats() {
		b.WriteString("STAT " + kv[0] + " " + kv[1] + "\r\n")
	}
	b.WriteString("END\r\n")
	return b.Bytes()
}

// dumpStats is the reply to dump_stats: each queue's stats grouped.
func (s *Server) dumpStats(names []string) []byte {
	if len(names) == 0 {
		names = s.queueNames()
	}
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString("queue '" + n + "' {\r\n")
		if q := s.lookup(n); q != nil {
			for _, kv := range s.queueStats(q) {
				b.WriteString("  " + kv[0] + "=" + kv[1] + "\r\n")
			}
		}
		b.WriteString("}\r\n")
	}
	b.WriteString("END\r\n")
	return b.Bytes()
}

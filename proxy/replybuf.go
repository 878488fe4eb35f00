package proxy

import (
	"errors"
	"sync/atomic"
	"time"
)

// DefaultWriteBufMemLimit bounds the completed replies held for clients
// (not yet written) when Config.WriteBufMemLimit is 0: the default of
// corvid server's (and memcached's) write_buf_mem_limit.
const DefaultWriteBufMemLimit = 64 << 20

// stallGrace is how long a client's socket may take nothing while the
// replies held for clients are past their limit before the client is
// closed (see replyBufs).
const stallGrace = time.Second

// errStalled closes a client whose socket took nothing for stallGrace
// while the replies held for clients were past their limit.
var errStalled = errors.New("proxy: client stopped reading while replies held are over write_buf_mem_limit")

// replyBufs accounts the completed replies held for clients, not yet
// written, over the whole proxy, and bounds them, as corvid server's
// write_buf_mem_limit bounds its blocked write buffers: the total may
// reach limit, and past it over more, by clients that each hold at most
// solo then (a reply of the largest size, and the next while the last is
// written), so that a client that reads can always go on while others
// hold the limit. A reply that would pass that is refused (its request
// is answered "SERVER_ERROR Cannot allocate memory"). A client that holds
// replies while the total is past limit and whose socket takes nothing
// for stallGrace is closed and counted in oom: what it held goes to the
// clients that read. The total held is at most limit+over, whatever the
// number of clients. It is safe for concurrent use.
type replyBufs struct {
	bytes atomic.Int64 // write_buf_bytes
	oom   atomic.Int64 // write_buf_oom: clients closed for a stalled socket
	limit int64        // 0: none
	over  int64        // what clients may take past limit
	solo  int64        // what a client may hold past limit
}

// newReplyBufs returns the accounting for a limit (negative: none) and
// replies of at most maxReply bytes (one value of the largest size).
func newReplyBufs(limit int64, maxReply int) *replyBufs {
	m := &replyBufs{limit: max(limit, 0)}
	m.solo = 2 * int64(maxReply)
	m.over = max(m.limit/8, m.solo)
	return m
}

// replyOverhead is what a reply of one value adds to the value: its
// VALUE line, the value's CRLF and END.
const replyOverhead = 4 << 10

// take accounts n bytes more held by a client that holds *held, or
// reports false and accounts nothing when that would pass the bound.
// Past the limit, only a client that reads (reports reads, called only
// then) may use the whole allowance; the others may use half of it, so
// that clients that read go on while clients that do not read hold the
// rest (until they are closed for it). What a client that reads holds
// is being written: its writer may not have released it yet.
//
// The total is raised only when the result is within the bound (a
// compare-and-swap), never raised and then lowered: a reply refused to
// one client must not, for that instant, make another's that fits look
// past the bound.
func (m *replyBufs) take(held *atomic.Int64, n int64, reads func() bool) bool {
	judged, readsNow := false, false
	for {
		old := m.bytes.Load()
		total := old + n
		if m.limit > 0 && total > m.limit {
			if !judged {
				judged, readsNow = true, reads()
			}
			bound := m.limit + m.over
			if !readsNow {
				bound = m.limit + m.over/2
			}
			if total > bound || held.Load()+n > m.solo {
				return false
			}
		}
		if m.bytes.CompareAndSwap(old, total) {
			break
		}
	}
	held.Add(n)
	return true
}

// force accounts n bytes more held by a client, whatever the bound: the
// proxy's own short replies.
func (m *replyBufs) force(held *atomic.Int64, n int64) {
	m.bytes.Add(n)
	held.Add(n)
}

// release accounts n bytes no longer held by a client that held *held,
// and returns what it still holds.
func (m *replyBufs) release(held *atomic.Int64, n int64) int64 {
	m.bytes.Add(-n)
	return held.Add(-n)
}

// pastLimit reports whether the replies held are past the limit.
func (m *replyBufs) pastLimit() bool {
	return m.limit > 0 && m.bytes.Load() > m.limit
}

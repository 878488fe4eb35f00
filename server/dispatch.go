package server

import (
	"bytes"
	"errors"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// handleOne handles the first request in buf. It returns 0 when it consumed
// a request (advancing c.r), n > 0 when the request needs n unread bytes
// before it can be handled, and -1 when the connection must close.
func (c *conn) handleOne(buf []byte) int {
	if protocol.IsMetaStart(buf) {
		if need, ok := c.handleMeta(buf); ok {
			return need
		}
	}
	req := &c.req
	n, err := protocol.Parse(buf, req)
	if n == 0 {
		if err != nil {
			// Line too long: memcached closes the connection.
			c.dropLongLine(buf)
			return -1
		}
		return len(buf) + 1
	}
	c.commandSeen()
	if err != nil {
		c.r += n
		if isHTTPRequestLine(buf[:n]) {
			c.dropUnwritten() // as memcached
			return -1
		}
		switch req.Command {
		case protocol.CmdFlushAll:
			// memcached counts and refuses a disabled flush_all before
			// it looks at the delay.
			if c.srv.cfg.DisableFlushAll {
				c.stats.cmdFlush++
				c.replyOK(req, "CLIENT_ERROR flush_all not allowed")
				return 0
			}
		case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
			// memcached has looked up (and for gat, touched) the keys
			// before the bad one when it answers the error, and sends
			// none of their values.
			c.lookupOnly(req)
		}
		line, closeConn := protocol.ErrorReply(err, req.NoReply)
		if closeConn {
			return -1
		}
		if line != "" {
			c.reply(line)
		}
		return 0
	}
	if c.srv.klog != nil {
		c.line = trimLine(buf[:n])
	}
	switch req.Command {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		c.r += n
		c.get(req, 0)
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace,
		protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas:
		return c.store(buf, n, req)
	case protocol.CmdDelete:
		c.r += n
		c.delete(req)
	case protocol.CmdIncr, protocol.CmdDecr:
		c.r += n
		c.arith(req)
	case protocol.CmdTouch:
		c.r += n
		c.touch(req)
	case protocol.CmdFlushAll:
		c.r += n
		c.flushAll(req)
	case protocol.CmdVersion:
		c.r += n
		c.reply("VERSION " + Version)
	case protocol.CmdVerbosity:
		c.r += n
		c.srv.verbosity.Store(int32(min(req.Level, 1<<20)))
		c.replyOK(req, "OK")
	case protocol.CmdQuit:
		c.r += n
		return -1
	case protocol.CmdShutdown:
		c.r += n
		switch {
		case !c.srv.cfg.EnableShutdown:
			c.reply("ERROR: shutdown not enabled")
		case len(req.Args) == 0 || (len(req.Args) == 1 && string(req.Args[0]) == "graceful"):
			// Both modes stop the server after in-flight requests are
			// answered, which is memcached's graceful shutdown.
			c.srv.requestShutdown()
			c.closeAfterWrite = true
		default:
			c.reply("CLIENT_ERROR invalid shutdown mode")
		}
	case protocol.CmdCacheMemlimit:
		c.r += n
		c.cacheMemlimit(req)
	case protocol.CmdStats:
		c.r += n
		c.statsCommand(req)
	case protocol.CmdLRU:
		c.r += n
		c.lruCommand(req)
	case protocol.CmdLRUCrawler:
		c.r += n
		c.lruCrawlerCommand(req)
	case protocol.CmdWatch:
		c.r += n
		c.watchCommand(req)
	case protocol.CmdSlabs:
		c.r += n
		c.slabsCommand(req)
	case protocol.CmdConfig:
		c.r += n
		c.configCommand(req)
	case protocol.CmdRefreshCerts:
		c.r += n
		c.refreshCerts(req.NoReply)
	default:
		c.r += n
		c.reply("ERROR")
	}
	return 0
}

// reply appends one reply line.
func (c *conn) reply(line string) {
	c.wbuf = append(c.wbuf, line...)
	c.wbuf = append(c.wbuf, '\r', '\n')
}

// replyOK appends line unless the request asked for no reply.
func (c *conn) replyOK(req *protocol.Request, line string) {
	if !req.NoReply {
		c.reply(line)
	}
}

// lookupOnly performs the lookups of a get-family request without replying.
func (c *conn) lookupOnly(req *protocol.Request) { c.lookup(req, false, 0) }

// get answers a get-family request from offset from of its keys on. When
// the socket backs up before the last key (event loops only), it stops and
// sets c.getNext to the offset to go on from: process resumes the request
// there once the replies so far are written, so a multi-get holds at most
// about flushSize plus one value of replies whatever it asks for. On an
// event loop it also stops after yieldKeys keys, setting c.yielded, so
// that a long get line does not hold up the loop's other connections.
func (c *conn) get(req *protocol.Request, from int) {
	if from == 0 && c.srv.cfg.MaxGetKeys != 0 && tooManyKeys(req.GetKeys, c.srv.cfg.MaxGetKeys) {
		c.srv.respOOM.Add(1)
		c.reply("SERVER_ERROR out of memory writing get response")
		return
	}
	c.getNext = c.lookup(req, true, from)
	if c.getNext == 0 {
		c.wbuf = append(c.wbuf, "END\r\n"...)
		c.written = len(c.wbuf) // memcached writes its replies at a get's end
	}
}

// tooManyKeys reports whether keys holds more than most keys (none, when
// most is negative).
func tooManyKeys(keys []byte, most int) bool {
	n := 0
	for key, i := protocol.NextKey(keys, 0); len(key) > 0; key, i = protocol.NextKey(keys, i) {
		if n++; n > most {
			return true
		}
	}
	return false
}

// yieldKeys is how many keys of one get line an event loop looks up
// before it serves its other connections (some 100-200 µs of hits).
const yieldKeys = 1024

// lookup looks up (or, for gat and gats, touches) the keys of req from
// offset from of req.GetKeys on, and appends a VALUE reply for each hit
// when emit is set. It returns 0 when it has handled every key, or the
// offset of the next key when it stopped for the socket or the loop. The
// keys are read from the line as the lookups go, a batch of them at a
// time so that their cache lines are prefetched together: a line costs
// no memory but its own bytes, however many keys it holds.
func (c *conn) lookup(req *protocol.Request, emit bool, from int) int {
	withCAS := req.Command == protocol.CmdGets || req.Command == protocol.CmdGats
	touch := req.Command == protocol.CmdGat || req.Command == protocol.CmdGats
	var vlen, rlen int
	hit := func(it storage.Item) {
		vlen = it.Len()
		if !emit {
			return
		}
		pieces := vlen != len(it.Value) // larger than slab_chunk_max
		room := vlen
		if pieces && c.stream {
			room = 0 // written from the item's chunks (pinValue)
		}
		if c.reserve(len(it.Key) + room + 64); c.woom || c.wwait > 0 {
			vlen = 0
			return
		}
		n := len(c.wbuf)
		if !pieces {
			c.wbuf = protocol.AppendValue(c.wbuf, it.Key, it.Flags, it.Value, it.CAS, withCAS)
		} else {
			c.wbuf = protocol.AppendValueHead(c.wbuf, it.Key, it.Flags, vlen, it.CAS, withCAS)
			if room != 0 || !c.pinValue(it.Pin(true)) {
				c.wbuf = append(it.AppendValue(c.wbuf), '\r', '\n')
			}
		}
		rlen = len(c.wbuf) - n + c.pend.Len()
	}
	keys := req.GetKeys
	var batch [storage.PrefetchBatch][]byte
	var ends [storage.PrefetchBatch]int
	done := 0 // keys looked up by this call
	for next := from; ; {
		nb := 0
		for nb < len(batch) {
			k, end := protocol.NextKey(keys, next)
			if len(k) == 0 {
				break
			}
			batch[nb], ends[nb], next = k, end, end
			nb++
		}
		if nb == 0 {
			return 0
		}
		if nb > 1 {
			c.srv.cache.Prefetch(batch[:nb])
		}
		for j, key := range batch[:nb] {
			vlen, rlen = 0, 0
			c.canWait = emit && c.flushFn == nil
			found := c.fetch(key, touch, req.Exptime, hit)
			c.canWait = false
			if c.wwait > 0 {
				// No room for the reply yet (goroutine mode): write
				// what is pending, then look the key up again, waiting
				// for the replies in flight to others while there is
				// still no room for this reply alone. The lookup above
				// has counted, bumped and (gat) touched the item; the
				// ones again only read it (see replyAgain).
				c.wwait = 0
				deadline := time.Now().Add(waitRoomFor)
				if c.flush() != nil {
					c.woom, c.closeAfterWrite = true, true
					return 0
				}
				found, vlen, rlen = c.replyAgain(key, withCAS)
				for c.wwait > 0 {
					want := c.wwait
					c.wwait = 0
					if !c.srv.wbufs.waitRoom(want, c.reader, deadline, &c.stopped) {
						// Refused, or the server is stopping: the
						// connection ends with nothing more written.
						c.woom, c.closeAfterWrite = true, true
						return 0
					}
					if testHookWaitRetry != nil {
						testHookWaitRetry()
					}
					found, vlen, rlen = c.replyAgain(key, withCAS)
				}
			}
			c.noteKey(key, vlen)
			if c.srv.klog != nil && emit {
				if found {
					c.klogWrite(getNames[req.Command], key, klogHit, rlen)
				} else {
					c.klogWrite(getNames[req.Command], key, klogMiss, 0)
				}
			}
			done++
			more := ends[j] < len(keys)
			if emit && (len(c.wbuf) > flushSize || c.woom || c.pend.Len() > 0) {
				if c.flush() != nil {
					c.closeAfterWrite = true
					return 0
				}
				if c.blocked && (more || c.pend.Len() > 0) {
					// Go on when the socket drains: with the next
					// key, or with END after a pinned value (nothing
					// is appended to wbuf before it is written).
					return ends[j]
				}
			}
			if c.onLoop && emit && done >= yieldKeys && more {
				c.yielded = true
				return ends[j]
			}
		}
	}
}

// testHookWaitRetry, when set, runs when a get that waited for room for
// its reply is about to look its key up again.
var testHookWaitRetry func()

// replyAgain appends the VALUE reply for key of a get whose first lookup
// found no room for it (goroutine mode), once there is room. That lookup
// has already counted the get (cmd_get or cmd_touch, the hit, the key's
// notes) and bumped or touched the item, so this one counts nothing and
// changes nothing: it reads the item as it is now, as memcached's me
// does. An item gone meanwhile is answered as a miss, an item replaced
// with its new value. It reports whether it found the item and the
// lengths of its value and reply, as lookup's hit records them; when the
// room is refused again, c.wwait is set once more.
func (c *conn) replyAgain(key []byte, withCAS bool) (found bool, vlen, rlen int) {
	c.canWait = true
	found = c.srv.cache.MetaDebug(key, func(e storage.MetaEntry) {
		n := e.Len()
		room := n
		if c.stream && n != len(e.Value()) {
			room = 0 // written from the item's chunks (pinValue), as lookup does
		}
		if c.reserve(len(key) + room + 64); c.woom || c.wwait > 0 {
			return
		}
		start := len(c.wbuf)
		c.wbuf = protocol.AppendValueHead(c.wbuf, e.Key(), e.Flags(), n, e.CAS(), withCAS)
		if room != 0 || !c.pinValue(e.Pin(true)) {
			c.wbuf = append(e.AppendValue(c.wbuf), '\r', '\n')
		}
		vlen, rlen = n, len(c.wbuf)-start+c.pend.Len()
	})
	c.canWait = false
	return found && rlen > 0, vlen, rlen
}

// fetch looks key up for a get (or, with touch, a gat) of either
// protocol, calling hit on a hit, and counts it as memcached does: gat as a
// touch only, not as a get.
func (c *conn) fetch(key []byte, touch bool, exptime int64, hit func(storage.Item)) bool {
	var found bool
	if touch {
		found = c.srv.cache.GetAndTouch(key, exptime, hit)
		c.stats.cmdTouch++
	} else {
		found = c.srv.cache.Get(key, hit)
		c.stats.cmdGet++
	}
	if c.srv.detail.enabled.Load() {
		c.srv.detail.record(key, opGet, found)
	}
	if c.srv.watching(watchFetchers) {
		c.watchGet(key, found)
	}
	return found
}

// getNames are the command names the command log writes for the get
// family.
var getNames = [...][]byte{
	protocol.CmdGet:  []byte("get"),
	protocol.CmdGets: []byte("gets"),
	protocol.CmdGat:  []byte("gat"),
	protocol.CmdGats: []byte("gats"),
}

var storeModes = [...]storage.StoreMode{
	protocol.CmdSet:     storage.ModeSet,
	protocol.CmdAdd:     storage.ModeAdd,
	protocol.CmdReplace: storage.ModeReplace,
	protocol.CmdAppend:  storage.ModeAppend,
	protocol.CmdPrepend: storage.ModePrepend,
	protocol.CmdCas:     storage.ModeCAS,
}

// store handles a storage command whose line (n bytes) starts buf.
func (c *conn) store(buf []byte, n int, req *protocol.Request) int {
	cache := c.srv.cache
	key := req.Key()
	mode := storeModes[req.Command]
	if !cache.ItemFits(len(key), req.ValueLen) {
		// memcached answers before reading the value and discards it.
		c.r += n
		c.swallow = req.ValueLen + 2
		c.stats.storeTooLarge++
		c.refuseTooLarge(mode, key, mode == storage.ModeSet)
		c.storeReply(req, klogNotStored, "SERVER_ERROR object too large for cache")
		return 0
	}
	total := n + req.ValueLen + 2
	if len(buf) < total {
		if c.startIncoming(buf, n, req, mode) {
			return 0
		}
		return total
	}
	c.r += total
	if buf[total-2] != '\r' || buf[total-1] != '\n' {
		// memcached counts the set once it has read the value.
		cache.CountSet(len(key), req.ValueLen, req.Flags)
		c.storeReply(req, klogNotStored, "CLIENT_ERROR bad data chunk")
		return 0
	}
	res, _, err := c.storeValue(mode, key, req.Flags, req.Exptime, buf[n:total-2], req.CAS)
	c.storeAnswer(req, res, err)
	return 0
}

// storeAnswer answers a text storage command with the outcome of its
// store.
func (c *conn) storeAnswer(req *protocol.Request, res storage.StoreResult, err error) {
	switch {
	case errors.Is(err, storage.ErrTooLarge):
		c.stats.storeTooLarge++
		c.storeReply(req, klogNotStored, "SERVER_ERROR object too large for cache")
	case errors.Is(err, storage.ErrNoMemoryRead):
		// memcached meets it reading the value, after the command was
		// counted: not a store_no_memory.
		c.storeReply(req, klogNotStored, "SERVER_ERROR Out of memory during read")
	case errors.Is(err, storage.ErrNoMemory):
		c.stats.storeNoMemory++
		c.storeReply(req, klogNotStored, "SERVER_ERROR out of memory storing object")
	case err != nil:
		c.storeReply(req, klogNotStored, "SERVER_ERROR "+err.Error())
	default:
		c.storeReply(req, klogStoreStatus[res], storeReplies[res])
	}
}

// storeReply answers a storage command and logs it in the command log.
func (c *conn) storeReply(req *protocol.Request, status int, line string) {
	c.replyOK(req, line)
	if c.srv.klog != nil {
		c.klogLine(status, line, req.NoReply)
	}
}

// klogStoreStatus are twemcache's command log codes of store results.
var klogStoreStatus = [...]int{
	storage.Stored:    klogStored,
	storage.NotStored: klogNotStored,
	storage.Exists:    klogExists,
	storage.NotFound:  klogNotFound,
}

// refuseTooLarge handles a value that cannot fit any slab class, refused
// before it is read: with dropOld it removes the old value so that stale
// data cannot persist, as memcached does for set and for every meta set,
// and it tells mutation watchers.
func (c *conn) refuseTooLarge(mode storage.StoreMode, key []byte, dropOld bool) {
	if c.srv.watching(watchMutations) {
		c.watchStore(mode, key, 0, 0, "too_large")
	}
	if dropOld {
		c.watchLookup(key)
		c.srv.cache.Unlink(key)
	}
}

// storeValue stores an item for a storage command of either protocol,
// recording it in the per-prefix stats. It returns the new CAS unique of
// a stored item. (memcached counts store_too_large and store_no_memory for
// the text protocol only; its callers count.)
func (c *conn) storeValue(mode storage.StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64) (storage.StoreResult, uint64, error) {
	if c.srv.detail.enabled.Load() {
		c.srv.detail.record(key, opSet, false)
	}
	return c.storeItem(mode, key, flags, exptime, value, cas, storage.MetaStoreOptions{})
}

// storeItem stores an item for any protocol (opts are the meta set's),
// counting its key for the hot keys and telling watchers.
func (c *conn) storeItem(mode storage.StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64, opts storage.MetaStoreOptions) (storage.StoreResult, uint64, error) {
	c.noteKey(key, len(value))
	if c.srv.watching(watchFetchers | watchMutations) {
		return c.storeWatched(mode, key, flags, exptime, value, cas, opts)
	}
	return c.srv.cache.StoreMeta(mode, key, flags, exptime, value, cas, opts)
}

// storeWatched is storeItem's store with the lines memcached logs for
// it: the lookup of the key, then the store.
func (c *conn) storeWatched(mode storage.StoreMode, key []byte, flags uint32, exptime int64, value []byte, cas uint64, opts storage.MetaStoreOptions) (storage.StoreResult, uint64, error) {
	c.watchLookup(key)
	res, newCAS, err := c.srv.cache.StoreMeta(mode, key, flags, exptime, value, cas, opts)
	if c.srv.watching(watchMutations) {
		status := watchStoreStatus[res]
		switch {
		case errors.Is(err, storage.ErrTooLarge):
			status = "too_large"
		case errors.Is(err, storage.ErrNoMemory):
			status = "no_memory"
		}
		c.watchStore(mode, key, exptime, len(value), status)
	}
	return res, newCAS, err
}

var storeReplies = [...]string{
	storage.Stored:     "STORED",
	storage.NotStored:  "NOT_STORED",
	storage.Exists:     "EXISTS",
	storage.NotFound:   "NOT_FOUND",
	storage.NonNumeric: "CLIENT_ERROR cannot increment or decrement non-numeric value",
}

func (c *conn) delete(req *protocol.Request) {
	if c.remove(req.Key(), 0) == storage.Stored {
		c.storeReply(req, klogStored, "DELETED")
	} else {
		c.storeReply(req, klogNotFound, "NOT_FOUND")
	}
}

// remove deletes key for either protocol (only if its CAS unique is cas,
// when cas is not 0), recording it in the per-prefix stats.
func (c *conn) remove(key []byte, cas uint64) storage.StoreResult {
	c.watchLookup(key)
	res := c.srv.cache.DeleteCAS(key, cas)
	if c.srv.detail.enabled.Load() {
		c.srv.detail.record(key, opDelete, res == storage.Stored)
	}
	return res
}

func (c *conn) arith(req *protocol.Request) {
	c.watchLookup(req.Key())
	v, _, res, err := c.srv.cache.IncrCAS(req.Key(), req.Delta, req.Command == protocol.CmdDecr, 0)
	if c.srv.klog != nil {
		c.klogArith(req, v, res, err)
	}
	if req.NoReply {
		return
	}
	if err != nil {
		c.reply("SERVER_ERROR out of memory")
		return
	}
	if res == storage.Stored {
		c.wbuf = protocol.AppendUint(c.wbuf, v)
		c.wbuf = append(c.wbuf, '\r', '\n')
		return
	}
	c.reply(storeReplies[res])
}

func (c *conn) touch(req *protocol.Request) {
	if c.touchKey(req.Key(), req.Exptime) {
		c.storeReply(req, klogStored, "TOUCHED")
	} else {
		c.storeReply(req, klogNotFound, "NOT_FOUND")
	}
}

// touchKey sets key's exptime for either protocol's touch, counting it.
func (c *conn) touchKey(key []byte, exptime int64) bool {
	c.stats.cmdTouch++
	c.watchLookup(key)
	return c.srv.cache.Touch(key, exptime) == storage.Stored
}

func (c *conn) flushAll(req *protocol.Request) {
	if c.srv.cfg.DisableFlushAll {
		c.replyOK(req, "CLIENT_ERROR flush_all not allowed")
		return
	}
	c.stats.cmdFlush++
	c.srv.cache.FlushAll(req.Delay)
	c.replyOK(req, "OK")
}

func (c *conn) cacheMemlimit(req *protocol.Request) {
	mb := req.Level
	if mb < 8 {
		c.replyOK(req, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
		return
	}
	if mb > 1000000000 {
		c.replyOK(req, "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
		return
	}
	if err := c.srv.cache.SetMemoryLimit(int64(mb) << 20); err != nil {
		c.replyOK(req, "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust")
		return
	}
	c.replyOK(req, "OK")
}

// dropLongLine drops the unwritten replies (see dropUnwritten) before a
// line too long closes the connection, when memcached closes on it at
// once: when no newline has arrived. (With its newline in the same read,
// memcached would have answered the line and the replies after it.)
func (c *conn) dropLongLine(buf []byte) {
	if bytes.IndexByte(buf, '\n') < 0 {
		c.dropUnwritten()
	}
}

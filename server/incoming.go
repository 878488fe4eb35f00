package server

import (
	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// A storage command (text set, add, replace, cas, append, prepend; meta
// ms; binary set, add, replace, append, prepend) of a value larger than
// slab_chunk_max is read straight into the chunks of an item, as
// memcached reads a value into the item it has allocated: the read
// buffer never holds more of it than came with the command, so a 100 MB
// set costs no 100 MB buffer, nor a copy. The item is in flight until its
// value is whole and stored; a client gone before that leaves nothing
// visible, and its chunks are freed (abortIncoming). The chunks are taken
// from free memory as the value comes, never by evicting
// (storage.NewIncoming), so a client sending part of a value costs no
// stored item; without enough free memory (decided once per command), and
// for datagrams and a server logging commands or watched for mutations,
// the value is read whole into the read buffer as before. The command is
// answered as the buffered path answers it, with the same replies and
// counts.
//
// The value of an append or prepend goes into an item of its own, which
// the store copies with the old value into the new item and frees, as
// memcached does with the item it read the value into: the memory is the
// same as the buffered path's, items' instead of a read buffer. Linking
// its chunks into the new item instead of copying them would save the
// copy, but give chains memcached never builds (a full chunk after a
// partly filled one, chunks of other sizes), so that "stats slabs" would
// no longer count the chunks memcached uses for the same value.

// Protocols of a command being read in (incoming.proto).
const (
	inText = iota
	inMeta
	inBinary
)

// incoming is what answering a storage command whose value is read into
// its item needs, kept from its request: the request's buffer is not
// kept while the value is read.
type incoming struct {
	proto   uint8
	mode    storage.StoreMode
	noReply bool
	cas     uint64
	flags   uint32
	vlen    int
	key     []byte // in keyBuf
	keyBuf  [storage.KeyMaxLength]byte
	bin     protocol.BinaryHeader
	opts    storage.MetaStoreOptions
	// metaBuf holds the meta request's flags (c.meta.Flags points into
	// it while the value is read).
	metaBuf []byte
}

// startIncoming starts reading the value of the storage command req,
// whose line is the first n bytes of buf (which does not hold the whole
// value), into its item, and reports whether it did; it has then
// consumed buf and answered the command if it failed at once.
func (c *conn) startIncoming(buf []byte, n int, req *protocol.Request, mode storage.StoreMode) bool {
	if !c.canIncoming() {
		return false
	}
	r := c.incomingReq()
	r.proto, r.noReply, r.opts = inText, req.NoReply, storage.MetaStoreOptions{}
	return c.beginIncoming(buf, n, mode, req.Key(), req.Flags, req.Exptime, req.ValueLen, req.CAS)
}

// startMetaIncoming is startIncoming for the ms request req; opts are
// its store options.
func (c *conn) startMetaIncoming(buf []byte, n int, req *protocol.MetaRequest, mode storage.StoreMode, exptime int64, opts storage.MetaStoreOptions) bool {
	if !c.canIncoming() {
		return false
	}
	r := c.incomingReq()
	r.proto, r.noReply, r.opts = inMeta, req.NoReply, opts
	if !c.beginIncoming(buf, n, mode, req.Key, req.ClientFlags, exptime, req.ValueLen, req.CAS) {
		return false
	}
	if c.in != nil {
		// The reply echoes the key and flags, which point into the read
		// buffer: keep copies.
		size := 0
		for _, f := range req.Flags {
			size += len(f)
		}
		if cap(r.metaBuf) < size {
			r.metaBuf = make([]byte, 0, size)
		}
		b := r.metaBuf[:0]
		for i, f := range req.Flags {
			b = append(b, f...)
			req.Flags[i] = b[len(b)-len(f):]
		}
		r.metaBuf = b
		req.Key = r.key
	}
	return true
}

// startBinaryIncoming is startIncoming for the binary storage request h,
// whose header, extras and key are the first n bytes of buf.
func (c *conn) startBinaryIncoming(buf []byte, n int, h *protocol.BinaryHeader, mode storage.StoreMode, key []byte, flags uint32, exptime int64) bool {
	if !c.canIncoming() {
		return false
	}
	r := c.incomingReq()
	r.proto, r.noReply, r.bin, r.opts = inBinary, h.Quiet, *h, storage.MetaStoreOptions{}
	return c.beginIncoming(buf, n, mode, key, flags, exptime, int(h.ValueLen()), h.CAS)
}

// incomingReq returns the connection's incoming, made at its first use:
// most connections never read a value in.
func (c *conn) incomingReq() *incoming {
	if c.inReq == nil {
		c.inReq = new(incoming)
	}
	return c.inReq
}

// canIncoming reports whether the connection may read a value into its
// item: a stream, with no command log or mutation watcher to tell, and
// a command the storage has not already declined (see beginIncoming).
func (c *conn) canIncoming() bool {
	return c.stream && !c.inDeclined && c.srv.klog == nil && !c.srv.watching(watchFetchers|watchMutations)
}

// testHookNewIncoming, when set, runs before a connection asks the cache
// for an item to read a value into.
var testHookNewIncoming func()

// beginIncoming asks the cache for an item to read the vlen-byte value
// of a storage command into and, given one, starts reading into it what
// buf holds after the command's first n bytes. A command declined (not
// chained, or not enough free memory) is not asked about again while
// its value is buffered. It reports whether the command is read in or
// answered.
func (c *conn) beginIncoming(buf []byte, n int, mode storage.StoreMode, key []byte, flags uint32, exptime int64, vlen int, cas uint64) bool {
	if testHookNewIncoming != nil {
		testHookNewIncoming()
	}
	in, err := c.srv.cache.NewIncoming(mode, key, flags, exptime, vlen)
	if in == nil && err == nil {
		c.inDeclined = true
		return false
	}
	r := c.inReq
	r.mode, r.cas, r.flags, r.vlen = mode, cas, flags, vlen
	r.key = r.keyBuf[:copy(r.keyBuf[:], key)]
	if r.proto != inMeta && c.srv.detail.enabled.Load() {
		c.srv.detail.record(key, opSet, false)
	}
	c.noteKey(key, vlen)
	c.r += n
	if err != nil {
		c.swallow = c.wireLeft(vlen + 2)
		c.answerIncoming(storage.NotStored, 0, err)
		return true
	}
	c.in = in
	k, err := in.Write(buf[n:])
	c.r += k
	if err != nil {
		c.failIncoming(err)
	}
	return true
}

// wireLeft returns how many bytes of the value still come from the
// client when left are still to be written into the item: a binary value
// is sent without the "\r\n" an item holds after it.
func (c *conn) wireLeft(left int) int {
	if c.inReq.proto == inBinary {
		return left - 2
	}
	return left
}

// readIncoming reads more of the value being read in with read, into its
// chunks, and answers the command once the value is whole; it reports
// whether it answered. A read error is returned, the value left unread.
func (c *conn) readIncoming(read func([]byte) (int, error)) (bool, error) {
	sp, err := c.in.Space()
	if err != nil {
		c.failIncoming(err)
		return true, nil
	}
	sp = sp[:min(len(sp), c.wireLeft(c.in.Left()))]
	n, err := read(sp)
	c.stats.bytesRead += uint64(n)
	c.in.Wrote(n)
	if c.wireLeft(c.in.Left()) == 0 {
		c.finishIncoming()
		return true, nil
	}
	return false, err
}

// finishIncoming stores the value read in, or refuses it when it does not
// end in "\r\n", and answers the command.
func (c *conn) finishIncoming() {
	in := c.in
	if c.inReq.proto == inBinary {
		// The item holds the "\r\n" the client does not send.
		if _, err := in.Write([]byte("\r\n")); err != nil {
			c.failIncoming(err)
			return
		}
	}
	c.in = nil
	r := c.inReq
	if !in.Terminated() {
		in.Abort()
		c.srv.cache.CountSet(len(r.key), r.vlen, r.flags)
		if r.proto == inMeta {
			c.reply("CLIENT_ERROR bad data chunk")
		} else {
			c.storeReply(&protocol.Request{NoReply: r.noReply}, klogNotStored, "CLIENT_ERROR bad data chunk")
		}
		return
	}
	res, cas, err := c.srv.cache.StoreIncoming(in, r.cas, r.opts)
	c.answerIncoming(res, cas, err)
}

// answerIncoming answers the command read in with the outcome of its
// store, as its protocol answers a buffered one.
func (c *conn) answerIncoming(res storage.StoreResult, cas uint64, err error) {
	r := c.inReq
	switch r.proto {
	case inMeta:
		c.metaStoreAnswer(c.meta, res, cas, err)
	case inBinary:
		c.binStoreAnswer(&r.bin, r.mode, r.key, res, cas, err)
	default:
		c.storeAnswer(&protocol.Request{NoReply: r.noReply}, res, err)
	}
}

// failIncoming drops the value being read in, which found no memory for
// its chunks (memcached's "Out of memory during read"): the rest of it is
// discarded as it comes, and the command answered.
func (c *conn) failIncoming(err error) {
	in := c.in
	c.in = nil
	c.swallow = max(c.wireLeft(in.Left()), 0)
	in.Abort()
	c.answerIncoming(storage.NotStored, 0, err)
}

// abortIncoming frees the item of a value being read in, for a connection
// that ends before it is whole.
func (c *conn) abortIncoming() {
	if c.in != nil {
		c.in.Abort()
		c.in = nil
	}
}

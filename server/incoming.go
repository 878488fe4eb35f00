package server

import (
	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// A text storage command (set, add, replace, cas) of a value larger than
// slab_chunk_max is read straight into the chunks of its item, as
// memcached reads a value into the item it has allocated: the read
// buffer never holds more of it than came with the command line, so a
// 100 MB set costs no 100 MB buffer, nor a copy. The item is in flight
// until its value is whole and stored; a client gone before that leaves
// nothing visible, and its chunks are freed (abortIncoming). The chunks
// are taken from free memory as the value comes, never by evicting
// (storage.NewIncoming), so a client sending part of a value costs no
// stored item; without enough free memory, and for datagrams, append and
// prepend, and a server logging commands or watched for mutations, the
// value is read whole into the read buffer as before.

// startIncoming starts reading the value of the storage command req,
// whose line is the first n bytes of buf (which does not hold the whole
// value), into its item, and reports whether it did; it has then
// consumed buf and answered the command if it failed at once.
func (c *conn) startIncoming(buf []byte, n int, req *protocol.Request, mode storage.StoreMode) bool {
	if !c.stream || c.srv.klog != nil || c.srv.watching(watchFetchers|watchMutations) {
		return false
	}
	key := req.Key()
	in, err := c.srv.cache.NewIncoming(mode, key, req.Flags, req.Exptime, req.ValueLen)
	if in == nil && err == nil {
		return false
	}
	if c.srv.detail.enabled.Load() {
		c.srv.detail.record(key, opSet, false)
	}
	c.noteKey(key, req.ValueLen)
	c.r += n
	if err != nil {
		c.swallow = req.ValueLen + 2
		c.storeAnswer(req, storage.NotStored, err)
		return true
	}
	c.in, c.inNoReply, c.inCAS = in, req.NoReply, req.CAS
	c.inKey, c.inLen, c.inFlags = append(c.inKey[:0], key...), req.ValueLen, req.Flags
	k, err := in.Write(buf[n:])
	c.r += k
	if err != nil {
		c.failIncoming(err)
	}
	return true
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
	n, err := read(sp)
	c.stats.bytesRead += uint64(n)
	c.in.Wrote(n)
	if c.in.Left() == 0 {
		c.finishIncoming()
		return true, nil
	}
	return false, err
}

// finishIncoming stores the value read in, or refuses it when it does not
// end in "\r\n", and answers the command.
func (c *conn) finishIncoming() {
	in := c.in
	c.in = nil
	req := protocol.Request{NoReply: c.inNoReply}
	if !in.Terminated() {
		in.Abort()
		c.srv.cache.CountSet(len(c.inKey), c.inLen, c.inFlags)
		c.storeReply(&req, klogNotStored, "CLIENT_ERROR bad data chunk")
		return
	}
	res, _, err := c.srv.cache.StoreIncoming(in, c.inCAS, storage.MetaStoreOptions{})
	c.storeAnswer(&req, res, err)
}

// failIncoming drops the value being read in, which found no memory for
// its chunks (memcached's "Out of memory during read"): the rest of it is
// discarded as it comes, and the command answered.
func (c *conn) failIncoming(err error) {
	in := c.in
	c.in = nil
	c.swallow = in.Left()
	in.Abort()
	req := protocol.Request{NoReply: c.inNoReply}
	c.storeAnswer(&req, storage.NotStored, err)
}

// abortIncoming frees the item of a value being read in, for a connection
// that ends before it is whole.
func (c *conn) abortIncoming() {
	if c.in != nil {
		c.in.Abort()
		c.in = nil
	}
}

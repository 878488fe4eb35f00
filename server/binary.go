package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// noCreate is the incr/decr expiration that means: do not create a missing
// counter.
const noCreate = 0xffffffff

// maxSASLMechLen is the longest SASL mechanism name memcached accepts.
const maxSASLMechLen = 32

// handleBinary handles the first binary-protocol request in buf, with the
// return values of handleOne.
//
// The header is checked as soon as its 24 bytes are buffered, before the
// key or the value is awaited, so a request claiming a large body costs
// nothing until it is known to be acceptable: a value that cannot fit any
// slab class is refused and discarded as it arrives, and a claim beyond
// protocol.MaxBinaryBody closes the connection. (memcached waits for the
// extras and the key before checking; the replies are the same.)
func (c *conn) handleBinary(buf []byte) int {
	var h protocol.BinaryHeader
	if !protocol.ParseBinaryHeader(buf, &h) {
		return protocol.BinaryHeaderLen
	}
	v, st := h.CheckFraming()
	if v == protocol.Accept && c.srv.cfg.SASL && !c.authed && !saslExempt(h.Command) {
		v, st = protocol.RespondClose, protocol.StatusAuthError
	}
	if v == protocol.Accept {
		v, st = h.CheckCommand()
	}
	switch v {
	case protocol.Close:
		// Bad magic: memcached closes at once, writing no reply it
		// holds.
		c.dropUnwritten()
		return -1
	case protocol.RespondClose:
		c.binError(&h, st)
		return -1
	case protocol.RespondSwallow:
		// memcached reads extras and key, then discards BodyLen more.
		c.commandSeen()
		c.r += protocol.BinaryHeaderLen
		c.swallow = h.ExtLen + h.KeyLen + int(h.BodyLen)
		c.binErrorHeld(&h, st)
		return 0
	}
	head := protocol.BinaryHeaderLen + h.ExtLen + h.KeyLen
	if len(buf) < head {
		return head
	}
	c.commandSeen()
	extras := buf[protocol.BinaryHeaderLen : protocol.BinaryHeaderLen+h.ExtLen]
	key := buf[protocol.BinaryHeaderLen+h.ExtLen : head]
	if h.HasValue() {
		if st := c.refuseValue(&h, extras, key); st != protocol.StatusOK {
			// Answered before the value is read; the value is discarded.
			c.r += head
			c.swallow = int(h.ValueLen())
			c.binErrorHeld(&h, st)
			return 0
		}
		total := protocol.BinaryHeaderLen + int(h.BodyLen)
		if len(buf) < total {
			if h.Command != protocol.OpSASLAuth && h.Command != protocol.OpSASLStep {
				mode, flags, exptime := binStoreMode(&h, extras)
				if c.startBinaryIncoming(buf, head, &h, mode, key, flags, exptime) {
					return 0
				}
			}
			return total
		}
		c.r += total
		value := buf[head:total]
		switch h.Command {
		case protocol.OpSASLAuth, protocol.OpSASLStep:
			c.binSASLAuth(&h, key, value)
		default:
			c.binStore(&h, extras, key, value)
		}
		return 0
	}
	c.r += head
	switch h.Command {
	case protocol.OpGet, protocol.OpGetK, protocol.OpTouch, protocol.OpGAT, protocol.OpGATK:
		c.binGet(&h, extras, key)
	case protocol.OpDelete:
		switch c.remove(key, h.CAS) {
		case storage.Stored:
			c.binOK(&h, 0, nil, nil, nil)
		case storage.Exists:
			c.binError(&h, protocol.StatusKeyExists)
		default:
			c.binError(&h, protocol.StatusKeyNotFound)
		}
	case protocol.OpIncrement, protocol.OpDecrement:
		c.binArith(&h, extras, key)
	case protocol.OpFlush:
		if c.srv.cfg.DisableFlushAll {
			c.binError(&h, protocol.StatusAuthError)
			return 0
		}
		var delay int64
		if len(extras) == 4 {
			delay = int64(binary.BigEndian.Uint32(extras))
		}
		c.stats.cmdFlush++
		c.srv.cache.FlushAll(delay)
		c.binOK(&h, 0, nil, nil, nil)
	case protocol.OpNoop:
		c.binOK(&h, 0, nil, nil, nil)
		c.written = len(c.wbuf) // memcached writes its replies at a noop
	case protocol.OpVersion:
		c.binOK(&h, 0, nil, nil, []byte(Version))
	case protocol.OpQuit:
		c.binOK(&h, 0, nil, nil, nil)
		return -1
	case protocol.OpStat:
		c.binStat(&h, key)
	case protocol.OpSASLList:
		if !c.srv.cfg.SASL {
			c.binError(&h, protocol.StatusUnknownCommand)
			return 0
		}
		c.authed = false // as memcached, which starts a new SASL exchange
		c.binOK(&h, 0, nil, nil, []byte(saslMechs))
	}
	return 0
}

// saslExempt reports whether a command is allowed before SASL
// authentication, as in memcached.
func saslExempt(op protocol.Opcode) bool {
	switch op {
	case protocol.OpSASLList, protocol.OpSASLAuth, protocol.OpSASLStep, protocol.OpVersion:
		return true
	}
	return false
}

// refuseValue decides, before the value is read, whether a request that
// carries one is refused, and returns its status (StatusOK if not). The
// flags of a set, add or replace count in the item's size, as in memcached,
// where an item with flags not 0 keeps them in 4 more bytes.
func (c *conn) refuseValue(h *protocol.BinaryHeader, extras, key []byte) protocol.Status {
	vlen := int(h.ValueLen())
	var flags uint32
	switch h.Command {
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace:
		flags = binary.BigEndian.Uint32(extras)
	}
	fits := c.srv.cache.ItemFitsFlags(len(key), vlen, flags)
	switch h.Command {
	case protocol.OpSASLAuth, protocol.OpSASLStep:
		switch {
		case !c.srv.cfg.SASL:
			return protocol.StatusUnknownCommand
		case len(key) > maxSASLMechLen:
			return protocol.StatusInvalidArgs
		case !fits:
			return protocol.StatusOutOfMemory
		}
	default:
		if !fits {
			mode := storage.ModeAppend
			if h.Command == protocol.OpSet {
				mode = storage.ModeSet
			}
			c.refuseTooLarge(mode, key, mode == storage.ModeSet)
			return protocol.StatusTooLarge
		}
	}
	return protocol.StatusOK
}

// binOK appends a success response unless the request is quiet.
func (c *conn) binOK(h *protocol.BinaryHeader, cas uint64, extras, key, value []byte) {
	if h.Quiet {
		return
	}
	n := len(extras) + len(key) + len(value)
	c.reserve(protocol.BinaryHeaderLen + n)
	c.wbuf = protocol.AppendBinaryResponse(c.wbuf, h.Opcode, protocol.StatusOK,
		len(extras), len(key), n, h.Opaque, cas)
	c.wbuf = append(c.wbuf, extras...)
	c.wbuf = append(c.wbuf, key...)
	if !c.woom {
		c.wbuf = append(c.wbuf, value...)
	}
}

// binError appends an error response; memcached sends errors to quiet
// requests too, and writes its replies so far with one at once.
func (c *conn) binError(h *protocol.BinaryHeader, st protocol.Status) {
	c.binErrorHeld(h, st)
	c.written = len(c.wbuf)
}

// binErrorHeld appends an error response that memcached holds with the
// replies before it until it has discarded the request's body.
func (c *conn) binErrorHeld(h *protocol.BinaryHeader, st protocol.Status) {
	c.wbuf = protocol.AppendBinaryError(c.wbuf, h.Opcode, st, h.Opaque)
}

// binOutOfMemory answers status 0x82 with msg as the body: memcached's
// out_of_memory sends its SERVER_ERROR text, without the prefix, instead
// of the status's generic "Out of memory". Quiet requests get it too.
func (c *conn) binOutOfMemory(h *protocol.BinaryHeader, msg string) {
	c.wbuf = protocol.AppendBinaryResponse(c.wbuf, h.Opcode, protocol.StatusOutOfMemory, 0, 0, len(msg), h.Opaque, 0)
	c.wbuf = append(c.wbuf, msg...)
	c.written = len(c.wbuf)
}

// binGet handles get, getk, touch, gat and gatk (and their quiet forms).
func (c *conn) binGet(h *protocol.BinaryHeader, extras, key []byte) {
	touch := h.Command == protocol.OpTouch || h.Command == protocol.OpGAT || h.Command == protocol.OpGATK
	withKey := h.Command == protocol.OpGetK || h.Command == protocol.OpGATK
	withValue := h.Command != protocol.OpTouch
	var exptime int64
	if touch {
		exptime = int64(binary.BigEndian.Uint32(extras))
	}
	var vlen int
	hit := func(it storage.Item) {
		vlen = it.Len()
		keyLen, valueLen := 0, 0
		if withKey {
			keyLen = len(it.Key)
		}
		if withValue {
			valueLen = vlen
		}
		room := valueLen
		if c.stream && vlen != len(it.Value) {
			room = 0 // written from the item's chunks (pinValue)
		}
		c.reserve(protocol.BinaryHeaderLen + 4 + keyLen + room)
		c.wbuf = protocol.AppendBinaryResponse(c.wbuf, h.Opcode, protocol.StatusOK,
			4, keyLen, 4+keyLen+valueLen, h.Opaque, it.CAS)
		c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, it.Flags)
		if withKey {
			c.wbuf = append(c.wbuf, it.Key...)
		}
		if withValue && !c.woom && (room == valueLen || !c.pinValue(it.Pin(false))) {
			c.wbuf = it.AppendValue(c.wbuf)
		}
	}
	found := c.fetch(key, touch, exptime, hit)
	c.noteKey(key, vlen)
	if found || h.Quiet {
		return
	}
	if withKey {
		c.reserve(protocol.BinaryHeaderLen + len(key))
		c.wbuf = protocol.AppendBinaryResponse(c.wbuf, h.Opcode, protocol.StatusKeyNotFound,
			0, len(key), len(key), h.Opaque, 0)
		c.wbuf = append(c.wbuf, key...)
		return
	}
	c.binError(h, protocol.StatusKeyNotFound)
}

// binStoreMode returns the store mode of the binary storage request h,
// and the flags and exptime its extras carry.
func binStoreMode(h *protocol.BinaryHeader, extras []byte) (mode storage.StoreMode, flags uint32, exptime int64) {
	switch h.Command {
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace:
		flags = binary.BigEndian.Uint32(extras)
		exptime = int64(binary.BigEndian.Uint32(extras[4:]))
		switch h.Command {
		case protocol.OpSet:
			mode = storage.ModeSet
		case protocol.OpAdd:
			mode = storage.ModeAdd
		case protocol.OpReplace:
			mode = storage.ModeReplace
		}
		if h.CAS != 0 {
			// memcached turns any of the three into a cas.
			mode = storage.ModeCAS
		}
	case protocol.OpAppend:
		mode = storage.ModeAppend
	case protocol.OpPrepend:
		mode = storage.ModePrepend
	}
	return mode, flags, exptime
}

// binStore handles set, add, replace, append and prepend (and their quiet
// forms) once the whole value is buffered.
func (c *conn) binStore(h *protocol.BinaryHeader, extras, key, value []byte) {
	mode, flags, exptime := binStoreMode(h, extras)
	res, cas, err := c.storeValue(mode, key, flags, exptime, value, h.CAS)
	c.binStoreAnswer(h, mode, key, res, cas, err)
}

// binStoreAnswer answers the binary storage request h (of mode, for key)
// with the outcome of its store.
func (c *conn) binStoreAnswer(h *protocol.BinaryHeader, mode storage.StoreMode, key []byte, res storage.StoreResult, cas uint64, err error) {
	switch {
	case errors.Is(err, storage.ErrNoMemoryRead):
		// memcached meets it reading the value of a chunked item.
		c.binOutOfMemory(h, "Out of memory during read")
	case errors.Is(err, storage.ErrNoMemory):
		if h.Command == protocol.OpSet && mode == storage.ModeCAS {
			// memcached drops the old value of a binary set that finds
			// no memory, with a CAS or not (the storage only does so
			// for a plain set).
			c.srv.cache.Unlink(key)
		}
		c.binOutOfMemory(h, "Out of memory allocating item")
	case err != nil || res == storage.NotStored:
		// memcached reports a failed add as exists and a failed replace
		// as not found.
		switch h.Command {
		case protocol.OpAdd:
			c.binError(h, protocol.StatusKeyExists)
		case protocol.OpReplace:
			c.binError(h, protocol.StatusKeyNotFound)
		default:
			c.binError(h, protocol.StatusNotStored)
		}
	case res == storage.Exists:
		c.binError(h, protocol.StatusKeyExists)
	case res == storage.NotFound:
		c.binError(h, protocol.StatusKeyNotFound)
	default:
		c.binOK(h, cas, nil, nil, nil)
	}
}

// binArith handles incr and decr (and their quiet forms): extras are the
// delta, the initial value and the expiration of a counter created when
// the key is missing (none when the expiration is 0xffffffff).
func (c *conn) binArith(h *protocol.BinaryHeader, extras, key []byte) {
	delta := binary.BigEndian.Uint64(extras)
	initial := binary.BigEndian.Uint64(extras[8:])
	exp := binary.BigEndian.Uint32(extras[16:])
	v, cas, res, err := c.srv.cache.IncrCAS(key, delta, h.Command == protocol.OpDecrement, h.CAS)
	switch {
	case err != nil:
		c.binOutOfMemory(h, "Out of memory incrementing value")
		return
	case res == storage.NonNumeric:
		c.binError(h, protocol.StatusNonNumeric)
		return
	case res == storage.Exists:
		c.binError(h, protocol.StatusKeyExists)
		return
	case res == storage.NotFound:
		if exp == noCreate {
			c.binError(h, protocol.StatusKeyNotFound)
			return
		}
		var digits [20]byte
		var sres storage.StoreResult
		sres, cas, err = c.storeValue(storage.ModeAdd, key, 0, int64(exp),
			strconv.AppendUint(digits[:0], initial, 10), 0)
		switch {
		case err != nil:
			c.binOutOfMemory(h, "Out of memory allocating new item")
			return
		case sres != storage.Stored:
			c.binError(h, protocol.StatusNotStored)
			return
		}
		v = initial
	}
	var body [8]byte
	binary.BigEndian.PutUint64(body[:], v)
	c.binOK(h, cas, nil, nil, body[:])
}

// binStat handles stat: all general stats without a key, else the group
// the key names, as memcached answers them: one response per stat, then
// an empty one.
func (c *conn) binStat(h *protocol.BinaryHeader, key []byte) {
	w := statWriter{buf: c.wbuf, binary: true, opaque: h.Opaque}
	switch {
	case len(key) == 0:
		c.srv.writeGeneralStats(&w)
	case bytes.HasPrefix(key, []byte("reset")):
		c.srv.stats.reset()
		c.srv.cache.ResetStats()
		c.srv.detail.reset()
	case bytes.HasPrefix(key, []byte("settings")):
		c.srv.writeSettings(&w)
	case bytes.HasPrefix(key, []byte("detail")):
		switch arg := key[len("detail"):]; {
		case bytes.HasPrefix(arg, []byte(" dump")):
			dump := c.srv.detail.appendDump(nil)
			w.str("detailed", string(dump)+"END\r\n")
		case bytes.HasPrefix(arg, []byte(" on")):
			c.srv.detail.enabled.Store(true)
		case bytes.HasPrefix(arg, []byte(" off")):
			c.srv.detail.enabled.Store(false)
		default:
			c.binError(h, protocol.StatusKeyNotFound)
			return
		}
	case string(key) == "items":
		c.srv.writeItems(&w)
	case string(key) == "slabs":
		c.srv.writeSlabs(&w)
	case string(key) == "sizes":
		c.srv.writeSizes(&w, "sizes")
	case string(key) == "sizes_enable", string(key) == "sizes_disable":
		// memcached sends no terminating empty stat after these.
		c.srv.writeSizes(&w, string(key))
		c.wbuf = w.buf
		return
	default:
		c.binError(h, protocol.StatusKeyNotFound)
		return
	}
	c.wbuf = protocol.AppendBinaryStat(w.buf, "", "", h.Opaque)
}

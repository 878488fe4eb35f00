package server

import (
	"encoding/base64"
	"errors"
	"strconv"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// handleMeta handles the first request in buf if it is a meta command,
// returning what handleOne returns and true; it returns false, having
// consumed nothing, for any other command.
func (c *conn) handleMeta(buf []byte) (int, bool) {
	if c.meta == nil {
		c.meta = new(protocol.MetaRequest)
	}
	req := c.meta
	n, err := protocol.ParseMeta(buf, req)
	if errors.Is(err, protocol.ErrNotMeta) {
		return 0, false
	}
	if n == 0 {
		if err != nil {
			c.dropLongLine(buf) // line too long: memcached closes the connection
			return -1, true
		}
		return len(buf) + 1, true
	}
	c.r += n
	c.commandSeen()
	if err != nil {
		if req.Command == protocol.MetaSet && req.SkipData {
			c.swallow = req.ValueLen + 2
		}
		line, _ := protocol.ErrorReply(err, false)
		c.reply(line)
		return 0, true
	}
	switch req.Command {
	case protocol.MetaGet:
		c.metaGet(req)
	case protocol.MetaSet:
		c.r -= n
		return c.metaSet(buf, n, req), true
	case protocol.MetaDelete:
		c.metaDelete(req)
	case protocol.MetaArith:
		c.metaArith(req)
	case protocol.MetaNoop:
		c.reply("MN")
		c.written = len(c.wbuf) // memcached writes its replies at mn
	case protocol.MetaDebug:
		c.metaDebug(req)
	}
	return 0, true
}

// metaReplyError replaces what a meta request has written from start on
// with the reply to err.
func (c *conn) metaReplyError(start int, line string) {
	c.wbuf = c.wbuf[:start]
	c.reply(line)
}

// replyOpaqueTooLong is memcached's answer to an overlong O token.
const replyOpaqueTooLong = "CLIENT_ERROR opaque token too long"

// appendMetaFlag appends " <flag><v>".
func appendMetaFlag(dst []byte, flag byte, v uint64) []byte {
	dst = append(dst, ' ', flag)
	return strconv.AppendUint(dst, v, 10)
}

// appendMetaMissFlags appends the return flags a reply without an item
// carries (O and k), or reports that an opaque token is too long.
func appendMetaMissFlags(dst []byte, req *protocol.MetaRequest) ([]byte, bool) {
	for _, f := range req.Flags {
		switch f[0] {
		case 'O':
			if len(f) > protocol.MaxOpaqueLen {
				return dst, false
			}
			dst = append(dst, ' ')
			dst = append(dst, f...)
		case 'k':
			dst = protocol.AppendMetaKey(dst, req.Key, req.Base64)
		}
	}
	return dst, true
}

// metaReserve makes room in wbuf for a reply line of req plus n bytes.
func (c *conn) metaReserve(req *protocol.MetaRequest, n int) {
	c.reserve(n + 2*len(req.Key) + 32*len(req.Flags) + 64)
}

// metaHead reserves room for a reply carrying a vlen-byte value, room
// bytes of which are copied into wbuf, and starts it: "VA <vlen>" when the
// request asked for the value (v flag), else "HD".
func (c *conn) metaHead(req *protocol.MetaRequest, vlen, room int) {
	c.metaReserve(req, room+2)
	if req.Value {
		c.wbuf = append(c.wbuf, "VA "...)
		c.wbuf = strconv.AppendUint(c.wbuf, uint64(vlen), 10)
	} else {
		c.wbuf = append(c.wbuf, "HD"...)
	}
}

func (c *conn) metaGet(req *protocol.MetaRequest) {
	start := len(c.wbuf)
	failed := false
	ttlSet := false
	vlen := 0
	hit := false // found before the get, not created by it
	found := c.srv.cache.MetaGet(req.Key, req.Vivify, req.NoUpdate, func(e storage.MetaEntry) storage.MetaOutcome {
		hit = !e.Created()
		vlen = e.Len()
		room := vlen
		if req.Value && c.stream && vlen != len(e.Value()) {
			room = 0 // written from the item's chunks (pinValue)
		}
		c.metaHead(req, vlen, room)
		won := false
		for _, f := range req.Flags {
			switch f[0] {
			case 'T':
				ttlSet = true
				e.SetExptime(req.TTL)
			case 'N':
				if e.Created() {
					e.SetExptime(req.VivifyTTL)
					won = true
				}
			case 'R':
				if !e.TokenSent() && !e.Created() && e.ExpiresBefore(req.RecacheTTL) {
					won = true
				}
			case 's':
				c.wbuf = appendMetaFlag(c.wbuf, 's', uint64(vlen))
			case 't':
				c.wbuf = append(c.wbuf, ' ', 't')
				c.wbuf = strconv.AppendInt(c.wbuf, e.TTL(), 10)
			case 'c':
				c.wbuf = appendMetaFlag(c.wbuf, 'c', e.CAS())
			case 'f':
				c.wbuf = appendMetaFlag(c.wbuf, 'f', uint64(e.Flags()))
			case 'l':
				c.wbuf = appendMetaFlag(c.wbuf, 'l', uint64(e.Idle()))
			case 'h':
				if e.Fetched() {
					c.wbuf = append(c.wbuf, " h1"...)
				} else {
					c.wbuf = append(c.wbuf, " h0"...)
				}
			case 'O':
				if len(f) > protocol.MaxOpaqueLen {
					failed = true
					if req.Locked {
						return storage.MetaFailed
					}
					return storage.MetaUncounted
				}
				c.wbuf = append(c.wbuf, ' ')
				c.wbuf = append(c.wbuf, f...)
			case 'k':
				c.wbuf = protocol.AppendMetaKey(c.wbuf, e.Key(), e.KeyBinary())
			}
		}
		if e.TokenSent() {
			c.wbuf = append(c.wbuf, " Z"...)
		}
		if e.Stale() {
			c.wbuf = append(c.wbuf, " X"...)
			if !e.TokenSent() {
				won = true
			}
		}
		if won {
			c.wbuf = append(c.wbuf, " W"...)
			e.MarkTokenSent()
		}
		c.wbuf = append(c.wbuf, '\r', '\n')
		if req.Value && !c.woom && !c.pinValue(e.Pin(true)) {
			c.wbuf = append(e.AppendValue(c.wbuf), '\r', '\n')
		}
		if ttlSet {
			return storage.MetaTouched
		}
		return storage.MetaHit
	})
	c.noteKey(req.Key, vlen)
	if c.srv.watching(watchFetchers) {
		c.watchGet(req.Key, hit)
	}
	switch {
	case failed:
		c.metaReplyError(start, replyOpaqueTooLong)
	case found:
		if ttlSet {
			c.stats.cmdTouch++
		} else {
			c.stats.cmdGet++
		}
	default:
		c.stats.cmdGet++
		c.metaReserve(req, 0)
		c.wbuf = append(c.wbuf, "EN"...)
		var ok bool
		if c.wbuf, ok = appendMetaMissFlags(c.wbuf, req); !ok {
			c.metaReplyError(start, replyOpaqueTooLong)
			return
		}
		if req.NoReply {
			c.wbuf = c.wbuf[:start]
			return
		}
		c.wbuf = append(c.wbuf, '\r', '\n')
	}
}

// metaSetModes maps ms's M flag to a store mode.
var metaSetModes = [256]storage.StoreMode{
	'E': storage.ModeAdd,
	'A': storage.ModeAppend,
	'P': storage.ModePrepend,
	'R': storage.ModeReplace,
}

// metaCodes are the meta status codes of store results.
var metaCodes = [...]string{
	storage.Stored:    "HD",
	storage.NotStored: "NS",
	storage.Exists:    "EX",
	storage.NotFound:  "NF",
}

// metaSet handles an ms whose line (n bytes) starts buf, as store does a
// storage command.
func (c *conn) metaSet(buf []byte, n int, req *protocol.MetaRequest) int {
	mode := metaSetModes[req.Mode]
	if req.HasCAS && (mode == storage.ModeSet || mode == storage.ModeReplace) {
		mode = storage.ModeCAS
	}
	if !c.srv.cache.ItemFitsFlags(len(req.Key), req.ValueLen, req.ClientFlags) {
		// memcached answers before reading the value, discards it, and
		// drops the old value whatever the mode.
		c.r += n
		c.swallow = req.ValueLen + 2
		c.stats.storeTooLarge++
		c.refuseTooLarge(mode, req.Key, true)
		c.reply("SERVER_ERROR object too large for cache")
		return 0
	}
	var exptime int64
	if req.HasTTL {
		exptime = req.TTL
	}
	opts := storage.MetaStoreOptions{KeyBinary: req.Base64, Invalidate: req.Invalidate && mode == storage.ModeCAS}
	total := n + req.ValueLen + 2
	if len(buf) < total {
		if c.startMetaIncoming(buf, n, req, mode, exptime, opts) {
			return 0
		}
		return total
	}
	c.r += total
	if buf[total-2] != '\r' || buf[total-1] != '\n' {
		// memcached counts the set once it has read the value.
		c.srv.cache.CountSet(len(req.Key), req.ValueLen, req.ClientFlags)
		c.reply("CLIENT_ERROR bad data chunk")
		return 0
	}
	res, cas, err := c.storeItem(mode, req.Key, req.ClientFlags, exptime, buf[n:total-2], req.CAS, opts)
	c.metaStoreAnswer(req, res, cas, err)
	return 0
}

// metaStoreAnswer answers the ms request req with the outcome of its
// store (the CAS unique of the stored item, or err).
func (c *conn) metaStoreAnswer(req *protocol.MetaRequest, res storage.StoreResult, cas uint64, err error) {
	switch {
	case errors.Is(err, storage.ErrTooLarge):
		c.stats.storeTooLarge++
		c.reply("SERVER_ERROR object too large for cache")
		return
	case errors.Is(err, storage.ErrNoMemoryRead):
		c.reply("SERVER_ERROR Out of memory during read")
		return
	case errors.Is(err, storage.ErrNoMemory):
		// memcached drops the key's old value whatever the mode, so
		// that stale data cannot persist (the storage does it for a
		// plain set only).
		c.srv.cache.Unlink(req.Key)
		c.stats.storeNoMemory++
		c.reply("SERVER_ERROR out of memory storing object")
		return
	case err != nil:
		c.reply("SERVER_ERROR " + err.Error())
		return
	}
	if res == storage.Stored && req.NoReply {
		return
	}
	c.metaReserve(req, 0)
	c.wbuf = append(c.wbuf, metaCodes[res]...)
	for _, f := range req.Flags {
		switch f[0] {
		case 'O':
			c.wbuf = append(c.wbuf, ' ')
			c.wbuf = append(c.wbuf, f...)
		case 'k':
			c.wbuf = protocol.AppendMetaKey(c.wbuf, req.Key, req.Base64)
		case 'c':
			c.wbuf = appendMetaFlag(c.wbuf, 'c', cas)
		}
	}
	c.wbuf = append(c.wbuf, '\r', '\n')
}

func (c *conn) metaDelete(req *protocol.MetaRequest) {
	c.watchLookup(req.Key)
	res := c.srv.cache.DeleteMeta(req.Key, storage.MetaDeleteOptions{
		HasCAS: req.HasCAS, CAS: req.CAS,
		Invalidate: req.Invalidate, HasTTL: req.HasTTL, TTL: req.TTL,
	})
	if res == storage.Stored && req.NoReply {
		return
	}
	c.metaReserve(req, 0)
	c.wbuf = append(c.wbuf, metaCodes[res]...)
	c.wbuf, _ = appendMetaMissFlags(c.wbuf, req) // the parser checked O
	c.wbuf = append(c.wbuf, '\r', '\n')
}

func (c *conn) metaArith(req *protocol.MetaRequest) {
	start := len(c.wbuf)
	decr := req.Mode == 'D' || req.Mode == '-'
	failed, quiet, created := false, false, false
	c.watchLookup(req.Key)
	res, err := c.srv.cache.ArithMeta(req.Key, req.Delta, decr, req.CAS, req.Vivify, req.Initial, func(e storage.MetaEntry) {
		created = e.Created()
		// memcached suppresses a quiet success, but not a creation.
		quiet = req.NoReply && !created
		var digits [20]byte
		num := strconv.AppendUint(digits[:0], e.Number(), 10)
		c.metaHead(req, len(num), len(num))
		for _, f := range req.Flags {
			switch f[0] {
			case 'c':
				c.wbuf = appendMetaFlag(c.wbuf, 'c', e.CAS())
			case 't':
				c.wbuf = append(c.wbuf, ' ', 't')
				c.wbuf = strconv.AppendInt(c.wbuf, e.TTL(), 10)
			case 'T':
				e.SetExptime(req.TTL)
			case 'N':
				if e.Created() {
					e.SetExptime(req.VivifyTTL)
				}
			case 'O':
				if len(f) > protocol.MaxOpaqueLen {
					failed = true
					return
				}
				c.wbuf = append(c.wbuf, ' ')
				c.wbuf = append(c.wbuf, f...)
			case 'k':
				c.wbuf = protocol.AppendMetaKey(c.wbuf, req.Key, req.Base64)
			}
		}
		if req.Value {
			c.wbuf = append(c.wbuf, '\r', '\n')
			c.wbuf = append(c.wbuf, num...)
		}
		c.wbuf = append(c.wbuf, '\r', '\n')
	})
	if created {
		// memcached stores the initial number as an add, which looks the
		// key up again; it logs the TTL the item had before N set it.
		if c.srv.watching(watchFetchers) {
			c.watchGet(req.Key, false)
		}
		if c.srv.watching(watchMutations) {
			c.watchStore(storage.ModeAdd, req.Key, 0, 0, "stored")
		}
	}
	switch {
	case errors.Is(err, storage.ErrNoMemory) && res == storage.NotFound:
		c.metaReplyError(start, "SERVER_ERROR Out of memory allocating new item")
	case err != nil:
		c.metaReplyError(start, "SERVER_ERROR out of memory")
	case failed:
		c.metaReplyError(start, replyOpaqueTooLong)
	case res == storage.Stored:
		if quiet {
			c.wbuf = c.wbuf[:start]
		}
	case res == storage.NonNumeric:
		c.reply("CLIENT_ERROR cannot increment or decrement non-numeric value")
	default: // NotFound, Exists
		c.metaReserve(req, 0)
		c.wbuf = append(c.wbuf, metaCodes[res]...)
		var ok bool
		if c.wbuf, ok = appendMetaMissFlags(c.wbuf, req); !ok {
			c.metaReplyError(start, replyOpaqueTooLong)
			return
		}
		c.wbuf = append(c.wbuf, '\r', '\n')
	}
}

func (c *conn) metaDebug(req *protocol.MetaRequest) {
	c.stats.cmdMeta++
	c.metaReserve(req, 0)
	found := c.srv.cache.MetaDebug(req.Key, func(e storage.MetaEntry) {
		c.wbuf = append(c.wbuf, "ME "...)
		if e.KeyBinary() {
			c.wbuf = base64.StdEncoding.AppendEncode(c.wbuf, e.Key())
		} else {
			c.wbuf = append(c.wbuf, e.Key()...)
		}
		c.wbuf = append(c.wbuf, " exp="...)
		c.wbuf = strconv.AppendInt(c.wbuf, int64(e.DebugExptime()), 10)
		c.wbuf = append(c.wbuf, " la="...)
		c.wbuf = strconv.AppendUint(c.wbuf, uint64(e.Idle()), 10)
		c.wbuf = append(c.wbuf, " cas="...)
		c.wbuf = strconv.AppendUint(c.wbuf, e.CAS(), 10)
		if e.Fetched() {
			c.wbuf = append(c.wbuf, " fetch=yes"...)
		} else {
			c.wbuf = append(c.wbuf, " fetch=no"...)
		}
		c.wbuf = append(c.wbuf, " cls="...)
		c.wbuf = strconv.AppendInt(c.wbuf, int64(e.DebugClass()), 10)
		c.wbuf = append(c.wbuf, " size="...)
		c.wbuf = strconv.AppendInt(c.wbuf, e.DebugSize(), 10)
		c.wbuf = append(c.wbuf, '\r', '\n')
	})
	if !found {
		c.reply("EN")
	}
}

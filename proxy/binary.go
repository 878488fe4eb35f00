package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/corvidcache/corvid/protocol"
)

// The binary protocol through the proxy. A client connection whose first
// byte is 0x80 speaks it (as memcached's -B auto decides). Each request
// is judged by its header as memcached judges it (protocol.BinaryHeader),
// routed by its key, and sent on one of the server's binary connections
// (a backend has as many as text ones; they connect on the first binary
// request), so that the server answers it in binary.
//
// Every request sent gets exactly one reply, so that the server
// connection's FIFO stays in step: a quiet request (getq, setq, ...) is
// sent as its plain form, and the proxy drops the reply memcached would
// not have sent (success; for the get family, a miss). The reply the
// client gets carries its own opcode and opaque: matching is by order,
// so whatever opaque a server echoes, the proxy writes the client's.

// clientProto is a client connection's protocol.
type clientProto uint8

const (
	protoUndecided clientProto = iota // no byte read yet
	protoText                         // text and meta commands
	protoBinary                       // the binary protocol
)

// statusInternalError is memcached's binary status 0x84 (internal error):
// the reply to a request whose server failed (down, timed out, garbage),
// with twemproxy's reason ("Connection refused", ...) as its body, where a
// text client gets "SERVER_ERROR <reason>".
const statusInternalError protocol.Status = 0x84

// errBinaryClose ends a binary client connection that sent a malformed
// header, after the error reply memcached sends, if any.
var errBinaryClose = errors.New("proxy: malformed binary request")

// binaryReq is what a binary request's reply is checked and rewritten by.
type binaryReq struct {
	op     protocol.Opcode // the client's opcode, written back in the reply
	sent   protocol.Opcode // the opcode sent: the plain form of op
	quiet  bool
	opaque uint32
}

func newBinaryReq(h *protocol.BinaryHeader) binaryReq {
	return binaryReq{op: h.Opcode, sent: h.Command, quiet: h.Quiet, opaque: h.Opaque}
}

// binary handles the first binary request in buf, with handle's results.
func (cl *client) binary(buf []byte, skip *int) (int, int, error) {
	const hlen = protocol.BinaryHeaderLen
	var h protocol.BinaryHeader
	if !protocol.ParseBinaryHeader(buf, &h) {
		return 0, hlen, nil
	}
	switch v, st := h.Check(); v {
	case protocol.Close:
		return 0, 0, errBinaryClose
	case protocol.RespondClose:
		if err := cl.binError(&h, st); err != nil {
			return 0, 0, err
		}
		return 0, 0, errBinaryClose
	case protocol.RespondSwallow:
		// An unknown opcode: memcached discards the extras and the key,
		// then as many bytes as the body claims.
		*skip = h.ExtLen + h.KeyLen + int(h.BodyLen)
		return hlen, 0, cl.binError(&h, st)
	}
	switch h.Command {
	case protocol.OpSASLList, protocol.OpSASLAuth, protocol.OpSASLStep:
		// As memcached without -S: the proxy holds no credentials.
		*skip = int(h.BodyLen)
		return hlen, 0, cl.binError(&h, protocol.StatusUnknownCommand)
	}
	head := hlen + h.ExtLen + h.KeyLen
	if h.HasValue() {
		if h.ValueLen() > int64(cl.p.cfg.MaxValueLen) {
			if h.Command != protocol.OpSet {
				*skip = int(h.BodyLen)
				return hlen, 0, cl.binError(&h, protocol.StatusTooLarge)
			}
			// A set (or setq) removes the key's old value, as memcached
			// does: its key is read, the rest discarded as it arrives.
			if len(buf) < head {
				return 0, head, nil
			}
			*skip = int(h.BodyLen) - h.ExtLen - h.KeyLen
			if err := cl.dropStaleBinary(buf[hlen+h.ExtLen : head]); err != nil {
				return 0, 0, err
			}
			return head, 0, cl.binError(&h, protocol.StatusTooLarge)
		}
		total := hlen + int(h.BodyLen)
		if len(buf) < total {
			return 0, total, nil
		}
		return total, 0, cl.forwardBinary(&h, buf[:total], buf[hlen+h.ExtLen:head])
	}
	// A command without a value is its extras and key: bytes its body
	// claims beyond them are read as the next request, as memcached does.
	if len(buf) < head {
		return 0, head, nil
	}
	req := buf[:head]
	switch h.Command {
	case protocol.OpGet, protocol.OpGetK, protocol.OpDelete, protocol.OpIncrement,
		protocol.OpDecrement, protocol.OpTouch, protocol.OpGAT, protocol.OpGATK:
		return head, 0, cl.forwardBinary(&h, req, buf[hlen+h.ExtLen:head])
	case protocol.OpFlush:
		return head, 0, cl.flushBinary(&h, req)
	case protocol.OpNoop:
		// Answered in order: after the replies of every request before it.
		return head, 0, cl.binOK(&h, nil)
	case protocol.OpVersion:
		return head, 0, cl.binOK(&h, []byte(cl.p.cfg.Version))
	case protocol.OpQuit:
		if !h.Quiet {
			if err := cl.binOK(&h, nil); err != nil {
				return 0, 0, err
			}
		}
		return head, 0, errQuit
	case protocol.OpStat:
		return head, 0, cl.binStat(&h, buf[hlen+h.ExtLen:head])
	}
	return head, 0, cl.binError(&h, protocol.StatusUnknownCommand) // Check accepts no other
}

// dropStaleBinary removes key's value from its server with a binary
// delete whose reply is dropped: what memcached does when it refuses a
// set whose value is too large, so that the value the client meant to
// replace is not read again (through a route tree, where a binary
// delete goes). It goes on the connection the client's next binary
// request to that server takes, so it runs before it.
func (cl *client) dropStaleBinary(key []byte) error {
	line := append(cl.staleLine[:0], protocol.BinaryRequestMagic, byte(protocol.OpDelete))
	line = binary.BigEndian.AppendUint16(line, uint16(len(key)))
	line = append(line, 0, 0, 0, 0) // extras, data type, vbucket
	line = binary.BigEndian.AppendUint32(line, uint32(len(key)))
	line = append(line, make([]byte, 12)...) // opaque, CAS
	line = append(line, key...)
	cl.staleLine = line
	c := newCall()
	c.kind, c.op, c.units = kindBinary, opBinary, 1
	c.bin = binaryReq{op: protocol.OpDelete, sent: protocol.OpDelete}
	if err := cl.dispatch(c, true); err != nil {
		c.release()
		return err
	}
	if rt := cl.holdRoute(); rt != nil {
		rt.routeTo(cl, c, rt.root, rreq{key: key, op: rDelete, kind: kindBinary, parts: [][]byte{line}}, nil)
		cl.unhold()
		return nil
	}
	b, err := cl.hold().route(key)
	if err != nil {
		cl.unhold()
		c.complete(nil, err)
		return nil
	}
	b.sendBinary(c, line)
	cl.unhold()
	return nil
}

// binOK queues the proxy's own success reply to h, with value as body.
func (cl *client) binOK(h *protocol.BinaryHeader, value []byte) error {
	cl.line = protocol.AppendBinaryResponse(cl.line[:0], h.Opcode, protocol.StatusOK,
		0, 0, len(value), h.Opaque, 0)
	cl.line = append(cl.line, value...)
	return cl.localRaw(cl.line)
}

// binStat answers stat with key as text "stats" through the proxy
// answers its argument: the proxy's counters without a key or when the
// key's first word is a stats group memcached knows (statsGroups), else
// memcached's binary reply to an unknown group, status 1 (not found).
func (cl *client) binStat(h *protocol.BinaryHeader, key []byte) error {
	if len(key) > 0 {
		group, _, _ := bytes.Cut(key, []byte(" "))
		if !statsGroups[string(group)] {
			return cl.binError(h, protocol.StatusKeyNotFound)
		}
	}
	return cl.localRaw(appendBinaryStats(nil, cl.p.appendStats(nil), h.Opaque))
}

// binError queues the proxy's own error reply to h.
func (cl *client) binError(h *protocol.BinaryHeader, st protocol.Status) error {
	cl.line = protocol.AppendBinaryError(cl.line[:0], h.Opcode, st, h.Opaque)
	return cl.localRaw(cl.line)
}

// binaryHeader sets cl.line to the header of req as it is sent to a
// server: the plain form of a quiet opcode, and a body of only extras and
// key for a command without a value.
func (cl *client) binaryHeader(h *protocol.BinaryHeader, req []byte) []byte {
	cl.line = append(cl.line[:0], req[:protocol.BinaryHeaderLen]...)
	cl.line[1] = byte(h.Command)
	if !h.HasValue() {
		binary.BigEndian.PutUint32(cl.line[8:], uint32(h.ExtLen+h.KeyLen))
	}
	return cl.line
}

// forwardBinary sends the binary request req to the server that owns key.
func (cl *client) forwardBinary(h *protocol.BinaryHeader, req, key []byte) error {
	c := newCall()
	c.kind, c.op, c.units = kindBinary, opBinary, 1
	c.bin = newBinaryReq(h)
	if err := cl.dispatch(c, false); err != nil {
		c.release()
		return err
	}
	hdr := cl.binaryHeader(h, req)
	if rt := cl.holdRoute(); rt != nil {
		rt.routeTo(cl, c, rt.root, rreq{key: key, op: binaryOp(h.Opcode), kind: kindBinary,
			parts: [][]byte{hdr, req[protocol.BinaryHeaderLen:]}}, nil)
		cl.unhold()
		return nil
	}
	b, err := cl.hold().route(key)
	if err != nil {
		cl.unhold()
		c.complete(nil, err)
		return nil
	}
	b.sendBinary(c, hdr, req[protocol.BinaryHeaderLen:])
	cl.unhold()
	return nil
}

// flushBinary sends flush to every server of the pool; the client gets
// success only when every server succeeded (as flush_all in text).
func (cl *client) flushBinary(h *protocol.BinaryHeader, req []byte) error {
	parent := newCall()
	parent.op, parent.units = opBinaryFlush, 1
	parent.bin = newBinaryReq(h)
	if err := cl.dispatch(parent, false); err != nil {
		parent.release()
		return err
	}
	hdr := cl.binaryHeader(h, req)
	all := cl.holdAll()
	defer cl.unhold()
	if len(all) == 0 {
		parent.complete(nil, errNoServer)
		return nil
	}
	for range all {
		f := newCall()
		f.kind, f.parent, f.conn = kindBinary, parent, parent.conn
		parent.frags = append(parent.frags, f)
	}
	parent.pending.Store(int32(len(all)))
	cl.pool.st.fragments.Add(int64(len(all)))
	for i, f := range parent.frags {
		all[i].sendBinary(f, hdr, req[protocol.BinaryHeaderLen:])
	}
	return nil
}

// sendBinary queues c, whose binary request is the concatenation of
// parts, on one of b's binary connections: its client's (c.conn), so
// that the server runs a client's requests in its order, as send does
// for text.
func (b *backend) sendBinary(c *call, parts ...[]byte) {
	c.srv = b
	c.binOp, c.binOpaque = parts[0][1], binary.BigEndian.Uint32(parts[0][12:])
	bc := b.binConns[0]
	if len(b.binConns) > 1 {
		bc = b.binConns[c.conn%uint32(len(b.binConns))]
	}
	bc.enqueue(c, parts...)
}

// frameBinary returns the length of the binary response at the start of
// buf (0 when incomplete), or errGarbage when buf does not start one.
func frameBinary(buf []byte) (int, error) {
	const hlen = protocol.BinaryHeaderLen
	if len(buf) > 0 && buf[0] != protocol.BinaryResponseMagic {
		return 0, errGarbage
	}
	if len(buf) < hlen {
		return 0, nil
	}
	body := int64(binary.BigEndian.Uint32(buf[8:]))
	keyExt := int64(binary.BigEndian.Uint16(buf[2:])) + int64(buf[4])
	if body > maxReplyValue || keyExt > body {
		return 0, errGarbage
	}
	n := hlen + int(body)
	if len(buf) < n {
		return 0, nil
	}
	return n, nil
}

// appendBinary appends the reply of the completed binary call c.
func (cl *client) appendBinary(wbuf []byte, c *call) []byte {
	br := &c.bin
	if c.op == opBinaryFlush {
		for _, f := range c.frags {
			if f.err != nil {
				return cl.appendBinaryFailure(wbuf, br, f.err)
			}
		}
		for _, f := range c.frags {
			if binaryStatus(f.reply) != protocol.StatusOK {
				return cl.appendBinaryReply(wbuf, br, f.reply)
			}
		}
		if c.err != nil {
			return cl.appendBinaryFailure(wbuf, br, c.err)
		}
		if br.quiet {
			return wbuf
		}
		return protocol.AppendBinaryResponse(wbuf, br.op, protocol.StatusOK, 0, 0, 0, br.opaque, 0)
	}
	if c.err != nil {
		return cl.appendBinaryFailure(wbuf, br, c.err)
	}
	return cl.appendBinaryReply(wbuf, br, c.reply)
}

// appendBinaryReply appends a server's reply to the request br with the
// client's opcode and opaque, or nothing when the request was quiet and
// memcached would not have answered it.
func (cl *client) appendBinaryReply(wbuf []byte, br *binaryReq, reply []byte) []byte {
	if protocol.Opcode(reply[1]) != br.sent {
		return cl.appendBinaryFailure(wbuf, br, errGarbage) // not this request's reply
	}
	if br.quiet && quietDrops(br.sent, binaryStatus(reply)) {
		return wbuf
	}
	reply[1] = byte(br.op)
	binary.BigEndian.PutUint32(reply[12:], br.opaque)
	return cl.appendBig(wbuf, reply)
}

// appendBinaryFailure appends the reply to the request br whose server
// failed with err: status 0x84 (internal error) with twemproxy's reason.
// Errors are sent to quiet requests too, as memcached sends them.
func (cl *client) appendBinaryFailure(wbuf []byte, br *binaryReq, err error) []byte {
	cl.pool.st.forwardError.Add(1)
	msg := errorText(err)
	wbuf = protocol.AppendBinaryResponse(wbuf, br.op, statusInternalError, 0, 0, len(msg), br.opaque, 0)
	return append(wbuf, msg...)
}

// binaryStatus returns the status of a binary response.
func binaryStatus(reply []byte) protocol.Status {
	return protocol.Status(binary.BigEndian.Uint16(reply[6:]))
}

// quietDrops reports whether memcached sends no reply with status st to
// the quiet form of cmd: none on success, and for the get family none on
// a miss (a hit is sent).
func quietDrops(cmd protocol.Opcode, st protocol.Status) bool {
	switch cmd {
	case protocol.OpGet, protocol.OpGetK, protocol.OpGAT, protocol.OpGATK:
		return st == protocol.StatusKeyNotFound
	}
	return st == protocol.StatusOK
}

// appendBinaryStats appends the proxy's counters, given as the text
// reply to "stats", as binary stat responses: one per STAT line, then the
// empty one that ends them.
func appendBinaryStats(dst, text []byte, opaque uint32) []byte {
	for len(text) > 0 {
		line := text
		if i := bytes.Index(text, []byte("\r\n")); i >= 0 {
			line, text = text[:i], text[i+2:]
		} else {
			text = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte("STAT "))
		if !ok {
			continue
		}
		name, value, _ := bytes.Cut(rest, []byte(" "))
		dst = protocol.AppendBinaryStat(dst, string(name), string(value), opaque)
	}
	return protocol.AppendBinaryStat(dst, "", "", opaque)
}

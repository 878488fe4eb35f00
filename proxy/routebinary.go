package proxy

import (
	"bytes"
	"strings"

	"github.com/corvidcache/corvid/protocol"
)

// The binary protocol through a route tree. A binary request takes the
// same route as its text counterpart (binaryOp is its operation): its
// bytes, the header with the plain opcode first (see binaryHeader), go
// to a PoolRoute's server on its binary connections; composers copy and
// send them as they do a text request's, and judge the replies by their
// status (classifyBinary); the routes that answer themselves (NullRoute,
// ErrorRoute, AllAsyncRoute) answer in binary. A WarmUpRoute takes a
// binary get as a gets, so that its CAS unique is cold's; its fills,
// made from warm's meta reply, go to cold as text, so a key a text
// command cannot carry (textKey) goes to cold alone.

// defaultReply is mcrouter's default reply to r, whose reply completes
// c (see defaultReply): for a binary request, the status of the text
// reply (key not found, not stored); for a quiet one, as for a quiet
// meta request, a reply the client is not sent. A miss to getk or gatk
// carries the key and no text, as memcached's does.
func (r rreq) defaultReply(c *call) []byte {
	if r.kind == kindMeta {
		return metaOwnFlags(defaultReply(r.op, r.kind), r.parts[0])
	}
	if r.kind != kindBinary {
		return []byte(defaultReply(r.op, r.kind))
	}
	if len(r.parts) > 0 && len(r.parts[0]) > 1 {
		switch op := protocol.Opcode(r.parts[0][1]); op {
		case protocol.OpGetK, protocol.OpGATK:
			b := protocol.AppendBinaryResponse(nil, op, protocol.StatusKeyNotFound, 0, len(r.key), len(r.key), 0, 0)
			return append(b, r.key...)
		}
	}
	st := protocol.StatusKeyNotFound
	switch {
	case c.bin.quiet && !r.op.getLike():
		st = protocol.StatusOK
	case r.op.updateLike() && !c.bin.quiet:
		st = protocol.StatusNotStored
	}
	return binaryLocal(r, st, "")
}

// metaOwnFlags returns reply, a meta status line, with the opaque and
// the key (flags O and k) of the request line carried back as a server
// carries them in its reply to a miss: in the request's order, the key
// as the line spells it (followed by b when it is base64).
func metaOwnFlags(reply string, line []byte) []byte {
	out := []byte(strings.TrimSuffix(reply, "\r\n"))
	_, rest := nextField(bytes.TrimRight(line, "\r\n")) // the command
	key, rest := nextField(rest)
	b64 := false
	for t, r := nextField(rest); len(t) > 0; t, r = nextField(r) {
		b64 = b64 || string(t) == "b"
	}
	for t, r := nextField(rest); len(t) > 0; t, r = nextField(r) {
		switch t[0] {
		case 'O':
			out = append(append(out, ' '), t...)
		case 'k':
			out = append(append(out, " k"...), key...)
			if b64 {
				out = append(out, " b"...)
			}
		}
	}
	return append(out, "\r\n"...)
}

// binaryLocal returns the proxy's own reply of status st to the binary
// request r, with body (or the status's text, when empty and st is an
// error) as its value. It carries the opcode r sends to a server, as a
// server's reply to it would: the client's writer restores the client's
// opcode and opaque.
func binaryLocal(r rreq, st protocol.Status, body string) []byte {
	op := protocol.Opcode(0)
	if len(r.parts) > 0 && len(r.parts[0]) > 1 {
		op = protocol.Opcode(r.parts[0][1])
	}
	if body == "" && st != protocol.StatusOK {
		return protocol.AppendBinaryError(nil, op, st, 0)
	}
	b := protocol.AppendBinaryResponse(nil, op, st, 0, 0, len(body), 0, 0)
	return append(b, body...)
}

// classifyBinary returns the result of a binary reply of status st to
// a request of op, as classify ranks its text counterpart: a miss for
// not found and not stored (an add's "key exists" included: its text
// counterpart is NOT_STORED), a server error for out of memory, a value
// too large and the proxy's internal error, a client error for a
// request the server refused.
func classifyBinary(op rop, st protocol.Status) result {
	switch {
	case st == protocol.StatusKeyExists && op == rAdd:
		return resMiss
	case st == protocol.StatusOK, st == protocol.StatusKeyExists:
		return resOK // text EXISTS ranks as a reply, not an error
	}
	switch st {
	case protocol.StatusKeyNotFound, protocol.StatusNotStored:
		return resMiss
	case protocol.StatusTooLarge:
		return resRemote // text: SERVER_ERROR object too large for cache
	case protocol.StatusInvalidArgs, protocol.StatusNonNumeric,
		protocol.StatusUnknownCommand, protocol.StatusAuthError, protocol.StatusAuthContinue:
		return resClient
	}
	return resRemote
}

// textKey reports whether key can go in a text command as it is: a
// binary key may hold spaces and control characters, which would split
// the command (and put a server connection out of step).
func textKey(key []byte) bool {
	for _, c := range key {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return len(key) > 0
}

package proxy

import (
	"bytes"

	"github.com/corvidcache/corvid/protocol"
)

// rop is a request's operation, as mcrouter's OperationSelectorRoute
// names them.
type rop uint8

const (
	rGet rop = iota
	rGets
	rGat
	rGats
	rSet
	rAdd
	rReplace
	rAppend
	rPrepend
	rCas
	rDelete
	rIncr
	rDecr
	rTouch
	rMetaGet
	rMetaSet
	rMetaDelete
	rMetaArith
	rMetaOther
	rOther
	nROps
)

var ropNames = [nROps]string{"get", "gets", "gat", "gats", "set", "add", "replace", "append",
	"prepend", "cas", "delete", "incr", "decr", "touch", "mg", "ms", "md", "ma", "me", "other"}

// ropPolicy is the operation whose operation_policies entry a request
// takes: a meta command takes its classic counterpart's (mg: get, ms:
// set, md: delete, ma: incr).
var ropPolicy = [nROps]rop{rGet, rGets, rGat, rGats, rSet, rAdd, rReplace, rAppend, rPrepend,
	rCas, rDelete, rIncr, rDecr, rTouch, rGet, rSet, rDelete, rIncr, rMetaOther, rOther}

// ropClass is RateLimitRoute's class of each operation: 0 gets, 1 sets,
// 2 deletes.
var ropClass = [nROps]uint8{0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 0, 1, 2, 1, 0, 0}

func ropByName(s string) (rop, bool) {
	for i, n := range ropNames {
		if n == s {
			return rop(i), true
		}
	}
	// mcrouter's metaget (an item's metadata) is no memcached request:
	// see mcrouterOnlyOps. Taking it for get would make a get follow
	// whichever of the two entries a load applied last.
	return 0, false
}

// ropOf returns the operation of a request line.
func ropOf(line []byte) rop {
	cmd := commandName(line)
	switch string(cmd) {
	case "get":
		return rGet
	case "gets":
		return rGets
	case "gat":
		return rGat
	case "gats":
		return rGats
	case "set":
		return rSet
	case "add":
		return rAdd
	case "replace":
		return rReplace
	case "append":
		return rAppend
	case "prepend":
		return rPrepend
	case "cas":
		return rCas
	case "delete":
		return rDelete
	case "incr":
		return rIncr
	case "decr":
		return rDecr
	case "touch":
		return rTouch
	case "mg":
		return rMetaGet
	case "ms":
		return rMetaSet
	case "md":
		return rMetaDelete
	case "ma":
		return rMetaArith
	case "me", "mn":
		return rMetaOther
	}
	return rOther
}

// updateLike reports whether op stores (mcrouter's UpdateLike).
func (op rop) updateLike() bool {
	return op >= rSet && op <= rCas || op == rMetaSet
}

// getLike reports whether op fetches a value.
func (op rop) getLike() bool { return op <= rGats || op == rMetaGet }

// Reply results, ranked as mcrouter ranks them ("awfulness"): AllSync
// answers the worst of its children's replies.
type result uint8

const (
	resOK      result = 1 // stored, deleted, found, touched, a hit ...
	resMiss    result = 4 // not found, not stored, a miss
	resTimeout result = 5 // the server could not be reached or timed out
	resRemote  result = 7 // SERVER_ERROR from the server
	resClient  result = 9 // CLIENT_ERROR, ERROR
)

// failover reports whether FailoverRoute tries its next child after
// this result: mcrouter's failover errors (connection errors, timeouts,
// the server's SERVER_ERROR), not a client error.
func (r result) failover() bool { return r == resTimeout || r == resRemote }

// isError reports whether r is an error (not a hit, miss or success).
func (r result) isError() bool { return r >= resTimeout }

// classify returns the result of a reply (or the failure err) to a
// request of op.
func classify(op rop, reply []byte, err error) result {
	if err != nil {
		return resTimeout
	}
	if len(reply) >= protocol.BinaryHeaderLen && reply[0] == protocol.BinaryResponseMagic {
		return classifyBinary(op, binaryStatus(reply))
	}
	switch {
	case bytes.HasPrefix(reply, []byte("SERVER_ERROR")):
		return resRemote
	case bytes.HasPrefix(reply, []byte("CLIENT_ERROR")), bytes.HasPrefix(reply, []byte("ERROR")):
		return resClient
	case bytes.HasPrefix(reply, []byte("NOT_FOUND")), bytes.HasPrefix(reply, []byte("NOT_STORED")),
		bytes.HasPrefix(reply, []byte("END")), bytes.HasPrefix(reply, []byte("EN")),
		bytes.HasPrefix(reply, []byte("NF")), bytes.HasPrefix(reply, []byte("NS")):
		return resMiss
	case op == rMetaGet && bytes.HasPrefix(reply, []byte("MN")):
		return resMiss // a quiet mg's miss: nothing before the MN
	}
	return resOK
}

// defaultReply is mcrouter's default reply to op (NullRoute's, and
// AllAsyncRoute's): not stored for a store, a miss or not found
// otherwise.
func defaultReply(op rop, kind replyKind) string {
	if kind == kindMetaQuiet {
		return "MN\r\n"
	}
	switch {
	case op == rMetaGet || op == rMetaOther:
		return "EN\r\n"
	case op == rMetaSet:
		return "NS\r\n"
	case op == rMetaDelete || op == rMetaArith:
		return "NF\r\n"
	case op.getLike():
		return "END\r\n"
	case op.updateLike():
		return "NOT_STORED\r\n"
	}
	return "NOT_FOUND\r\n"
}

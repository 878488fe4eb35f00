package protocol

import (
	"encoding/binary"
	"math"
)

// The binary protocol, as memcached 1.6.18 implements it: every request and
// response starts with a 24-byte header (big-endian fields), followed by
// extras, key and value, whose lengths the header gives.
//
//	byte  0     magic (0x80 request, 0x81 response)
//	byte  1     opcode
//	bytes 2-3   key length
//	byte  4     extras length
//	byte  5     data type (ignored)
//	bytes 6-7   vbucket (request, ignored) or status (response)
//	bytes 8-11  total body length: extras + key + value
//	bytes 12-15 opaque, echoed in the response
//	bytes 16-23 CAS

// BinaryRequestMagic is the first byte of every binary-protocol request.
const BinaryRequestMagic = 0x80

// BinaryResponseMagic is the first byte of every binary-protocol response.
const BinaryResponseMagic = 0x81

// BinaryHeaderLen is the length of a binary request or response header.
const BinaryHeaderLen = 24

// MaxBinaryBody is the largest total body length a request may claim.
// memcached computes value lengths in a C int, so larger claims overflow
// it (CVE-2016-8704/8705/8706 were such claims); corvid closes the
// connection instead of reading or discarding that much.
const MaxBinaryBody = math.MaxInt32 - 2

// Opcode is a binary-protocol command.
type Opcode uint8

// Opcodes memcached 1.6.18 answers. The quiet variants (Q) send no
// response on success, except that a quiet get still sends its hits.
const (
	OpGet       Opcode = 0x00
	OpSet       Opcode = 0x01
	OpAdd       Opcode = 0x02
	OpReplace   Opcode = 0x03
	OpDelete    Opcode = 0x04
	OpIncrement Opcode = 0x05
	OpDecrement Opcode = 0x06
	OpQuit      Opcode = 0x07
	OpFlush     Opcode = 0x08
	OpGetQ      Opcode = 0x09
	OpNoop      Opcode = 0x0a
	OpVersion   Opcode = 0x0b
	OpGetK      Opcode = 0x0c
	OpGetKQ     Opcode = 0x0d
	OpAppend    Opcode = 0x0e
	OpPrepend   Opcode = 0x0f
	OpStat      Opcode = 0x10
	OpSetQ      Opcode = 0x11
	OpAddQ      Opcode = 0x12
	OpReplaceQ  Opcode = 0x13
	OpDeleteQ   Opcode = 0x14
	OpIncrQ     Opcode = 0x15
	OpDecrQ     Opcode = 0x16
	OpQuitQ     Opcode = 0x17
	OpFlushQ    Opcode = 0x18
	OpAppendQ   Opcode = 0x19
	OpPrependQ  Opcode = 0x1a
	OpVerbosity Opcode = 0x1b // defined by the protocol; memcached 1.6.18 answers unknown command
	OpTouch     Opcode = 0x1c
	OpGAT       Opcode = 0x1d
	OpGATQ      Opcode = 0x1e
	OpSASLList  Opcode = 0x20
	OpSASLAuth  Opcode = 0x21
	OpSASLStep  Opcode = 0x22
	OpGATK      Opcode = 0x23
	OpGATKQ     Opcode = 0x24
)

// Status is a binary-protocol response status.
type Status uint16

// Response statuses.
const (
	StatusOK             Status = 0x00
	StatusKeyNotFound    Status = 0x01
	StatusKeyExists      Status = 0x02
	StatusTooLarge       Status = 0x03
	StatusInvalidArgs    Status = 0x04
	StatusNotStored      Status = 0x05
	StatusNonNumeric     Status = 0x06
	StatusAuthError      Status = 0x20
	StatusAuthContinue   Status = 0x21
	StatusUnknownCommand Status = 0x81
	StatusOutOfMemory    Status = 0x82
)

// Message returns the text memcached sends as the body of an error
// response with status s ("" for StatusOK and StatusAuthContinue).
func (s Status) Message() string {
	switch s {
	case StatusKeyNotFound:
		return "Not found"
	case StatusKeyExists:
		return "Data exists for key."
	case StatusTooLarge:
		return "Too large."
	case StatusInvalidArgs:
		return "Invalid arguments"
	case StatusNotStored:
		return "Not stored."
	case StatusNonNumeric:
		return "Non-numeric server-side value for incr or decr"
	case StatusAuthError:
		return "Auth failure."
	case StatusUnknownCommand:
		return "Unknown command"
	case StatusOutOfMemory:
		return "Out of memory"
	}
	return ""
}

// BinaryHeader is a parsed binary request header, with the quiet opcodes
// folded into their plain forms (Quiet records the difference).
type BinaryHeader struct {
	// Opcode is the request's opcode as sent (echoed in responses).
	Opcode Opcode
	// Command is Opcode with a quiet variant replaced by its plain form
	// (OpSetQ -> OpSet, OpGetKQ -> OpGetK, ...).
	Command Opcode
	// Quiet is set for the quiet variants.
	Quiet    bool
	KeyLen   int
	ExtLen   int
	BodyLen  int64 // extras + key + value, as claimed (up to 2^32-1)
	Opaque   uint32
	CAS      uint64
	Magic    byte
	DataType byte
}

// ValueLen returns the length of the value: the body after extras and key.
func (h *BinaryHeader) ValueLen() int64 {
	return h.BodyLen - int64(h.KeyLen) - int64(h.ExtLen)
}

// quietForms maps each quiet opcode to its plain form.
var quietForms = [...]Opcode{
	OpGetQ: OpGet, OpGetKQ: OpGetK, OpSetQ: OpSet, OpAddQ: OpAdd,
	OpReplaceQ: OpReplace, OpDeleteQ: OpDelete, OpIncrQ: OpIncrement,
	OpDecrQ: OpDecrement, OpQuitQ: OpQuit, OpFlushQ: OpFlush,
	OpAppendQ: OpAppend, OpPrependQ: OpPrepend, OpGATQ: OpGAT, OpGATKQ: OpGATK,
}

// ParseBinaryHeader parses the 24-byte request header at the start of buf
// into h. It returns false when buf holds fewer than BinaryHeaderLen bytes.
// It checks nothing; see Check. It never allocates and is safe for
// concurrent use on different headers.
func ParseBinaryHeader(buf []byte, h *BinaryHeader) bool {
	if len(buf) < BinaryHeaderLen {
		return false
	}
	op := Opcode(buf[1])
	*h = BinaryHeader{
		Magic:    buf[0],
		Opcode:   op,
		Command:  op,
		KeyLen:   int(binary.BigEndian.Uint16(buf[2:])),
		ExtLen:   int(buf[4]),
		DataType: buf[5],
		BodyLen:  int64(binary.BigEndian.Uint32(buf[8:])),
		Opaque:   binary.BigEndian.Uint32(buf[12:]),
		CAS:      binary.BigEndian.Uint64(buf[16:]),
	}
	if int(op) < len(quietForms) && quietForms[op] != 0 || op == OpGetQ {
		h.Command, h.Quiet = quietForms[op], true
	}
	return true
}

// Verdict is what Check decides about a request header.
type Verdict uint8

const (
	// Accept: the request is well formed; read and handle it.
	Accept Verdict = iota
	// Close: close the connection without a response (bad magic).
	Close
	// RespondClose: send an error response with the returned status,
	// then close the connection.
	RespondClose
	// RespondSwallow: send an error response with the returned status
	// (UnknownCommand) and discard the request's body, as memcached does
	// for an opcode it does not know: it discards BodyLen bytes after the
	// extras and the key (not BodyLen in all).
	RespondSwallow
)

// Check validates a request header as memcached's dispatch does, before
// any of the body is read: CheckFraming, then CheckCommand. A server that
// requires authentication checks it between the two, as memcached does.
// Check is safe for concurrent use.
func (h *BinaryHeader) Check() (Verdict, Status) {
	if v, s := h.CheckFraming(); v != Accept {
		return v, s
	}
	return h.CheckCommand()
}

// CheckFraming checks the magic byte and that extras and key fit in the
// body.
func (h *BinaryHeader) CheckFraming() (Verdict, Status) {
	if h.Magic != BinaryRequestMagic {
		return Close, 0
	}
	if int64(h.KeyLen)+int64(h.ExtLen) > h.BodyLen {
		return RespondClose, StatusUnknownCommand
	}
	return Accept, StatusOK
}

// CheckCommand checks a key no longer than MaxKeyLen, and for each command
// the extras, key and value it requires or forbids. A body longer than
// MaxBinaryBody closes the connection (with StatusTooLarge for commands
// that carry a value).
func (h *BinaryHeader) CheckCommand() (Verdict, Status) {
	key, ext, body := int64(h.KeyLen), int64(h.ExtLen), h.BodyLen
	if h.KeyLen > MaxKeyLen {
		return RespondClose, StatusInvalidArgs
	}
	ok := true
	switch h.Command {
	case OpVersion, OpNoop, OpQuit, OpSASLList:
		ok = ext == 0 && key == 0 && body == 0
	case OpFlush:
		ok = key == 0 && body == ext && (ext == 0 || ext == 4)
	case OpSet, OpAdd, OpReplace:
		ok = ext == 8 && key != 0
	case OpGet, OpGetK, OpDelete:
		ok = ext == 0 && key != 0 && body == key
	case OpIncrement, OpDecrement:
		ok = ext == 20 && key != 0 && body == key+ext
	case OpAppend, OpPrepend:
		ok = ext == 0 && key != 0
	case OpStat:
		ok = ext == 0
	case OpSASLAuth, OpSASLStep:
		ok = ext == 0 && key != 0
	case OpTouch, OpGAT, OpGATK:
		ok = ext == 4 && key != 0
	default:
		if body > MaxBinaryBody {
			return RespondClose, StatusUnknownCommand
		}
		return RespondSwallow, StatusUnknownCommand
	}
	if !ok {
		return RespondClose, StatusInvalidArgs
	}
	if h.HasValue() && body > MaxBinaryBody {
		return RespondClose, StatusTooLarge
	}
	return Accept, StatusOK
}

// HasValue reports whether the command carries a value after its key that
// the server reads (storage commands and SASL data). For the others the
// bytes after extras and key, if any, are read as the next request, as
// memcached reads them.
func (h *BinaryHeader) HasValue() bool {
	switch h.Command {
	case OpSet, OpAdd, OpReplace, OpAppend, OpPrepend, OpSASLAuth, OpSASLStep:
		return true
	}
	return false
}

// AppendBinaryResponse appends a response header for the request op with
// the given status, lengths of extras, key and body (extras + key +
// value), opaque and CAS.
func AppendBinaryResponse(dst []byte, op Opcode, status Status, extLen, keyLen, bodyLen int, opaque uint32, cas uint64) []byte {
	dst = append(dst, BinaryResponseMagic, byte(op))
	dst = binary.BigEndian.AppendUint16(dst, uint16(keyLen))
	dst = append(dst, byte(extLen), 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(status))
	dst = binary.BigEndian.AppendUint32(dst, uint32(bodyLen))
	dst = binary.BigEndian.AppendUint32(dst, opaque)
	return binary.BigEndian.AppendUint64(dst, cas)
}

// AppendBinaryError appends an error response with status s and its
// message as the body, as memcached writes one (CAS 0).
func AppendBinaryError(dst []byte, op Opcode, s Status, opaque uint32) []byte {
	msg := s.Message()
	dst = AppendBinaryResponse(dst, op, s, 0, 0, len(msg), opaque, 0)
	return append(dst, msg...)
}

// AppendBinaryStat appends one stat response: the name as key and the
// value as value. An empty name and value make the terminating response.
func AppendBinaryStat(dst []byte, name, value string, opaque uint32) []byte {
	dst = AppendBinaryResponse(dst, OpStat, StatusOK, 0, len(name), len(name)+len(value), opaque, 0)
	dst = append(dst, name...)
	return append(dst, value...)
}

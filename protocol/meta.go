package protocol

import (
	"bytes"
	"encoding/base64"
)

// MetaCommand identifies a meta-protocol command.
type MetaCommand uint8

// Meta commands, as memcached 1.6 names them.
const (
	MetaNone   MetaCommand = iota // not a meta command
	MetaGet                       // mg <key> <flag>*
	MetaSet                       // ms <key> <datalen> <flag>*, then the data block
	MetaDelete                    // md <key> <flag>*
	MetaArith                     // ma <key> <flag>*
	MetaNoop                      // mn
	MetaDebug                     // me <key> [b]
)

const (
	// maxMetaTokens is the most tokens, the command name and key
	// included, a meta line may have: memcached refuses a line whose
	// token count with its terminal token passes 20.
	maxMetaTokens = 19

	// MaxOpaqueLen is the longest opaque token (its 'O' included)
	// memcached echoes; a longer one is answered with an error.
	MaxOpaqueLen = 32
)

// MetaRequest is one parsed meta command. Byte slices point into the buffer
// given to ParseMeta, except Key when the key was base64, and are valid only
// until that buffer changes. A MetaRequest is reused across calls to avoid
// allocation; it is not safe for concurrent use.
type MetaRequest struct {
	// Command is set whenever the line names a meta command, also when
	// ParseMeta returns an error for the rest of the line.
	Command MetaCommand

	// Key is the key, decoded when Base64 is set (flag b).
	Key    []byte
	Base64 bool

	// Flags holds the flag tokens after the key (after the data length
	// of ms), in the order sent; replies echo return flags in this order.
	// Each is known to ParseMeta and appears once.
	Flags [][]byte

	// ValueLen is the length of the data block of ms, without its
	// "\r\n". After an ms line, the caller reads ValueLen+2 bytes, or
	// discards them when ParseMeta returned an error and SkipData is set.
	ValueLen int
	SkipData bool

	NoReply  bool // q: suppress the nominal reply (EN, HD, ...)
	Value    bool // v: return the value
	NoUpdate bool // u: do not bump the item in the LRU
	// Locked is set when a flag makes memcached hold the item lock while
	// it answers (N, T, R, h, l): it then bumps the item after answering,
	// and not at all when the request fails.
	Locked     bool
	Invalidate bool // I: mark stale instead of deleting (md); accept an older CAS (ms)

	HasTTL     bool  // T
	TTL        int64 // exptime of T, a 32-bit value
	Vivify     bool  // N
	VivifyTTL  int64 // exptime of N
	HasRecache bool  // R
	RecacheTTL int64 // exptime of R

	ClientFlags uint32 // F (ms)
	HasCAS      bool   // C
	CAS         uint64
	Mode        byte   // M: the mode character, 0 when absent
	Delta       uint64 // D (ma), 1 when absent
	Initial     uint64 // J (ma)

	keyBuf [MaxKeyLen]byte
	flags  [maxMetaTokens][]byte
}

// reset clears r for reuse.
func (r *MetaRequest) reset() {
	r.Command = MetaNone
	r.Key, r.Base64, r.Flags = nil, false, r.flags[:0]
	r.ValueLen, r.SkipData = 0, false
	r.NoReply, r.Value, r.NoUpdate, r.Locked, r.Invalidate = false, false, false, false, false
	r.HasTTL, r.TTL, r.Vivify, r.VivifyTTL, r.HasRecache, r.RecacheTTL = false, 0, false, 0, false, 0
	r.ClientFlags, r.HasCAS, r.CAS, r.Mode, r.Delta, r.Initial = 0, false, 0, 0, 1, 0
}

// IsMetaStart reports whether buf may start a meta command: its first byte
// other than a space is 'm'. Only then is ParseMeta worth calling.
func IsMetaStart(buf []byte) bool {
	for _, c := range buf {
		if c != ' ' {
			return c == 'm'
		}
	}
	return false
}

// ParseMeta parses the first line of buf as a meta command into req.
//
// It returns as Parse does: the bytes of the line including its "\n" (an
// ms data block is not consumed; see MetaRequest.ValueLen), 0, nil when the
// line is incomplete, and 0, ErrLineTooLong when it can never be accepted.
// A complete line that is not a meta command returns 0, ErrNotMeta, and
// the caller parses it with Parse. When it returns n > 0 and an error, the
// caller answers ErrorReply(err, false): memcached never suppresses a meta
// error. Lines are split and limited as Parse does.
//
// Errors follow memcached 1.6.18's checks in its order. One is left to the
// caller because memcached finds it only while it answers, after the
// command has taken effect: an opaque token (O) longer than MaxOpaqueLen in
// mg and ma (see OpaqueTooLong).
//
// ParseMeta never allocates. It is safe for concurrent use on different
// MetaRequests.
func ParseMeta(buf []byte, req *MetaRequest) (n int, err error) {
	req.reset()
	line, end, err := commandLine(buf)
	if end < 0 {
		return 0, err
	}
	name, i := nextToken(line, 0)
	if len(name) != 2 || name[0] != 'm' {
		return 0, ErrNotMeta
	}
	switch name[1] {
	case 'g':
		req.Command = MetaGet
	case 's':
		req.Command = MetaSet
	case 'd':
		req.Command = MetaDelete
	case 'a':
		req.Command = MetaArith
	case 'n':
		req.Command = MetaNoop
		return end + 1, nil
	case 'e':
		req.Command = MetaDebug
	default:
		return 0, ErrNotMeta
	}
	return end + 1, parseMetaLine(line, i, req)
}

// parseMetaLine parses what follows the command name, from index i.
func parseMetaLine(line []byte, i int, req *MetaRequest) error {
	key, i := nextToken(line, i)
	if len(key) == 0 {
		if req.Command == MetaDebug {
			return ErrBadFormat
		}
		return ErrUnknownCommand
	}
	if len(key) > MaxKeyLen {
		return ErrBadFormat
	}
	req.Key = key
	if req.Command == MetaDebug {
		// me reads only an exact "b" after the key.
		if tok, _ := nextToken(line, i); string(tok) == "b" {
			if !req.decodeKey() {
				return ErrBadFormat
			}
		}
		return nil
	}
	ntok := 2
	var size []byte
	if req.Command == MetaSet {
		size, i = nextToken(line, i)
		if len(size) == 0 {
			return ErrBadFormat
		}
		ntok++
	}
	for {
		tok, next := nextToken(line, i)
		if len(tok) == 0 {
			break
		}
		ntok++
		if ntok > maxMetaTokens {
			if req.Command == MetaGet {
				return ErrMetaGetTooManyFlags
			}
			return ErrMetaTooManyFlags
		}
		req.Flags = append(req.Flags, tok)
		i = next
	}
	if req.Command == MetaSet {
		vlen, ok := parseInt32(size)
		if !ok || vlen < 0 || vlen > maxValueLen {
			return ErrBadFormat
		}
		req.ValueLen = int(vlen)
		req.SkipData = true
	}
	err := req.parseFlags()
	switch {
	case err != nil && (req.Command == MetaDelete || req.Command == MetaArith):
		return ErrMetaInvalidOrDuplicate
	case err != nil:
		return err
	}
	switch req.Command {
	case MetaSet:
		if req.Mode != 0 && bytes.IndexByte([]byte("EAPRS"), req.Mode) < 0 {
			return ErrMetaSetMode
		}
		if req.OpaqueTooLong() {
			return ErrMetaOpaqueTooLong
		}
	case MetaDelete:
		if req.OpaqueTooLong() {
			return ErrMetaOpaqueTooLong
		}
	case MetaArith:
		switch req.Mode {
		case 0, 'I', '+', 'D', '-':
		default:
			return ErrMetaArithMode
		}
	}
	return nil
}

// parseFlags reads req.Flags as memcached's flag pre-parser: a repeated
// flag or an unknown one fails at once; a bad value fails after the other
// flags are read, with the error of the last bad one.
func (req *MetaRequest) parseFlags() error {
	var seen [127]bool
	var bad error
	for _, tok := range req.Flags {
		o := tok[0]
		if o >= 127 || seen[o] {
			return ErrMetaDuplicateFlag
		}
		seen[o] = true
		var ok bool
		switch o {
		case 'b':
			if !req.decodeKey() {
				bad = ErrMetaKeyDecode
			}
		case 'N':
			req.Locked, req.Vivify = true, true
			if req.VivifyTTL, ok = parseExptime(tok[1:]); !ok {
				bad = ErrMetaBadToken
			}
		case 'T':
			req.Locked = true
			if req.TTL, ok = parseExptime(tok[1:]); !ok {
				bad = ErrMetaBadToken
			} else {
				req.HasTTL = true
			}
		case 'R':
			req.Locked = true
			if req.RecacheTTL, ok = parseExptime(tok[1:]); !ok {
				bad = ErrMetaBadToken
			} else {
				req.HasRecache = true
			}
		case 'l', 'h':
			req.Locked = true
		case 'O', 'P', 'L', 'k', 's', 't', 'c', 'f':
		case 'v':
			req.Value = true
		case 'u':
			req.NoUpdate = true
		case 'q':
			req.NoReply = true
		case 'F':
			if req.ClientFlags, ok = parseUint32(tok[1:]); !ok && bad == nil {
				bad = ErrBadFormat
			}
		case 'C':
			if req.CAS, ok = parseUint64(tok[1:]); !ok {
				bad = ErrMetaBadToken
			} else {
				req.HasCAS = true
			}
		case 'M':
			if len(tok) != 2 {
				bad = ErrMetaModeLength
			} else {
				req.Mode = tok[1]
			}
		case 'J':
			if req.Initial, ok = parseUint64(tok[1:]); !ok {
				bad = ErrMetaInitial
			}
		case 'D':
			if req.Delta, ok = parseUint64(tok[1:]); !ok {
				bad = ErrMetaDelta
			}
		case 'I':
			req.Invalidate = true
		default:
			return ErrMetaInvalidFlag
		}
	}
	return bad
}

// parseExptime reads a T, N or R value as memcached does: a 32-bit
// signed number.
func parseExptime(tok []byte) (int64, bool) {
	v, ok := parseInt32(tok)
	return int64(v), ok
}

// OpaqueTooLong reports whether req has an opaque token longer than
// MaxOpaqueLen. For mg and ma memcached answers it with
// ErrMetaOpaqueTooLong once the command has taken effect, when it reaches
// the token while writing the reply.
func (req *MetaRequest) OpaqueTooLong() bool {
	for _, f := range req.Flags {
		if f[0] == 'O' && len(f) > MaxOpaqueLen {
			return true
		}
	}
	return false
}

// decodeKey decodes req.Key from base64 into req's own buffer, as
// memcached's decoder does: bytes outside the alphabet are skipped, the
// rest must be a non-empty multiple of four, and decoding stops after the
// first group holding '=' (one or two of which drop as many bytes; more
// fail).
func (req *MetaRequest) decodeKey() bool {
	n, ok := decodeBase64(req.keyBuf[:], req.Key)
	if !ok {
		return false
	}
	req.Key, req.Base64 = req.keyBuf[:n], true
	return true
}

// DecodeBase64 decodes src, a base64 key, into dst as memcached's decoder
// does (see decodeKey) and returns the decoded length, or false when
// memcached refuses src. dst must hold at least 3/4 of len(src) bytes.
func DecodeBase64(dst, src []byte) (int, bool) { return decodeBase64(dst, src) }

// decodeBase64 decodes src into dst (at least 3/4 of len(src) long) and
// returns the decoded length.
func decodeBase64(dst, src []byte) (int, bool) {
	count := 0
	for _, c := range src {
		if base64Value(c) >= 0 {
			count++
		}
	}
	if count == 0 || count%4 != 0 {
		return 0, false
	}
	var block [4]byte
	n, k, pad := 0, 0, 0
	for _, c := range src {
		v := base64Value(c)
		if v < 0 {
			continue
		}
		if c == '=' {
			pad++
		}
		block[k] = byte(v)
		k++
		if k < 4 {
			continue
		}
		dst[n] = block[0]<<2 | block[1]>>4
		dst[n+1] = block[1]<<4 | block[2]>>2
		dst[n+2] = block[2]<<6 | block[3]
		n += 3
		k = 0
		if pad > 0 {
			if pad > 2 {
				return 0, false
			}
			return n - pad, true
		}
	}
	return n, true
}

// base64Value is the value of a base64 character ('=' is 0), or -1.
func base64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	case c == '=':
		return 0
	}
	return -1
}

// AppendMetaKey appends a key as the k return flag shows it: " k<key>",
// or " k<base64 key> b" for a binary key.
func AppendMetaKey(dst, key []byte, binary bool) []byte {
	dst = append(dst, ' ', 'k')
	if !binary {
		return append(dst, key...)
	}
	dst = base64.StdEncoding.AppendEncode(dst, key)
	return append(dst, ' ', 'b')
}

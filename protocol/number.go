package protocol

import (
	"bytes"
	"math"
)

// The functions in this file read numbers the way memcached does: with C's
// strtoul/strtol/strtoull in base 10 on an LP64 system, wrapped in
// memcached's safe_strtoul/safe_strtol/safe_strtoull. That gives a few rules
// clients depend on without knowing it:
//
//   - leading C whitespace (\t \n \v \f \r) and one '+' or '-' are skipped;
//   - at least one digit must follow;
//   - after the digits the token must end or continue with C whitespace, and
//     anything may follow that whitespace ("5\tjunk" reads as 5);
//   - a magnitude of 2^64 or more is rejected (ERANGE), for every width;
//   - unsigned readers negate a '-' number modulo 2^64 and reject the result
//     only when it is negative as a signed 64-bit value and the token holds
//     a '-' ("-0" is 0; "-18446744073709551615" is 1);
//   - 32-bit results are the low 32 bits of the 64-bit value: flags
//     4294967296 read as 0 and a length of 4294967297 reads as 1.

// isCSpace reports whether c is whitespace for C's isspace in the C locale.
func isCSpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

// scanDecimal reads tok as strtoull/strtoll do in base 10. It returns the
// magnitude (meaningless when overflow is set), whether a '-' sign was read,
// whether the magnitude exceeds 2^64-1, and whether tok is acceptable to
// memcached's safe_* wrappers apart from range checks.
func scanDecimal(tok []byte) (mag uint64, neg, overflow, ok bool) {
	i := 0
	for i < len(tok) && isCSpace(tok[i]) {
		i++
	}
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start := i
	for ; i < len(tok) && '0' <= tok[i] && tok[i] <= '9'; i++ {
		d := uint64(tok[i] - '0')
		if overflow || mag > (math.MaxUint64-d)/10 {
			overflow = true
			continue
		}
		mag = mag*10 + d
	}
	if i == start {
		return 0, false, false, false
	}
	if i < len(tok) && !isCSpace(tok[i]) {
		return 0, false, false, false
	}
	return mag, neg, overflow, true
}

// parseUint64 is memcached's safe_strtoull.
func parseUint64(tok []byte) (uint64, bool) {
	mag, neg, overflow, ok := scanDecimal(tok)
	if !ok || overflow {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && bytes.IndexByte(tok, '-') >= 0 {
		return 0, false
	}
	return v, true
}

// parseUint32 is memcached's safe_strtoul: an unsigned 64-bit read
// truncated to 32 bits.
func parseUint32(tok []byte) (uint32, bool) {
	v, ok := parseUint64(tok)
	return uint32(v), ok
}

// parseInt64 is memcached's safe_strtoll.
func parseInt64(tok []byte) (int64, bool) {
	mag, neg, overflow, ok := scanDecimal(tok)
	switch {
	case !ok || overflow:
		return 0, false
	case neg && mag > 1<<63, !neg && mag > math.MaxInt64:
		return 0, false // ERANGE
	case neg:
		return -int64(mag), true // -(1<<63) wraps to itself, as wanted
	}
	return int64(mag), true
}

// parseInt32 is memcached's safe_strtol: a signed 64-bit read truncated to
// 32 bits.
func parseInt32(tok []byte) (int32, bool) {
	v, ok := parseInt64(tok)
	return int32(v), ok
}

// ParseUint32 reads an argument of an administrative command as memcached's
// safe_strtoul does (see the rules above).
func ParseUint32(tok []byte) (uint32, bool) { return parseUint32(tok) }

// ParseInt32 reads an argument of an administrative command as memcached's
// safe_strtol does.
func ParseInt32(tok []byte) (int32, bool) { return parseInt32(tok) }

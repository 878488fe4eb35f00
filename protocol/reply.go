package protocol

import "strconv"

// The Append functions write text-protocol replies to the end of dst and
// return the extended slice, like strconv's. They allocate only when dst
// must grow, and are safe for concurrent use on different slices.

// AppendValue appends one get hit: "VALUE <key> <flags> <bytes>\r\n", or
// "VALUE <key> <flags> <bytes> <cas>\r\n" when withCAS is set (gets, gats),
// then value and "\r\n".
func AppendValue(dst, key []byte, flags uint32, value []byte, cas uint64, withCAS bool) []byte {
	dst = AppendValueHead(dst, key, flags, len(value), cas, withCAS)
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// AppendValueHead appends the line of a VALUE reply for an n-byte value,
// with its "\r\n": the caller appends the value and "\r\n" (a value
// stored in pieces is appended piece by piece).
func AppendValueHead(dst, key []byte, flags uint32, n int, cas uint64, withCAS bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(n), 10)
	if withCAS {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	return append(dst, '\r', '\n')
}

// AppendLine appends line and "\r\n".
func AppendLine(dst []byte, line string) []byte {
	dst = append(dst, line...)
	return append(dst, '\r', '\n')
}

// AppendUint appends v in decimal, as in incr's and decr's reply (without
// its "\r\n").
func AppendUint(dst []byte, v uint64) []byte {
	return strconv.AppendUint(dst, v, 10)
}

// AppendStat appends the stats line "STAT <name> <value>\r\n".
func AppendStat(dst []byte, name, value string) []byte {
	dst = appendStatName(dst, name)
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// AppendStatUint appends "STAT <name> <v>\r\n" with v in decimal.
func AppendStatUint(dst []byte, name string, v uint64) []byte {
	dst = appendStatName(dst, name)
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\r', '\n')
}

// AppendStatInt appends "STAT <name> <v>\r\n" with v in decimal.
func AppendStatInt(dst []byte, name string, v int64) []byte {
	dst = appendStatName(dst, name)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '\r', '\n')
}

func appendStatName(dst []byte, name string) []byte {
	dst = append(dst, "STAT "...)
	dst = append(dst, name...)
	return append(dst, ' ')
}

package protocol

// SafeStrtol reads tok as memcached's safe_strtol: a signed decimal read
// as C's strtol on a 64-bit system, truncated to 32 bits ("4294967297"
// is 1), refused when it is empty, has trailing garbage or overflows 64
// bits. Commands whose arguments the server interprets (slabs, config) use
// it.
func SafeStrtol(tok []byte) (int32, bool) { return parseInt32(tok) }

// SafeStrtoul reads tok as memcached's safe_strtoul: an unsigned decimal
// truncated to 32 bits, refusing negative numbers ("-0" is 0).
func SafeStrtoul(tok []byte) (uint32, bool) { return parseUint32(tok) }

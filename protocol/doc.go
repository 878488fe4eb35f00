// Package protocol parses memcached's wire formats and writes their replies.
//
// The parsers take the connection's read buffer as a []byte, accept a request
// split across reads (they report how much they consumed, or that more input
// is needed), enforce memcached's limits on keys and line lengths, and never
// log, lock or touch storage. They are safe for concurrent use on different
// buffers.
//
// The text protocol follows memcached 1.6's doc/protocol.txt; where that text
// is silent, the behaviour of memcached 1.6.18 is the reference, down to the
// reply it gives for each malformed line: Parse returns an error for which
// ErrorReply gives memcached's reply. testdata/text_replies.golden holds
// memcached's replies to the lines of the tests, and the tests check Parse
// against them.
//
// Parse differs from memcached where memcached's answer depends on timing or
// is unbounded:
//
//   - A line with more than MaxLineLen bytes before its newline closes the
//     connection even when it arrived in one read (memcached closes only
//     when the first MaxLineLen+1 bytes arrive without the newline).
//   - A get or gets line is limited to MaxGetLineLen bytes.
//
// ParseMeta parses memcached's meta commands (mg, ms, md, ma, mn, me) with
// the flags memcached 1.6.18 knows, and returns its errors for the others.
// The administrative lru, lru_crawler and watch commands are parsed with
// their arguments left in Request.Args for the server to read; slabs is
// reported as unknown.
package protocol

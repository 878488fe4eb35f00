package server

import "bytes"

// httpTokenLimit is memcached's MAX_TOKENS less its terminal token: a line
// is split into at most this many tokens, the last of which is then the
// one looked at even when more words follow.
const httpTokenLimit = 23

// isHTTPRequestLine reports whether memcached 1.6 closes the connection,
// without a reply, on the text command line (its "\n" or "\r\n" included),
// taking it for an HTTP request sent to the cache port (a browser or a
// cross-protocol attack): a line it does not know as a command whose last
// token begins with "HTTP/", such as "GET / HTTP/1.0".
//
// memcached dispatches on the command's first byte before it looks: a
// command beginning with g, s, a, c, i, d or t, a two-byte command
// beginning with m, or one of the commands named below is answered (with
// ERROR when it is unknown or malformed), so "get HTTP/1.1" is a get and
// "gxt / HTTP/1.0" gets ERROR. Tokens are split on spaces only, and the
// line ends at its first NUL byte, as memcached's C string does.
func isHTTPRequestLine(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	var first, last []byte
	ntok := 0 // tokens split off so far
	for rest := line; len(rest) > 0 && ntok < httpTokenLimit; {
		i := bytes.IndexByte(rest, ' ')
		tok := rest
		if i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(tok) == 0 {
			continue
		}
		if ntok == 0 {
			first = tok
		}
		last = tok
		ntok++
	}
	if len(first) < 2 {
		return false // memcached answers ERROR
	}
	switch first[0] {
	case 'g', 's', 'a', 'c', 'i', 'd', 't':
		return false
	case 'm':
		if len(first) == 2 {
			return false
		}
	}
	switch string(first) {
	case "replace", "prepend", "bget", "flush_all", "version", "quit",
		"lru_crawler", "watch", "verbosity", "lru", "extstore", "refresh_certs":
		return false
	}
	return bytes.HasPrefix(last, []byte("HTTP/"))
}

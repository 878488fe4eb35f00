package server

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
)

// Limits of ASCII authentication (-Y), as memcached 1.6.18 has them.
const (
	// authMaxEntries is how many entries of an auth file are loaded; the
	// lines after them are ignored.
	authMaxEntries = 8
	// authMaxLine is how many bytes of an auth file line are read. A
	// longer line ends the file: its password is cut there and the lines
	// after it are ignored.
	authMaxLine = 255
	// authMaxPending is how many bytes an unauthenticated client may send
	// without a newline before the connection is closed.
	authMaxPending = 2048
	// authMaxData bounds the data block (with its "\r\n") of the
	// authentication "set": memcached must hold it in its 16 KiB read
	// buffer, and closes the connection when it cannot.
	authMaxData = readBufSize
)

// authEntry is one "user:password" line of an auth file.
type authEntry struct{ user, pass []byte }

// loadAuthFile reads the auth file at path.
func loadAuthFile(path string) ([]authEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read auth file: %w", err)
	}
	entries, err := parseAuthFile(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load auth file %q: %w", path, err)
	}
	return entries, nil
}

// parseAuthFile parses the contents of an auth file the way memcached
// 1.6.18 reads it, line by line with fgets into a 256-byte buffer:
//
//   - a line is "user:password"; the user ends at the first ':', the
//     password at the first '\r', '\n' or NUL byte;
//   - a line without ':' in its first 255 bytes (an empty line among them,
//     or a NUL byte before the ':') is an error;
//   - a NUL byte in a password, a last line without a newline, or a line
//     longer than 255 bytes ends the file after that entry;
//   - entries after the eighth are ignored.
//
// The result is never nil, so that an empty file still requires clients
// to authenticate (and none can).
func parseAuthFile(data []byte) ([]authEntry, error) {
	entries := make([]authEntry, 0, authMaxEntries)
	for len(data) > 0 && len(entries) < authMaxEntries {
		n := min(len(data), authMaxLine)
		if i := bytes.IndexByte(data[:n], '\n'); i >= 0 {
			n = i + 1
		}
		line := data[:n]
		data = data[n:]
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || bytes.IndexByte(line[:colon], 0) >= 0 {
			return nil, ErrAuthFileMalformed
		}
		pass := line[colon+1:]
		last := true // the password ends at a NUL or at the end of what was read
		if i := bytes.IndexAny(pass, "\r\n\x00"); i >= 0 {
			last = pass[i] == 0
			pass = pass[:i]
		}
		entries = append(entries, authEntry{user: line[:colon], pass: pass})
		if last {
			break
		}
	}
	return entries, nil
}

// authenticate reports whether user and pass match an entry of the auth
// file. It compares in constant time for a given entry length.
func (s *Server) authenticate(user, pass []byte) bool {
	ok := false
	for _, e := range *s.authUsers.Load() {
		if len(e.user) == len(user) && len(e.pass) == len(pass) &&
			subtle.ConstantTimeCompare(e.user, user)&subtle.ConstantTimeCompare(e.pass, pass) == 1 {
			ok = true
		}
	}
	return ok
}

// ASCII authentication replies.
const (
	replyUnauthenticated   = "CLIENT_ERROR unauthenticated"
	replyAuthFailure       = "CLIENT_ERROR authentication failure"
	replyAuthBadToken      = "CLIENT_ERROR bad authentication token format"
	replyAuthBadTerminator = "CLIENT_ERROR bad command line termination"
)

// handleASCIIAuth handles a request of a connection that has not yet
// authenticated, with the return values of handleOne. As memcached, the
// only request it accepts is
//
//	set <key> <flags> <exptime> <bytes>\r\n
//	<user> <password>\r\n
//
// where only <bytes> is looked at; any other line is answered
// "CLIENT_ERROR unauthenticated" and the connection stays open.
//
// memcached 1.6.18 writes only the last of the replies to requests that
// arrive in one read; corvid answers each request.
func (c *conn) handleASCIIAuth(buf []byte) int {
	if len(buf) < 2 {
		return 2 // no request is this short: wait, as memcached does
	}
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > authMaxPending {
			return -1 // junk: memcached closes the connection
		}
		return len(buf) + 1
	}
	size, ok := parseAuthLine(buf[:nl])
	if !ok {
		c.r += nl + 1
		c.reply(replyUnauthenticated)
		return 0
	}
	// memcached adds the "\r\n" in 32 bits: a size of 2^32-2 or 2^32-1
	// wraps to a block too short to end in "\r\n".
	need := int(uint32(size + 2))
	if need > authMaxData {
		return -1
	}
	total := nl + 1 + need
	if len(buf) < total {
		return total
	}
	c.r += total
	data := buf[nl+1 : total]
	if need < 2 || data[need-2] != '\r' || data[need-1] != '\n' {
		c.reply(replyAuthBadTerminator)
		return 0
	}
	fields := authTokens(data[:need-2])
	if len(fields) < 2 {
		c.reply(replyAuthBadToken)
		return 0
	}
	c.stats.authCmds++
	if !c.srv.authenticate(fields[0], fields[1]) {
		c.stats.authErrors++
		c.reply(replyAuthFailure)
		return 0
	}
	c.authed = true
	c.reply("STORED")
	return 0
}

// parseAuthLine parses the command line (without its "\n") of an
// authentication request as memcached does: tokens separated by spaces,
// at least five, the first "set", the fifth a number for C's strtoul.
// It returns that number.
func parseAuthLine(line []byte) (uint32, bool) {
	var tok [5][]byte
	n := 0
	for f := range splitSpaces(cString(line)) {
		tok[n] = f
		if n++; n == len(tok) {
			break
		}
	}
	if n < len(tok) || string(tok[0]) != "set" {
		return 0, false
	}
	return parseStrtoul(tok[4])
}

// authTokens returns the first two space-separated tokens of an
// authentication data block, which ends at its first NUL byte.
func authTokens(data []byte) [][]byte {
	var out [][]byte
	for f := range splitSpaces(cString(data)) {
		if out = append(out, f); len(out) == 2 {
			break
		}
	}
	return out
}

// cString returns b up to its first NUL byte, as C's string functions
// see it.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// splitSpaces yields the non-empty runs of b between ' ' bytes (memcached
// splits command lines on spaces only).
func splitSpaces(b []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			i := bytes.IndexByte(b, ' ')
			if i < 0 {
				yield(b)
				return
			}
			if i > 0 && !yield(b[:i]) {
				return
			}
			b = b[i+1:]
		}
	}
}

// isCSpace reports whether b is a space for C's isspace.
func isCSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

// parseStrtoul parses tok as memcached's safe_strtoul does: C's strtoul in
// base 10 (leading spaces, a sign, 64-bit wrap-around for '-'), which must
// be followed by a space or the end of tok, must not overflow 64 bits, must
// not be a negative number below -2^63, and is then cut to 32 bits.
func parseStrtoul(tok []byte) (uint32, bool) {
	i := 0
	for i < len(tok) && isCSpace(tok[i]) {
		i++
	}
	neg := false
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start := i
	var v uint64
	overflow := false
	for ; i < len(tok) && tok[i] >= '0' && tok[i] <= '9'; i++ {
		d := uint64(tok[i] - '0')
		if v > (1<<64-1-d)/10 {
			overflow = true
		}
		v = v*10 + d
	}
	if i == start || overflow {
		return 0, false
	}
	if i < len(tok) && !isCSpace(tok[i]) {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return uint32(v), true
}

// ReloadAuth reads the auth file (Config.AuthFile) and the SASL password
// database (Config.SASLPasswordDB) again, as memcached reads its auth file
// again on SIGHUP; the corvid command calls it on SIGHUP. Connections
// already authenticated stay so. A file that cannot be loaded leaves the
// entries in use, and its error is returned.
func (s *Server) ReloadAuth() error {
	var errs []error
	if s.cfg.AuthFile != "" {
		if entries, err := loadAuthFile(s.cfg.AuthFile); err != nil {
			errs = append(errs, err)
		} else {
			s.authUsers.Store(&entries)
		}
	}
	if s.cfg.SASL && s.cfg.SASLPasswordDB != "" {
		if db, err := loadSASLPasswordDB(s.cfg.SASLPasswordDB); err != nil {
			errs = append(errs, err)
		} else {
			s.saslUsers.Store(&db)
		}
	}
	return errors.Join(errs...)
}

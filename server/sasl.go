package server

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"os"

	"github.com/corvidcache/corvid/protocol"
)

// saslMechs is the answer to SASL list-mechanisms: corvid implements PLAIN
// (RFC 4616) only. Mechanism names are matched without regard to case, as
// Cyrus SASL matches them.
const saslMechs = "PLAIN"

// maxSASLEntry bounds user plus password as memcached's password database
// does (its lines are read into 256 bytes, with room for ':' and the end).
const maxSASLEntry = 252

// SASL states of a connection (conn.sasl), as memcached's sasl_started.
const (
	saslIdle    = iota // no exchange started, or the last one failed
	saslPending        // PLAIN started without data: SASL step sends it
	saslDone           // an exchange completed; a further step fails
)

// saslPasswordDB is the password database SASL PLAIN checks.
type saslPasswordDB map[string]string

// loadSASLPasswordDB reads a file of "user:password" lines as memcached's
// own database does: the password ends at a ':' (further fields are
// ignored) or at the end of the line, and only the first line naming a
// user counts.
func loadSASLPasswordDB(path string) (saslPasswordDB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read SASL password database: %w", err)
	}
	db := make(saslPasswordDB)
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\r\n")
		user, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		pass, _, _ := bytes.Cut(rest, []byte(":"))
		if _, dup := db[string(user)]; !dup {
			db[string(user)] = string(pass)
		}
	}
	return db, nil
}

// checkPlain verifies a SASL PLAIN message: authorization identity, NUL,
// user, NUL, password. The authorization identity must be empty or the
// user itself (no proxy authorization).
func (db saslPasswordDB) checkPlain(msg []byte) bool {
	authz, rest, ok := bytes.Cut(msg, []byte{0})
	if !ok {
		return false
	}
	user, pass, ok := bytes.Cut(rest, []byte{0})
	if !ok || len(user) == 0 || bytes.IndexByte(pass, 0) >= 0 {
		return false
	}
	if len(authz) > 0 && !bytes.Equal(authz, user) {
		return false
	}
	if len(user)+len(pass) > maxSASLEntry {
		return false
	}
	want, found := db[string(user)]
	return found && subtle.ConstantTimeCompare([]byte(want), pass) == 1
}

// checkPlain checks a SASL PLAIN message against the password database;
// without one, every authentication fails.
func (s *Server) checkPlain(msg []byte) bool {
	db := s.saslUsers.Load()
	return db != nil && db.checkPlain(msg)
}

// binSASLAuth handles SASL auth (key: the mechanism, value: the client's
// data) and SASL step (value: the client's next data). As in memcached,
// the connection is unauthenticated from then on until one succeeds: a
// failed or unfinished authentication does not leave an earlier one in
// force.
func (c *conn) binSASLAuth(h *protocol.BinaryHeader, mech, data []byte) {
	c.authed = false
	ok := false
	switch {
	case h.Command == protocol.OpSASLAuth && bytes.EqualFold(mech, []byte(saslMechs)):
		if len(data) == 0 {
			// PLAIN is client-first: without data the server asks for it.
			c.sasl = saslPending
			c.wbuf = protocol.AppendBinaryResponse(c.wbuf, h.Opcode, protocol.StatusAuthContinue,
				0, 0, 0, h.Opaque, 0)
			return
		}
		ok = c.srv.checkPlain(data)
	case h.Command == protocol.OpSASLStep && c.sasl == saslPending:
		ok = c.srv.checkPlain(data)
	}
	c.stats.authCmds++
	if !ok {
		c.stats.authErrors++
		if h.Command == protocol.OpSASLAuth {
			c.sasl = saslIdle
		}
		c.binError(h, protocol.StatusAuthError)
		return
	}
	c.sasl = saslDone
	c.authed = true
	c.binOK(h, 0, nil, nil, []byte("Authenticated"))
}

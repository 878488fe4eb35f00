package server

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"os"
)

// loadAuthFile reads a file of "user:password" lines.
func loadAuthFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read auth file: %w", err)
	}
	users := make(map[string]string)
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			continue
		}
		user, pass, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("auth file %s: line without ':'", path)
		}
		users[string(user)] = string(pass)
	}
	return users, nil
}

// authenticate reports whether user and pass are in the auth file.
func (s *Server) authenticate(user, pass []byte) bool {
	want, ok := s.authUsers[string(user)]
	return ok && subtle.ConstantTimeCompare([]byte(want), pass) == 1
}

// handleASCIIAuth handles a request of a connection that has not yet
// authenticated, with the return values of handleOne.
func (c *conn) handleASCIIAuth(buf []byte) int {
	return -1 // not implemented yet: close the connection
}

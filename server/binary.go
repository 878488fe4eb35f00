package server

// handleBinary handles the first binary-protocol request in buf, with the
// return values of handleOne.
func (c *conn) handleBinary(buf []byte) int {
	return -1 // not implemented yet: close the connection
}

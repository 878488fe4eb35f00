package mctool

import "io"

// readChunk is how much readN allocates ahead of the bytes it has read.
const readChunk = 1 << 20

// readN reads exactly n bytes from r. It grows its buffer as the bytes
// arrive, so a length claimed by a file or a server costs memory only
// once the bytes are there. It returns how many bytes it read and, when
// fewer than n, io.ErrUnexpectedEOF or r's error.
func readN(r io.Reader, n int) ([]byte, int, error) {
	buf := make([]byte, 0, min(n, readChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(n-len(buf), max(len(buf), readChunk)))...)[:len(buf)]
		}
		m, err := io.ReadFull(r, buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, len(buf), err
		}
	}
	return buf, n, nil
}

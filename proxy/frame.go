package proxy

import (
	"bytes"
)

// replyKind says which replies a request may get, so that the framer can
// find the end of one reply and tell a backend's garbage from a reply.
type replyKind uint8

const (
	kindStore     replyKind = iota // STORED NOT_STORED EXISTS NOT_FOUND
	kindGet                        // VALUE blocks, then END
	kindDelete                     // DELETED NOT_FOUND
	kindArith                      // a number, NOT_FOUND
	kindTouch                      // TOUCHED NOT_FOUND
	kindFlush                      // OK
	kindMeta                       // HD EN NF NS EX, VA with data, ME
	kindMetaQuiet                  // replies of a quiet meta request, then MN
	kindBinary                     // one binary response, framed by its header
)

// Framing limits: a reply line longer than maxReplyLine, or a value longer
// than maxReplyValue, is garbage and closes the backend connection.
const (
	maxReplyLine  = 8 << 10
	maxReplyValue = 1 << 30
)

// frameReply returns the length of the first complete reply of kind k in
// buf: 0 when buf holds only part of one, and errGarbage when buf cannot
// start a reply of that kind. Replies are found, never rebuilt; the cost
// is linear in the reply's size (values are skipped, not scanned).
func frameReply(buf []byte, k replyKind) (int, error) {
	if k == kindBinary {
		return frameBinary(buf)
	}
	off := 0
	for {
		line, next, err := replyLine(buf[off:])
		if next == 0 {
			return 0, err
		}
		switch {
		case isErrorLine(line):
			if k == kindMetaQuiet {
				off += next
				continue // a quiet request's error is sent; MN follows
			}
			return off + next, nil
		case k == kindGet && bytes.HasPrefix(line, []byte("VALUE ")):
			n, ok := valueLen(line, 3)
			if !ok {
				return 0, errGarbage
			}
			end := off + next + n + 2
			if len(buf) < end {
				return 0, nil
			}
			if buf[end-2] != '\r' || buf[end-1] != '\n' {
				return 0, errGarbage
			}
			off = end
			continue
		case k == kindGet:
			if string(line) == "END" {
				return off + next, nil
			}
			return 0, errGarbage
		case k == kindMeta || k == kindMetaQuiet:
			if bytes.HasPrefix(line, []byte("VA ")) {
				n, ok := valueLen(line, 1)
				if !ok {
					return 0, errGarbage
				}
				end := off + next + n + 2
				if len(buf) < end {
					return 0, nil
				}
				if buf[end-2] != '\r' || buf[end-1] != '\n' {
					return 0, errGarbage
				}
				if k == kindMeta {
					return end, nil
				}
				off = end
				continue
			}
			if !isMetaStatus(line) {
				return 0, errGarbage
			}
			if k == kindMeta {
				return off + next, nil
			}
			off += next
			if string(line) == "MN" {
				return off, nil
			}
			continue
		}
		if !simpleReplyOK(line, k) {
			return 0, errGarbage
		}
		return off + next, nil
	}
}

// replyLine returns the first line of buf without its "\r\n" and the
// length with it; next is 0 when the line is incomplete, with errGarbage
// when it is too long or does not end in "\r\n".
func replyLine(buf []byte) (line []byte, next int, err error) {
	i := bytes.IndexByte(buf[:min(len(buf), maxReplyLine)], '\n')
	if i < 0 {
		if len(buf) >= maxReplyLine {
			return nil, 0, errGarbage
		}
		return nil, 0, nil
	}
	if i == 0 || buf[i-1] != '\r' {
		return nil, 0, errGarbage
	}
	return buf[:i-1], i + 1, nil
}

// isErrorLine reports whether line is one of memcached's error replies,
// which any request may get.
func isErrorLine(line []byte) bool {
	return string(line) == "ERROR" || bytes.HasPrefix(line, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR"))
}

// isMetaStatus reports whether line is a one-line meta reply.
func isMetaStatus(line []byte) bool {
	if len(line) < 2 {
		return false
	}
	if len(line) > 2 && line[2] != ' ' {
		return false
	}
	switch string(line[:2]) {
	case "HD", "EN", "NF", "NS", "EX", "MN", "ME":
		return true
	}
	return false
}

// simpleReplyOK reports whether line is a one-line reply a request of
// kind k may get.
func simpleReplyOK(line []byte, k replyKind) bool {
	switch string(line) {
	case "NOT_FOUND":
		return k == kindStore || k == kindDelete || k == kindArith || k == kindTouch
	case "STORED", "NOT_STORED", "EXISTS":
		return k == kindStore
	case "DELETED":
		return k == kindDelete
	case "TOUCHED":
		return k == kindTouch
	case "OK":
		return k == kindFlush
	}
	if k != kindArith || len(line) == 0 || len(line) > 20 {
		return false
	}
	for _, c := range line {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// valueLen reads the data length from the token at index i (after the
// first) of a VALUE or VA line: "VALUE <key> <flags> <bytes> [<cas>]" has
// it at 3, "VA <bytes> <flags>*" at 1.
func valueLen(line []byte, i int) (int, bool) {
	var tok []byte
	for range i + 1 {
		j := bytes.IndexByte(line, ' ')
		if j < 0 {
			tok, line = line, nil
		} else {
			tok, line = line[:j], line[j+1:]
		}
	}
	if len(tok) == 0 || len(tok) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxReplyValue
}

package mctool

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The binary protocol's framing, used for keys no meta command can name:
// binary keys of 187 to 250 bytes, whose base64 is longer than the 250
// bytes a meta command takes.
const (
	binHeader   = 24
	binRequest  = 0x80
	binResponse = 0x81
	binGet      = 0x00
	binSet      = 0x01
	binNotFound = 0x0001
)

// binConn returns a second connection to c's server for binary requests
// (a connection speaks the protocol of its first byte), dialed on first
// use and closed with c.
func (c *Conn) binConn() (*Conn, error) {
	if c.bin == nil {
		b, err := Dial(c.ctx, c.addr, c.timeout)
		if err != nil {
			return nil, err
		}
		c.bin = b
	}
	return c.bin, nil
}

// appendBinary appends a binary request.
func appendBinary(dst []byte, op byte, extras []byte, key string, value []byte) []byte {
	var h [binHeader]byte
	h[0], h[1] = binRequest, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(value)))
	dst = append(dst, h[:]...)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// binReply reads one binary response: its status, extras and value (the
// body after extras and key).
func (c *Conn) binReply(what string) (status uint16, extras, value []byte, err error) {
	if err := c.arm(); err != nil {
		return 0, nil, nil, err
	}
	var h [binHeader]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return 0, nil, nil, c.fail(err)
	}
	keyLen, extLen := int(binary.BigEndian.Uint16(h[2:])), int(h[4])
	body := int64(binary.BigEndian.Uint32(h[8:]))
	if h[0] != binResponse || int64(keyLen+extLen) > body || body > MaxValue+binHeader+maxKey {
		return 0, nil, nil, c.garbage(what, h[:])
	}
	if err := c.arm(); err != nil {
		return 0, nil, nil, err
	}
	b, _, err := readN(c.r, int(body))
	if err != nil {
		return 0, nil, nil, c.fail(err)
	}
	return binary.BigEndian.Uint16(h[6:]), b[:extLen], b[extLen+keyLen:], nil
}

// binaryGet reads key's flags and value with a binary get; false when
// the key is not there.
func (c *Conn) binaryGet(key string) (Record, bool, error) {
	const what = "binary get"
	b, err := c.binConn()
	if err != nil {
		return Record{}, false, err
	}
	if err := b.sendBytes(appendBinary(nil, binGet, nil, key, nil)); err != nil {
		return Record{}, false, err
	}
	status, extras, value, err := b.binReply(what)
	switch {
	case err != nil:
		return Record{}, false, err
	case status == binNotFound:
		return Record{}, false, nil
	case status != 0:
		return Record{}, false, b.refused(what, fmt.Appendf(nil, "status %#x %s", status, value))
	case len(extras) != 4:
		return Record{}, false, b.garbage(what, extras)
	}
	return Record{Key: key, Flags: binary.BigEndian.Uint32(extras), Value: value}, true, nil
}

// binarySet stores a record with a binary set and exptime ttl (as memcached
// takes it: relative seconds, or an absolute time past 30 days). It
// returns the server's refusal ("" when stored).
func (c *Conn) binarySet(r Record, ttl int64) (refusal string, err error) {
	b, err := c.binConn()
	if err != nil {
		return "", err
	}
	var extras [8]byte
	binary.BigEndian.PutUint32(extras[:], r.Flags)
	binary.BigEndian.PutUint32(extras[4:], uint32(ttl))
	if err := b.sendBytes(appendBinary(nil, binSet, extras[:], r.Key, r.Value)); err != nil {
		return "", err
	}
	status, _, msg, err := b.binReply("binary set")
	if err != nil || status == 0 {
		return "", err
	}
	return fmt.Sprintf("binary set: status %#x %s", status, msg), nil
}

package testutil

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// BinaryRequest is a binary-protocol request for tests. Bytes encodes it
// with the lengths of its parts unless KeyLen, ExtLen or BodyLen override
// them (to send malformed headers).
type BinaryRequest struct {
	Magic    byte // default 0x80
	Opcode   byte
	DataType byte
	Reserved uint16 // the vbucket id field, which memcached ignores
	Opaque   uint32
	CAS      uint64
	Extras   []byte
	Key      []byte
	Value    []byte

	KeyLen, ExtLen *int
	BodyLen        *uint32
}

// Bytes returns the request as sent on the wire.
func (r BinaryRequest) Bytes() []byte {
	magic := r.Magic
	if magic == 0 {
		magic = 0x80
	}
	keyLen, extLen := len(r.Key), len(r.Extras)
	bodyLen := uint32(len(r.Extras) + len(r.Key) + len(r.Value))
	if r.KeyLen != nil {
		keyLen = *r.KeyLen
	}
	if r.ExtLen != nil {
		extLen = *r.ExtLen
	}
	if r.BodyLen != nil {
		bodyLen = *r.BodyLen
	}
	b := []byte{magic, r.Opcode}
	b = binary.BigEndian.AppendUint16(b, uint16(keyLen))
	b = append(b, byte(extLen), r.DataType)
	b = binary.BigEndian.AppendUint16(b, r.Reserved)
	b = binary.BigEndian.AppendUint32(b, bodyLen)
	b = binary.BigEndian.AppendUint32(b, r.Opaque)
	b = binary.BigEndian.AppendUint64(b, r.CAS)
	b = append(b, r.Extras...)
	b = append(b, r.Key...)
	return append(b, r.Value...)
}

// BinaryResponse is a binary-protocol response as read by ReadBinary.
type BinaryResponse struct {
	Header [24]byte
	Body   []byte
}

// Opcode returns the response's opcode.
func (r *BinaryResponse) Opcode() byte { return r.Header[1] }

// Status returns the response's status.
func (r *BinaryResponse) Status() uint16 { return binary.BigEndian.Uint16(r.Header[6:]) }

// KeyLen returns the key length the header gives.
func (r *BinaryResponse) KeyLen() int { return int(binary.BigEndian.Uint16(r.Header[2:])) }

// ExtLen returns the extras length the header gives.
func (r *BinaryResponse) ExtLen() int { return int(r.Header[4]) }

// Opaque returns the opaque value echoed from the request.
func (r *BinaryResponse) Opaque() uint32 { return binary.BigEndian.Uint32(r.Header[12:]) }

// CAS returns the header's CAS.
func (r *BinaryResponse) CAS() uint64 { return binary.BigEndian.Uint64(r.Header[16:]) }

// Extras returns the extras at the start of the body.
func (r *BinaryResponse) Extras() []byte { return r.Body[:r.ExtLen()] }

// Key returns the key, after the extras.
func (r *BinaryResponse) Key() []byte { return r.Body[r.ExtLen() : r.ExtLen()+r.KeyLen()] }

// Value returns the body after extras and key.
func (r *BinaryResponse) Value() []byte { return r.Body[r.ExtLen()+r.KeyLen():] }

// String formats the header in hex and the body quoted, for failures.
func (r *BinaryResponse) String() string { return fmt.Sprintf("% x %q", r.Header, r.Body) }

// ReadBinary reads one binary response within Timeout. It returns io.EOF
// when the server closed the connection before a response began.
func (c *Conn) ReadBinary() (*BinaryResponse, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.Timeout))
	var r BinaryResponse
	if _, err := io.ReadFull(c.r, r.Header[:]); err != nil {
		return nil, err
	}
	if r.Header[0] != 0x81 {
		return nil, fmt.Errorf("response magic 0x%02x in % x", r.Header[0], r.Header)
	}
	n := binary.BigEndian.Uint32(r.Header[8:])
	if n > maxValue || int(n) < r.KeyLen()+r.ExtLen() {
		return nil, fmt.Errorf("response body length %d in % x", n, r.Header)
	}
	r.Body = make([]byte, n)
	if _, err := io.ReadFull(c.r, r.Body); err != nil {
		return nil, err
	}
	return &r, nil
}

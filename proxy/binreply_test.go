package proxy

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/protocol"
)

// binaryDupServer answers binary get with a hit whose value is the key
// and set with success, echoing each request's opcode and opaque, but
// answers every set twice: an extra reply, for a request the proxy
// sent earlier than the one it awaits.
func binaryDupServer(t *testing.T) string {
	return testutil.FakeServer(t, func(nc net.Conn) {
		var h [protocol.BinaryHeaderLen]byte
		for {
			if _, err := io.ReadFull(nc, h[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(h[8:]))
			if _, err := io.ReadFull(nc, body); err != nil {
				return
			}
			op, opaque := protocol.Opcode(h[1]), binary.BigEndian.Uint32(h[12:])
			keyLen, extLen := int(binary.BigEndian.Uint16(h[2:])), int(h[4])
			key := body[extLen : extLen+keyLen]
			var out []byte
			switch op {
			case protocol.OpGet:
				out = protocol.AppendBinaryResponse(out, op, protocol.StatusOK, 4, 0, 4+len(key), opaque, 1)
				out = append(append(out, 0, 0, 0, 0), key...)
			case protocol.OpSet:
				r := protocol.AppendBinaryResponse(nil, op, protocol.StatusOK, 0, 0, 0, opaque, 1)
				out = append(r, r...)
			default:
				out = protocol.AppendBinaryError(out, op, protocol.StatusUnknownCommand, opaque)
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	})
}

// TestBinaryExtraReplyDisconnects: a server that sends a reply more
// than the requests it got (a set answered twice) puts its replies out
// of step with the requests; the reply that is not of the request
// awaiting one (its opcode, its opaque) must break the connection and
// fail what it holds, not fail that request alone and hand the next one
// the reply of the request before: a get must never get another key's
// value.
func TestBinaryExtraReplyDisconnects(t *testing.T) {
	_, addr := proxyFor(t, []string{binaryDupServer(t)})
	c := testutil.Dial(t, addr)
	defer c.Close()
	keys := []string{"k1", "k2", "k3", "k4", "k5"}
	ops := []byte{bGet, bSet, bGet, bGet, bGet}
	var req []byte
	for i, k := range keys {
		r := testutil.BinaryRequest{Opcode: ops[i], Key: []byte(k), Opaque: uint32(i + 1)}
		if ops[i] == bSet {
			r.Extras, r.Value = make([]byte, 8), []byte("v")
		}
		req = append(req, r.Bytes()...)
	}
	c.Send(req)
	for i, k := range keys {
		r, err := c.ReadBinary()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if r.Opaque() != uint32(i+1) || r.Opcode() != ops[i] {
			t.Fatalf("reply %v to request %d", r, i+1)
		}
		if ops[i] == bGet && r.Status() == 0 && string(r.Value()) != k {
			t.Errorf("get %s answered %q", k, r.Value())
		}
	}
}

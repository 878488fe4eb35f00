package protocol

import (
	"encoding/binary"
	"testing"
)

// header builds a request header with the given fields.
func header(magic byte, op Opcode, keyLen, extLen int, bodyLen uint32) []byte {
	b := []byte{magic, byte(op)}
	b = binary.BigEndian.AppendUint16(b, uint16(keyLen))
	b = append(b, byte(extLen), 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, bodyLen)
	b = binary.BigEndian.AppendUint32(b, 0xcafe)
	return binary.BigEndian.AppendUint64(b, 7)
}

func TestParseBinaryHeader(t *testing.T) {
	b := header(BinaryRequestMagic, OpGetKQ, 0x0102, 3, 0xfffffffe)
	var h BinaryHeader
	if ParseBinaryHeader(b[:BinaryHeaderLen-1], &h) {
		t.Fatal("parsed a header of 23 bytes")
	}
	if !ParseBinaryHeader(b, &h) {
		t.Fatal("did not parse a whole header")
	}
	want := BinaryHeader{Opcode: OpGetKQ, Command: OpGetK, Quiet: true, KeyLen: 0x0102, ExtLen: 3,
		BodyLen: 0xfffffffe, Opaque: 0xcafe, CAS: 7, Magic: BinaryRequestMagic}
	if h != want {
		t.Errorf("got %+v\nwant %+v", h, want)
	}
	for op, plain := range map[Opcode]Opcode{OpGetQ: OpGet, OpSetQ: OpSet, OpQuitQ: OpQuit,
		OpGATKQ: OpGATK, OpIncrQ: OpIncrement, OpGet: OpGet, OpStat: OpStat, 0xff: 0xff} {
		ParseBinaryHeader(header(BinaryRequestMagic, op, 0, 0, 0), &h)
		if h.Command != plain || h.Quiet != (op != plain) {
			t.Errorf("opcode 0x%02x: command 0x%02x quiet %v, want 0x%02x", op, h.Command, h.Quiet, plain)
		}
	}
}

func TestBinaryCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		magic    byte
		op       Opcode
		key, ext int
		body     uint32
		verdict  Verdict
		status   Status
	}{
		{"get", 0x80, OpGet, 3, 0, 3, Accept, StatusOK},
		{"bad magic", 0x81, OpGet, 3, 0, 3, Close, 0},
		{"key over body", 0x80, OpGet, 3, 0, 2, RespondClose, StatusUnknownCommand},
		{"key and extras over body", 0x80, OpSet, 3, 8, 10, RespondClose, StatusUnknownCommand},
		{"key 2^16-1 extras 255 body 2^32-1", 0x80, OpSet, 0xffff, 0xff, 0xffffffff, RespondClose, StatusInvalidArgs},
		{"key 251", 0x80, OpGet, 251, 0, 251, RespondClose, StatusInvalidArgs},
		{"key 250", 0x80, OpGet, 250, 0, 250, Accept, StatusOK},
		{"get without key", 0x80, OpGet, 0, 0, 0, RespondClose, StatusInvalidArgs},
		{"get with value", 0x80, OpGet, 1, 0, 2, RespondClose, StatusInvalidArgs},
		{"get with extras", 0x80, OpGetQ, 1, 4, 5, RespondClose, StatusInvalidArgs},
		{"set", 0x80, OpSetQ, 1, 8, 100, Accept, StatusOK},
		{"set without extras", 0x80, OpSet, 1, 0, 100, RespondClose, StatusInvalidArgs},
		{"set body 2^31-3", 0x80, OpSet, 1, 8, 1<<31 - 3, Accept, StatusOK},
		{"set body 2^31-2", 0x80, OpSet, 1, 8, 1<<31 - 2, RespondClose, StatusTooLarge},
		{"set body 2^32-1", 0x80, OpSet, 1, 8, 0xffffffff, RespondClose, StatusTooLarge},
		{"append body 2^32-1", 0x80, OpAppend, 1, 0, 0xffffffff, RespondClose, StatusTooLarge},
		{"append with extras", 0x80, OpAppend, 1, 8, 10, RespondClose, StatusInvalidArgs},
		{"sasl auth body 2^32-1", 0x80, OpSASLAuth, 5, 0, 0xffffffff, RespondClose, StatusTooLarge},
		{"sasl auth without mechanism", 0x80, OpSASLAuth, 0, 0, 4, RespondClose, StatusInvalidArgs},
		{"incr", 0x80, OpIncrement, 1, 20, 21, Accept, StatusOK},
		{"incr short extras", 0x80, OpDecrQ, 1, 16, 17, RespondClose, StatusInvalidArgs},
		{"flush", 0x80, OpFlush, 0, 0, 0, Accept, StatusOK},
		{"flush delay", 0x80, OpFlushQ, 0, 4, 4, Accept, StatusOK},
		{"flush short delay", 0x80, OpFlush, 0, 2, 2, RespondClose, StatusInvalidArgs},
		{"noop with body", 0x80, OpNoop, 0, 0, 1, RespondClose, StatusInvalidArgs},
		{"stat with body", 0x80, OpStat, 0, 0, 0xffffffff, Accept, StatusOK},
		{"touch", 0x80, OpTouch, 1, 4, 5, Accept, StatusOK},
		{"gat without extras", 0x80, OpGAT, 1, 0, 1, RespondClose, StatusInvalidArgs},
		{"verbosity", 0x80, OpVerbosity, 0, 4, 4, RespondSwallow, StatusUnknownCommand},
		{"unknown opcode", 0x80, 0x50, 2, 0, 10, RespondSwallow, StatusUnknownCommand},
		{"unknown opcode body 2^32-1", 0x80, 0x50, 0, 0, 0xffffffff, RespondClose, StatusUnknownCommand},
	} {
		var h BinaryHeader
		ParseBinaryHeader(header(tc.magic, tc.op, tc.key, tc.ext, tc.body), &h)
		if v, s := h.Check(); v != tc.verdict || s != tc.status {
			t.Errorf("%s: Check = %d, 0x%02x; want %d, 0x%02x", tc.name, v, s, tc.verdict, tc.status)
		}
	}
}

func TestAppendBinaryResponses(t *testing.T) {
	got := AppendBinaryError(nil, OpGetQ, StatusKeyNotFound, 0xdeadbeef)
	want := "\x81\x09\x00\x00\x00\x00\x00\x01\x00\x00\x00\x09\xde\xad\xbe\xef\x00\x00\x00\x00\x00\x00\x00\x00Not found"
	if string(got) != want {
		t.Errorf("AppendBinaryError = %q, want %q", got, want)
	}
	got = AppendBinaryStat(nil, "pid", "42", 1)
	want = "\x81\x10\x00\x03\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00pid42"
	if string(got) != want {
		t.Errorf("AppendBinaryStat = %q, want %q", got, want)
	}
}

// FuzzBinaryHeader checks that any 24 bytes parse, that Check's verdicts
// hold what they promise, and that a header fed in two parts parses only
// when whole.
func FuzzBinaryHeader(f *testing.F) {
	for _, b := range [][]byte{
		header(BinaryRequestMagic, OpGet, 3, 0, 3),
		header(BinaryRequestMagic, OpSet, 1, 8, 0xffffffff),
		header(BinaryRequestMagic, OpAppendQ, 1, 0, 0xffffffff),
		header(BinaryRequestMagic, OpSASLAuth, 5, 0, 0xffffffff),
		header(BinaryRequestMagic, OpIncrement, 0xffff, 0xff, 0x100fe),
		header(BinaryRequestMagic, 0x50, 0, 0, 10),
		header(0x81, OpNoop, 0, 0, 0),
	} {
		f.Add(b, uint8(len(b)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, at uint8) {
		cut := min(int(at), len(b))
		var h BinaryHeader
		if ParseBinaryHeader(b[:cut], &h) != (cut >= BinaryHeaderLen) {
			t.Fatalf("ParseBinaryHeader of %d bytes = %v", cut, !(cut >= BinaryHeaderLen))
		}
		if !ParseBinaryHeader(b, &h) {
			if len(b) >= BinaryHeaderLen {
				t.Fatalf("did not parse %d bytes", len(b))
			}
			return
		}
		v, s := h.Check()
		switch v {
		case Accept:
			if h.Magic != BinaryRequestMagic || h.KeyLen > MaxKeyLen ||
				int64(h.KeyLen+h.ExtLen) > h.BodyLen || s != StatusOK {
				t.Fatalf("accepted %+v", h)
			}
			if h.HasValue() && (h.BodyLen > MaxBinaryBody || h.ValueLen() < 0) {
				t.Fatalf("accepted value length %d", h.ValueLen())
			}
			if !h.HasValue() && h.Command != OpStat && h.Command != OpTouch &&
				h.Command != OpGAT && h.Command != OpGATK && h.ValueLen() != 0 {
				t.Fatalf("accepted a value for opcode 0x%02x", h.Opcode)
			}
		case RespondSwallow:
			if h.BodyLen > MaxBinaryBody || s != StatusUnknownCommand {
				t.Fatalf("swallow %+v", h)
			}
		case RespondClose:
			if s.Message() == "" {
				t.Fatalf("close with status 0x%02x", s)
			}
		case Close:
			if h.Magic == BinaryRequestMagic {
				t.Fatalf("closed without reply %+v", h)
			}
		}
		r := AppendBinaryResponse(nil, h.Opcode, s, h.ExtLen, h.KeyLen, int(h.BodyLen), h.Opaque, h.CAS)
		var back BinaryHeader
		ParseBinaryHeader(r, &back)
		if back.Opcode != h.Opcode || back.KeyLen != h.KeyLen || back.ExtLen != h.ExtLen ||
			back.BodyLen != h.BodyLen || back.Opaque != h.Opaque || back.CAS != h.CAS ||
			Status(binary.BigEndian.Uint16(r[6:])) != s || r[0] != BinaryResponseMagic {
			t.Fatalf("response header % x does not round-trip %+v", r, h)
		}
	})
}

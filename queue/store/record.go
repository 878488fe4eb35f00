package store

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"time"
)

// A journal is a sequence of records, each framed as
//
//	length  uint32 LE  bytes of payload
//	crc     uint32 LE  CRC-32C of the length field and the payload
//	payload            op byte, then the op's fields (little endian)
//
// The ops act on the queue as replay rebuilds it: add appends an item at
// the tail; remove drops the head; open moves the head into transaction
// xid; confirm ends transaction xid; abort puts its item back at the head;
// flush drops every queued item (open transactions stay).
const (
	opAdd     byte = 1 // flags u32, added i64 ns, expiry i64 ns (0: none), data
	opRemove  byte = 2
	opOpen    byte = 3 // xid u64
	opConfirm byte = 4 // xid u64
	opAbort   byte = 5 // xid u64
	opFlush   byte = 6
)

const (
	headerSize = 8
	addFixed   = 1 + 4 + 8 + 8
	// maxPayload bounds a record's length field, so a corrupt length is
	// found without reading or allocating it.
	maxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded journal record. item.Data aliases the buffer it was
// decoded from.
type record struct {
	op   byte
	xid  uint64
	item Item
}

// beginRecord starts a record in dst (reset to empty) with room for the
// header; finishRecord fills the header in.
func beginRecord(dst []byte, op byte) []byte {
	dst = append(dst[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	return append(dst, op)
}

func finishRecord(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(b)-headerSize))
	crc := crc32.Update(0, castagnoli, b[0:4])
	crc = crc32.Update(crc, castagnoli, b[headerSize:])
	binary.LittleEndian.PutUint32(b[4:8], crc)
	return b
}

func appendAdd(dst []byte, it *Item) []byte {
	b := beginRecord(dst, opAdd)
	b = binary.LittleEndian.AppendUint32(b, it.Flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(it.Added)))
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(it.Expiry)))
	b = append(b, it.Data...)
	return finishRecord(b)
}

func appendOp(dst []byte, op byte) []byte {
	return finishRecord(beginRecord(dst, op))
}

func appendXid(dst []byte, op byte, xid uint64) []byte {
	b := beginRecord(dst, op)
	b = binary.LittleEndian.AppendUint64(b, xid)
	return finishRecord(b)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// checkHeader validates a record header against the bytes left in the file
// and returns the payload length.
func checkHeader(h []byte, left int64) (int, error) {
	n := binary.LittleEndian.Uint32(h[0:4])
	if n == 0 || n > maxPayload || int64(n) > left-headerSize {
		return 0, errCorrupt
	}
	return int(n), nil
}

// decodeRecord checks the payload against the header's checksum and
// decodes it.
func decodeRecord(h, p []byte) (record, error) {
	crc := crc32.Update(0, castagnoli, h[0:4])
	crc = crc32.Update(crc, castagnoli, p)
	if crc != binary.LittleEndian.Uint32(h[4:8]) {
		return record{}, errCorrupt
	}
	r := record{op: p[0]}
	switch r.op {
	case opAdd:
		if len(p) < addFixed {
			return record{}, errCorrupt
		}
		r.item.Flags = binary.LittleEndian.Uint32(p[1:5])
		r.item.Added = fromUnixNano(int64(binary.LittleEndian.Uint64(p[5:13])))
		r.item.Expiry = fromUnixNano(int64(binary.LittleEndian.Uint64(p[13:21])))
		r.item.Data = p[addFixed:]
	case opRemove, opFlush:
		if len(p) != 1 {
			return record{}, errCorrupt
		}
	case opOpen, opConfirm, opAbort:
		if len(p) != 9 {
			return record{}, errCorrupt
		}
		r.xid = binary.LittleEndian.Uint64(p[1:9])
	default:
		return record{}, errCorrupt
	}
	return r, nil
}

// readRecordAt reads the record at off of a file of size bytes into buf
// (grown as needed) and returns it, the buffer and the record's length.
func readRecordAt(r io.ReaderAt, off, size int64, buf []byte) (record, []byte, int64, error) {
	if size-off < headerSize {
		return record{}, buf, 0, errCorrupt
	}
	if cap(buf) < headerSize {
		buf = make([]byte, 4096)
	}
	h := buf[:headerSize]
	if _, err := r.ReadAt(h, off); err != nil {
		return record{}, buf, 0, err
	}
	n, err := checkHeader(h, size-off)
	if err != nil {
		return record{}, buf, 0, err
	}
	if cap(buf) < headerSize+n {
		nb := make([]byte, headerSize+n)
		copy(nb, h)
		buf = nb
	}
	p := buf[headerSize : headerSize+n]
	if _, err := r.ReadAt(p, off+headerSize); err != nil {
		return record{}, buf, 0, err
	}
	rec, err := decodeRecord(buf[:headerSize], p)
	return rec, buf, int64(headerSize + n), err
}

package mctool

import (
	"bytes"
	"strconv"
)

// Record is one item: what a dump file holds and a load stores.
type Record struct {
	Key   string
	Flags uint32
	Exp   int64 // absolute Unix time, 0: never
	Value []byte
}

// WalkStats counts what a Walk saw.
type WalkStats struct {
	Keys       int // keys metadump listed
	Records    int // records passed on
	Gone       int // keys deleted or expired before their value was read
	Unsendable int // keys the text protocol cannot name (spaces, control bytes)
}

// MaxValue bounds a value's size, as memcached's largest item size (-I)
// does.
const MaxValue = 1 << 30

// fetchBatch is how many mg requests a Walk pipelines.
const fetchBatch = 100

// Walk lists the server's keys with lru_crawler metadump (up to limit;
// 0: all), calls keys with their number, then reads their values with
// pipelined meta gets and calls fn for each item still there, in metadump
// order. A record's Exp is metadump's (its -1 becomes 0). keys may be nil.
func (c *Conn) Walk(limit int, keys func(n int), fn func(Record) error) (WalkStats, error) {
	var st WalkStats
	var infos []KeyInfo
	err := c.Metadump(limit, func(k KeyInfo) error {
		k.Line = ""
		infos = append(infos, k)
		return nil
	})
	if err != nil {
		return st, err
	}
	if limit > 0 && len(infos) == limit {
		// The rest of the metadump is still coming: read values on
		// a fresh connection.
		fresh, err := Dial(c.ctx, c.addr, c.timeout)
		if err != nil {
			return st, err
		}
		defer fresh.Close()
		c = fresh
	}
	st.Keys = len(infos)
	if keys != nil {
		keys(len(infos))
	}
	batch := make([]KeyInfo, 0, fetchBatch)
	for i := 0; i < len(infos); {
		batch = batch[:0]
		for ; i < len(infos) && len(batch) < fetchBatch; i++ {
			if !textKey(infos[i].Key) {
				st.Unsendable++
				continue
			}
			batch = append(batch, infos[i])
		}
		if len(batch) == 0 {
			continue
		}
		var req []byte
		for _, k := range batch {
			req = append(req, "mg "...)
			req = append(req, k.Key...)
			req = append(req, " f v\r\n"...)
		}
		if err := c.send(string(req)); err != nil {
			return st, err
		}
		for _, k := range batch {
			rec, ok, err := c.metaValue()
			if err != nil {
				return st, err
			}
			if !ok {
				st.Gone++
				continue
			}
			rec.Key = k.Key
			if k.Exp > 0 {
				rec.Exp = k.Exp
			}
			st.Records++
			if err := fn(rec); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// metaValue reads the reply to "mg <key> f v": a value, or false on EN.
func (c *Conn) metaValue() (Record, bool, error) {
	const what = "mg"
	line, err := c.line()
	if err != nil {
		return Record{}, false, err
	}
	if string(line) == "EN" {
		return Record{}, false, nil
	}
	if !bytes.HasPrefix(line, []byte("VA ")) {
		if isErrorLine(line) {
			return Record{}, false, c.refused(what, line)
		}
		return Record{}, false, c.garbage(what, line)
	}
	fields := bytes.Fields(line[3:])
	if len(fields) == 0 {
		return Record{}, false, c.garbage(what, line)
	}
	n, err := strconv.Atoi(string(fields[0]))
	if err != nil || n < 0 || n > MaxValue {
		return Record{}, false, c.garbage(what, line)
	}
	var rec Record
	for _, f := range fields[1:] {
		if f[0] == 'f' {
			v, err := strconv.ParseUint(string(f[1:]), 10, 32)
			if err != nil {
				return Record{}, false, c.garbage(what, line)
			}
			rec.Flags = uint32(v)
		}
	}
	if rec.Value, err = c.data(n); err != nil {
		return Record{}, false, err
	}
	return rec, true, nil
}

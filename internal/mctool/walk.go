package mctool

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
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
	Unsendable int // keys no command can name (empty, over 250 bytes)
}

// MaxValue bounds a value's size, as memcached's largest item size (-I)
// does.
const MaxValue = 1 << 30

// maxTTL bounds the remaining TTL a server may report (100 years).
const maxTTL = 100 * 365 * 24 * 3600

// expSlack is how far apart an item's expiry from metadump and from its
// remaining TTL may be and still be taken as the same: the server's clock
// and its TTLs move a second at a time.
const expSlack = 2

// fetchBatch is how many mg requests a Walk pipelines, and so how many
// keys it holds at a time.
const fetchBatch = 100

// Walk lists the server's keys with lru_crawler metadump (up to limit;
// 0: all) on a connection of its own and, as they arrive, reads their
// values on c with pipelined meta gets, a batch at a time, calling fn for
// each item still there, in metadump order. It holds one batch of keys
// at most, whatever the number of items. A key the text protocol cannot
// carry (spaces, control bytes) is sent in base64 ("mg <base64> b f t v"),
// or, when too long for that (binary keys over 186 bytes), read with a
// binary get on a connection of its own, with metadump's expiry.
// A record's flags and Exp are those the item has when its value is read,
// not metadump's: an item stored again or touched in between keeps its
// new expiry (its remaining TTL as an absolute time, 0: never); an item
// whose expiry did not change keeps metadump's (memcached-tool's) Exp.
// memcached's crawler can list an item twice, when its LRU maintainer moves
// it from one list to another during the walk; Walk passes it on twice (a
// load stores it twice, harmlessly) rather than hold every key to drop
// repeats. c stays usable after a Walk with a limit.
func (c *Conn) Walk(limit int, fn func(Record) error) (WalkStats, error) {
	var st WalkStats
	md, err := Dial(c.ctx, c.addr, c.timeout)
	if err != nil {
		return st, err
	}
	defer md.Close()
	batch := make([]KeyInfo, 0, fetchBatch)
	var req []byte
	fetch := func() error {
		if len(batch) == 0 {
			return nil
		}
		req = req[:0]
		for _, k := range batch {
			req = append(req, "mg "...)
			var b64 bool
			req, b64, _ = appendMetaKey(req, k.Key)
			if b64 {
				req = append(req, " b"...)
			}
			req = append(req, " f t v\r\n"...)
		}
		if err := c.sendBytes(req); err != nil {
			return err
		}
		for _, k := range batch {
			rec, ok, err := c.metaValue()
			if err != nil {
				return err
			}
			if !ok {
				st.Gone++
				continue
			}
			rec.Key = k.Key
			if k.Exp > 0 && rec.Exp > 0 && max(rec.Exp-k.Exp, k.Exp-rec.Exp) <= expSlack {
				rec.Exp = k.Exp // unchanged: as memcached-tool prints it
			}
			st.Records++
			if err := fn(rec); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err = md.Metadump(limit, func(k KeyInfo) error {
		st.Keys++
		if _, _, ok := appendMetaKey(nil, k.Key); !ok {
			if k.Key == "" || len(k.Key) > maxKey {
				st.Unsendable++
				return nil
			}
			// A binary key too long for base64: a binary get,
			// after the keys before it. Its expiry is metadump's.
			if err := fetch(); err != nil {
				return err
			}
			rec, ok, err := c.binaryGet(k.Key)
			if err != nil {
				return err
			}
			if !ok {
				st.Gone++
				return nil
			}
			rec.Exp = max(k.Exp, 0)
			st.Records++
			return fn(rec)
		}
		k.Line = ""
		if batch = append(batch, k); len(batch) == fetchBatch {
			return fetch()
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, fetch()
}

// ItemCount returns the server's curr_items: how many items a Walk can
// expect, give or take those stored, deleted or expired meanwhile.
func (c *Conn) ItemCount() (int64, error) {
	st, err := c.Stats("")
	if err != nil {
		return 0, err
	}
	v, ok := StatMap(st)["curr_items"]
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, &Error{Addr: c.addr, Detail: fmt.Sprintf("not a memcached server: stats has curr_items %q", v), Err: ErrNotMemcached}
	}
	return n, nil
}

// metaValue reads the reply to "mg <key> f t v": a value, or false on EN.
// The remaining TTL (t, -1: none) becomes an absolute Exp.
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
		if f[0] == 't' {
			ttl, err := strconv.ParseInt(string(f[1:]), 10, 64)
			if err != nil || ttl < -1 || ttl > maxTTL {
				return Record{}, false, c.garbage(what, line)
			}
			if ttl >= 0 {
				rec.Exp = time.Now().Unix() + ttl
			}
		}
	}
	if rec.Value, err = c.data(n); err != nil {
		return Record{}, false, err
	}
	return rec, true, nil
}

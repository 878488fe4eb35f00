package mctool

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeyInfo is one line of "lru_crawler metadump".
type KeyInfo struct {
	Key   string `json:"key"`   // decoded
	Line  string `json:"-"`     // the line as the server sent it
	Exp   int64  `json:"exp"`   // absolute Unix time, -1: never
	LA    int64  `json:"la"`    // last access, Unix time
	CAS   uint64 `json:"cas"`   // CAS unique
	Fetch bool   `json:"fetch"` // fetched since stored
	Class int    `json:"cls"`   // slab class
	Size  int64  `json:"size"`  // bytes the item takes
}

// Metadump sends "lru_crawler metadump all" and calls fn for each key
// line, in the server's order, until END, fn's error, or limit keys
// (0: no limit). After a limit was reached the Conn is left mid-reply and
// must be closed.
//
// The Conn's timeout bounds the wait for each batch of 100 lines (or the
// END), counting only the time spent waiting for the server, not in fn:
// a server that trickles lines, each just within the timeout, is cut off
// as one that sends nothing is, while a real crawler sends thousands of
// lines a second.
//
// memcached answers BUSY while its crawler runs (a crawl of its own, or
// the metadump before this one still finishing): Metadump asks again,
// every busyRetry, until the timeout has passed since the first BUSY.
// A metadump that lists nothing from a server whose stats count items is
// asked again too, up to emptyTries times.
func (c *Conn) Metadump(limit int, fn func(KeyInfo) error) error {
	for try := 1; ; try++ {
		n := 0
		err := c.metadumpUnbusy(limit, func(k KeyInfo) error {
			n++
			return fn(k)
		})
		if err != nil || n > 0 || try == emptyTries {
			return err
		}
		// memcached's crawler now and then answers a metadump that
		// starts just after another ended with END alone (about one in
		// twenty): a server that holds items is asked again.
		if items, err := c.ItemCount(); err != nil || items == 0 {
			return err
		}
		if err := c.pause(busyRetry); err != nil {
			return err
		}
	}
}

// emptyTries is how many times Metadump asks a server that holds items
// but lists none.
const emptyTries = 5

// pause waits d, or until the Conn's context ends.
func (c *Conn) pause(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return stopped(c.ctx, c.addr)
	}
}

// metadumpUnbusy is metadump, asked again while the crawler is busy, for
// up to the Conn's timeout.
func (c *Conn) metadumpUnbusy(limit int, fn func(KeyInfo) error) error {
	var busySince time.Time
	for {
		err := c.metadump(limit, fn)
		var busy *busyError
		if !errors.As(err, &busy) {
			return err
		}
		if busySince.IsZero() {
			busySince = time.Now()
		} else if time.Since(busySince) >= c.timeout {
			return c.refused(metadumpReq, []byte(busy.line))
		}
		if err := c.pause(busyRetry); err != nil {
			return err
		}
	}
}

const metadumpReq = "lru_crawler metadump all"

// busyRetry is how long Metadump waits before asking a busy crawler again.
const busyRetry = 50 * time.Millisecond

// busyError is the crawler's BUSY answer to a metadump.
type busyError struct{ line string }

func (e *busyError) Error() string { return e.line }

// metadump is one "lru_crawler metadump all" (see Metadump); a BUSY
// answer is a *busyError.
func (c *Conn) metadump(limit int, fn func(KeyInfo) error) error {
	const req = metadumpReq
	if err := c.send(req + "\r\n"); err != nil {
		return err
	}
	defer func() { c.replyBy = time.Time{} }()
	var waited time.Duration // for the lines of this batch
	for n := 0; limit <= 0 || n < limit; n++ {
		if n%fetchBatch == 0 {
			waited = 0
		}
		start := time.Now()
		c.replyBy = start.Add(c.timeout - waited)
		line, err := c.line()
		waited += time.Since(start)
		if err != nil {
			if n%fetchBatch != 0 && errors.Is(err, ErrTimeout) {
				return &Error{Addr: c.addr, Detail: fmt.Sprintf("lru_crawler metadump sent fewer than %d keys in %v (too slow, or not a memcached server)", fetchBatch, c.timeout), Err: ErrTimeout}
			}
			return err
		}
		switch {
		case string(line) == "END":
			return nil
		case bytes.HasPrefix(line, []byte("key=")):
			k, ok := parseMetadump(string(line))
			if !ok {
				return c.garbage(req, line)
			}
			if err := fn(k); err != nil {
				return err
			}
		case n == 0 && bytes.HasPrefix(line, []byte("BUSY")):
			return &busyError{line: string(line)}
		case n == 0 && isErrorLine(line):
			return c.refused(req, line)
		default:
			return c.garbage(req, line)
		}
	}
	return nil
}

// parseMetadump parses "key=... exp=... la=... cas=... fetch=... cls=...
// size=..."; fields it does not know are skipped.
func parseMetadump(line string) (KeyInfo, bool) {
	k := KeyInfo{Line: line}
	haveKey := false
	for _, f := range strings.Fields(line) {
		name, v, ok := strings.Cut(f, "=")
		if !ok {
			return k, false
		}
		var err error
		switch name {
		case "key":
			k.Key, ok = URLDecode(v)
			if !ok {
				return k, false
			}
			haveKey = true
		case "exp":
			k.Exp, err = strconv.ParseInt(v, 10, 64)
		case "la":
			k.LA, err = strconv.ParseInt(v, 10, 64)
		case "cas":
			k.CAS, err = strconv.ParseUint(v, 10, 64)
		case "fetch":
			k.Fetch = v == "yes"
		case "cls":
			k.Class, err = strconv.Atoi(v)
		case "size":
			k.Size, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return k, false
		}
	}
	return k, haveKey
}

// URLEncode encodes a key as lru_crawler metadump does: ASCII letters,
// digits and "-._~" stay, every other byte becomes %XX.
func URLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// URLDecode undoes URLEncode; ok is false for a bad %XX.
func URLDecode(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), true
}

// TextKey reports whether key can be sent as it is in a text or meta
// command: 1 to 250 bytes, none of them a space, a control byte or DEL.
func TextKey(key string) bool {
	if key == "" || len(key) > maxKey {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// maxKey is the longest key, and the longest key token a meta command
// takes (memcached checks a base64 key's length before decoding it).
const maxKey = 250

// appendMetaKey appends key as a meta command names it: as it is when
// the text protocol can carry it, else in base64 (spaces, control bytes:
// keys stored with the binary protocol or a base64 meta set), and then
// b64 is true: the command needs the b flag. ok is false for a key no
// meta command can name: empty, longer than 250 bytes, or longer than 250
// in base64 (binary keys of more than 187 bytes).
func appendMetaKey(dst []byte, key string) (_ []byte, b64, ok bool) {
	if TextKey(key) {
		return append(dst, key...), false, true
	}
	if key == "" || base64.StdEncoding.EncodedLen(len(key)) > maxKey {
		return dst, false, false
	}
	return base64.StdEncoding.AppendEncode(dst, []byte(key)), true, true
}

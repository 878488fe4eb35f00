package server

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// lruCommand answers memcached's "lru tune|mode|temp_ttl" with its replies.
func (c *conn) lruCommand(req *protocol.Request) {
	args := req.Args
	cache := c.srv.cache
	sub := ""
	if len(args) > 0 {
		sub = string(args[0])
	}
	maintainer := cache.LRUSettings().Maintainer
	switch {
	case sub == "tune" && len(args) >= 5:
		hot, ok1 := protocol.ParseUint32(args[1])
		warm, ok2 := protocol.ParseUint32(args[2])
		hotF, ok3 := parseCDouble(args[3])
		warmF, ok4 := parseCDouble(args[4])
		if !ok1 || !ok2 || !ok3 || !ok4 {
			c.replyOK(req, "ERROR")
			return
		}
		switch {
		case uint64(hot)+uint64(warm) > 80:
			c.replyOK(req, "ERROR hot and warm pcts must not exceed 80")
		case !(hotF > 0) || !(warmF > 0):
			c.replyOK(req, "ERROR hot/warm age factors must be greater than 0")
		case cache.TuneLRU(hot, warm, hotF, warmF) != nil:
			c.replyOK(req, "ERROR")
		default:
			c.replyOK(req, "OK")
		}
	case sub == "mode" && len(args) >= 2 && maintainer:
		var err error
		switch string(args[1]) {
		case "flat":
			err = cache.SetLRUSegmented(false)
		case "segmented":
			err = cache.SetLRUSegmented(true)
		default:
			err = errors.New("unknown mode")
		}
		if err != nil {
			c.replyOK(req, "ERROR")
			return
		}
		c.replyOK(req, "OK")
	case sub == "temp_ttl" && len(args) >= 2 && maintainer:
		ttl, ok := protocol.ParseInt32(args[1])
		if !ok || cache.SetTemporaryTTL(ttl) != nil {
			c.replyOK(req, "ERROR")
			return
		}
		c.replyOK(req, "OK")
	default:
		c.replyOK(req, "ERROR")
	}
}

// parseCDouble reads a number as memcached's safe_strtod (C's strtod):
// decimal or exponent notation, inf and nan; out-of-range values fail.
func parseCDouble(tok []byte) (float64, bool) {
	v, err := strconv.ParseFloat(string(tok), 64)
	return v, err == nil
}

// lruCrawlerCommand answers memcached's lru_crawler subcommands with its
// replies.
func (c *conn) lruCrawlerCommand(req *protocol.Request) {
	args := req.Args
	cache := c.srv.cache
	sub := ""
	if len(args) > 0 {
		sub = string(args[0])
	}
	switch {
	case len(args) == 2 && sub == "crawl":
		if !cache.CrawlerSettings().Enabled {
			c.reply("CLIENT_ERROR lru crawler disabled")
			return
		}
		ids, all, ok := parseClassList(args[1], true)
		switch {
		case !ok:
			c.reply("BADCLASS invalid class id")
			return
		case !all && ids == nil:
			// memcached accepts "hash" only for metadump, and fails
			// without saying why.
			c.reply("ERROR an unknown error happened")
			return
		case all:
			ids = nil
		}
		if c.srv.dumping.Load() {
			// memcached's crawler is busy with the metadump.
			c.reply("BUSY currently processing crawler request")
			return
		}
		switch err := cache.Crawl(ids); {
		case err == nil:
			c.reply("OK")
		case errors.Is(err, storage.ErrBadClass):
			c.reply("BADCLASS invalid class id")
		case errors.Is(err, storage.ErrCrawlerDisabled):
			c.reply("CLIENT_ERROR lru crawler disabled")
		default:
			c.reply("BUSY currently processing crawler request")
		}
	case len(args) == 2 && sub == "metadump":
		c.metadump(args[1])
	case len(args) == 2 && sub == "tocrawl":
		n, ok := protocol.ParseUint32(args[1])
		if !ok {
			c.reply("CLIENT_ERROR bad command line format")
			return
		}
		cache.SetCrawlerToCrawl(n)
		c.reply("OK")
	case len(args) == 2 && sub == "sleep":
		us, ok := protocol.ParseUint32(args[1])
		switch {
		case !ok:
			c.reply("CLIENT_ERROR bad command line format")
		case us > 1000000:
			c.reply("CLIENT_ERROR sleep must be one second or less")
		default:
			cache.SetCrawlerSleep(time.Duration(us) * time.Microsecond)
			c.reply("OK")
		}
	case len(args) == 1 && sub == "enable":
		if !cache.EnableCrawler() {
			c.reply("ERROR failed to start lru crawler thread")
			return
		}
		c.reply("OK")
	case len(args) == 1 && sub == "disable":
		cache.DisableCrawler()
		c.reply("OK")
	default:
		c.reply("ERROR")
	}
}

// parseClassList reads memcached's class list argument: "all", "hash"
// (when hash is allowed), or class ids separated by commas, each in
// 1..MaxClassID. Empty elements are skipped, as strtok does.
func parseClassList(arg []byte, hash bool) (ids []int, all, ok bool) {
	switch string(arg) {
	case "all":
		return nil, true, true
	case "hash":
		if hash {
			return nil, false, true
		}
	}
	ids = []int{}
	for _, tok := range bytes.Split(arg, []byte(",")) {
		if len(tok) == 0 {
			continue
		}
		id, ok := protocol.ParseUint32(tok)
		if !ok || id < 1 || id > storage.MaxClassID {
			return nil, false, false
		}
		ids = append(ids, int(id))
	}
	return ids, false, true
}

// metadump answers "lru_crawler metadump <classes|all|hash>": one line per
// live item, "key=<url-encoded key> exp=<unix|-1> la=<unix> cas=<n>
// fetch=<yes|no> cls=<id> size=<bytes>", each ending in "\n" alone, then
// "END\r\n", as memcached writes them. On an event loop the dump is left
// to the loop, which hands the connection to a goroutine of its own for
// it (as memcached hands the socket to its crawler thread), so that the
// loop's other connections are not held up while it streams.
func (c *conn) metadump(arg []byte) {
	if c.isUDP() {
		c.metadumpUDP(arg)
		return
	}
	cache := c.srv.cache
	switch {
	case !cache.CrawlerSettings().Enabled:
		c.reply("CLIENT_ERROR lru crawler disabled")
		return
	case c.srv.cfg.DisableDumping:
		c.reply("ERROR metadump not allowed")
		return
	case len(c.wbuf) > 0:
		// memcached hands the socket to its crawler, which cannot
		// follow replies still waiting to be written.
		c.reply("ERROR cannot pipeline other commands before metadump")
		return
	}
	ids, all, ok := parseClassList(arg, true)
	if !ok {
		c.reply("BADCLASS invalid class id")
		return
	}
	if cache.CrawlerBusy() || !c.srv.dumping.CompareAndSwap(false, true) {
		c.reply("BUSY currently processing crawler request")
		return
	}
	c.dump = &dumpRequest{ids: ids, all: all}
	if c.onLoop {
		return
	}
	c.dumpItems()
}

// dumpRequest is a metadump waiting for its connection to leave its event
// loop: the classes to dump, all of them, or (neither) in hash order.
type dumpRequest struct {
	ids []int
	all bool
}

// dumpItems writes the lines of the metadump c.dump and its END, then
// ends the dump. Lines are streamed: the write buffer is flushed, with
// blocking writes, as it fills. A stopping server lets the dump go on, as
// any request it has read, until its shutdown grace closes the connection;
// a dump cut short never ends with END, so that the client does not take
// it for whole.
func (c *conn) dumpItems() {
	defer c.endDump()
	d := c.dump
	cache := c.srv.cache
	emit := func(it *storage.DumpItem) bool {
		c.reserve(len(it.Key)*3 + 128)
		c.wbuf = appendMetadumpLine(c.wbuf, it)
		if len(c.wbuf) > flushSize && c.flush() != nil {
			c.closeAfterWrite = true
			return false
		}
		return true
	}
	switch {
	case d.all:
		cache.Dump(nil, emit)
	case d.ids == nil:
		cache.DumpHash(emit)
	default:
		cache.Dump(d.ids, emit)
	}
	if !c.closeAfterWrite {
		c.wbuf = append(c.wbuf, "END\r\n"...)
	}
}

// endDump drops the connection's metadump, written or not, so that
// another may run.
func (c *conn) endDump() {
	if c.dump != nil {
		c.dump = nil
		c.srv.dumping.Store(false)
	}
}

// appendMetadumpLine appends one metadump line for it.
func appendMetadumpLine(dst []byte, it *storage.DumpItem) []byte {
	dst = append(dst, "key="...)
	dst = appendURIEncoded(dst, it.Key)
	dst = append(dst, " exp="...)
	if it.Exptime == 0 {
		dst = append(dst, "-1"...)
	} else {
		dst = strconv.AppendInt(dst, it.Exptime, 10)
	}
	dst = append(dst, " la="...)
	dst = strconv.AppendInt(dst, it.LastAccess, 10)
	dst = append(dst, " cas="...)
	dst = strconv.AppendUint(dst, it.CAS, 10)
	if it.Fetched {
		dst = append(dst, " fetch=yes"...)
	} else {
		dst = append(dst, " fetch=no"...)
	}
	dst = append(dst, " cls="...)
	dst = strconv.AppendInt(dst, int64(it.Class), 10)
	dst = append(dst, " size="...)
	dst = strconv.AppendInt(dst, int64(it.Size), 10)
	return append(dst, '\n')
}

// appendURIEncoded appends key as memcached's uriencode writes keys in
// dumps and logs: the unreserved characters of RFC 3986 (letters, digits,
// "-", ".", "_", "~") as they are, every other byte as %XX.
func appendURIEncoded(dst, key []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, b := range key {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '-', b == '.', b == '_', b == '~':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}

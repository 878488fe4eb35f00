package server

import (
	"errors"
	"strconv"

	"github.com/corvidcache/corvid/protocol"
	"github.com/corvidcache/corvid/storage"
)

// reassignReplies are memcached's answers to "slabs reassign".
var reassignReplies = []struct {
	err  error
	line string
}{
	{nil, "OK"},
	{storage.ErrBusy, "BUSY currently processing reassign request"},
	{storage.ErrBadClass, "BADCLASS invalid src or dst class id"},
	{storage.ErrNoSpare, "NOSPARE source class has no spare pages"},
	{storage.ErrSameClass, "SAME src and dst class are identical"},
	{storage.ErrReassignDisabled, "CLIENT_ERROR slab reassignment disabled"},
}

// slabsCommand is memcached's "slabs reassign <src> <dst>" and "slabs
// automove <0|1|2>" (or "slabs automove ratio <r>"), with memcached's
// token counts: reassign takes exactly its two numbers (so no noreply),
// automove honours a final noreply, and anything else is ERROR.
func (c *conn) slabsCommand(req *protocol.Request) {
	args := req.Args
	ntokens := len(args) + 2 // memcached counts the command and an empty last token
	switch {
	case ntokens == 5 && string(args[0]) == "reassign":
		if c.srv.cfg.Storage.NoSlabReassign {
			c.reply("CLIENT_ERROR slab reassignment disabled")
			return
		}
		src, ok1 := protocol.SafeStrtol(args[1])
		dst, ok2 := protocol.SafeStrtol(args[2])
		if !ok1 || !ok2 {
			c.reply("CLIENT_ERROR bad command line format")
			return
		}
		err := c.srv.cache.Reassign(int(src), int(dst))
		for _, r := range reassignReplies {
			if errors.Is(err, r.err) {
				c.reply(r.line)
				return
			}
		}
		c.reply("SERVER_ERROR " + err.Error())
	case ntokens >= 4 && string(args[0]) == "automove":
		noreply := string(args[len(args)-1]) == "noreply"
		reply := func(line string) {
			if !noreply {
				c.reply(line)
			}
		}
		if string(args[1]) == "ratio" {
			if ntokens < 5 {
				reply("ERROR")
				return
			}
			r, err := strconv.ParseFloat(string(args[2]), 64)
			if err != nil || c.srv.cache.SetAutomoveRatio(r) != nil {
				reply("ERROR")
				return
			}
			reply("OK")
			return
		}
		level, ok := protocol.SafeStrtoul(args[1])
		if !ok {
			reply("CLIENT_ERROR bad command line format")
			return
		}
		if c.srv.cache.SetAutomove(int(level)) != nil {
			reply("ERROR")
			return
		}
		reply("OK")
	default:
		c.reply("ERROR")
	}
}

// configCommand is twemcache's "config evict <policy>": the policy is
// twemcache's number (0 none, 1 item LRU, 2 random, 4 slab LRA, 8 slab
// LRC, or a sum of them) or, in corvid, its name (lru, random, lra, lrc,
// none). A wrong argument count or an unknown policy is twemcache's bare
// CLIENT_ERROR; other config subcommands are ERROR.
func (c *conn) configCommand(req *protocol.Request) {
	if len(req.Args) == 0 || string(req.Args[0]) != "evict" {
		c.reply("ERROR")
		return
	}
	if len(req.Args) != 2 {
		c.reply("CLIENT_ERROR")
		return
	}
	tok := req.Args[1]
	var e storage.Eviction
	if n, ok := protocol.SafeStrtol(tok); ok {
		if n < 0 || n > 15 {
			c.reply("CLIENT_ERROR")
			return
		}
		e = storage.Eviction(n)
	} else {
		var err error
		if e, err = storage.ParseEviction(string(tok)); err != nil {
			c.reply("CLIENT_ERROR")
			return
		}
	}
	if c.srv.cache.SetEviction(e) != nil {
		c.reply("CLIENT_ERROR")
		return
	}
	c.reply("OK")
}

package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
)

// MetaGetOptions are the meta-protocol flags of MetaGet (memcached 1.6's
// "mg"). The zero value asks for the value, flags, CAS and remaining TTL.
type MetaGetOptions struct {
	// TTL, when non-zero, updates the item's TTL (mg flag T).
	TTL int32
	// Vivify, when positive, creates an empty placeholder with this TTL on
	// a miss and gives this caller the right to fill it (N): concurrent
	// callers see Won false and wait or use what they have.
	Vivify int32
	// RecacheBelow, when positive, gives one caller the right to recache
	// the item once its remaining TTL drops below this many seconds (R).
	RecacheBelow int32
	// NoBump leaves the item's LRU position and access time alone (u).
	NoBump bool
}

// MetaItem is the result of MetaGet.
type MetaItem struct {
	Item
	// TTL is the remaining time to live in seconds, -1 for none.
	TTL int32
	// Won means this caller should recompute and store the value: it was
	// missing (with Vivify), stale, or close to expiry (RecacheBelow).
	Won bool
	// Stale means the item was invalidated (MetaDelete with Invalidate, or
	// MetaSet with Invalidate and an old CAS); its value is served until it
	// is recomputed.
	Stale bool
	// WinPending means another caller already won the right to recache.
	WinPending bool
}

// MetaSetOptions are the flags of MetaSet ("ms").
type MetaSetOptions struct {
	// CAS, when non-zero, stores only if the item's CAS still matches (C).
	CAS uint64
	// Invalidate with CAS stores the value even when the CAS is older,
	// marking the item stale (I).
	Invalidate bool
}

// MetaDeleteOptions are the flags of MetaDelete ("md").
type MetaDeleteOptions struct {
	// Invalidate marks the item stale instead of removing it (I), so
	// readers keep getting the old value while one of them recomputes it.
	Invalidate bool
	// TTL, with Invalidate, sets the stale item's TTL (T).
	TTL int32
}

// metaFlags holds the return flags of a meta reply.
type metaFlags struct {
	flags      uint32
	cas        uint64
	ttl        int32
	opaque     uint64
	key        []byte // the k flag's key, valid until the next read
	base64     bool   // the b flag: key is shown in base64
	won, stale bool
	winPending bool
	hasOpaque  bool
	hasKey     bool
}

// parseMetaFlags parses the flags after a meta status code.
func parseMetaFlags(b []byte) (metaFlags, error) {
	var f metaFlags
	for len(b) > 0 {
		var tok []byte
		tok, b = nextField(b)
		if len(tok) == 0 {
			continue
		}
		arg := tok[1:]
		switch tok[0] {
		case 'f':
			v, ok := parseUint(arg)
			if !ok || v > 1<<32-1 {
				return f, errors.New("bad flags " + string(tok))
			}
			f.flags = uint32(v)
		case 'c':
			v, ok := parseUint(arg)
			if !ok {
				return f, errors.New("bad cas " + string(tok))
			}
			f.cas = v
		case 't':
			if string(arg) == "-1" {
				f.ttl = -1
			} else if v, ok := parseUint(arg); ok {
				f.ttl = int32(v)
			}
		case 'O':
			v, ok := parseUint(arg)
			f.opaque, f.hasOpaque = v, ok
		case 'k':
			f.key, f.hasKey = arg, true
		case 'b':
			f.base64 = true
		case 'W':
			f.won = true
		case 'X':
			f.stale = true
		case 'Z':
			f.winPending = true
		}
	}
	if f.base64 && f.hasKey {
		// An item stored under a binary key shows it in base64 (memcached
		// does so whatever the request's flags): compare its bytes.
		k, err := base64.StdEncoding.AppendDecode(nil, f.key)
		if err != nil {
			return f, errors.New("bad base64 key " + string(f.key))
		}
		f.key = k
	}
	return f, nil
}

// metaReply reads one meta reply line and splits its status code off. An
// "ERROR" reply means the server does not speak the meta protocol; after
// another error line, after says whether the connection is in step.
func (cn *conn) metaReply(after pending) (code string, flags []byte, err error) {
	line, err := cn.readLine()
	if err != nil {
		return "", nil, err
	}
	body := bytes.TrimRight(line, "\r\n")
	if string(body) == "ERROR" {
		return "", nil, ErrNotSupported
	}
	if isErrorLine(line) {
		return "", nil, replyError(line, after)
	}
	c, rest := nextField(body)
	return string(c), rest, nil
}

// appendOpaque appends the O flag with the connection's next opaque, which
// tells the reply to this request from one to an earlier request on the
// connection (the same key's, repeated late), and returns it.
func (cn *conn) appendOpaque(w []byte) ([]byte, uint64) {
	cn.opaque++
	return strconv.AppendUint(append(w, " O"...), cn.opaque, 10), cn.opaque
}

// checkReply verifies that a meta reply carries the key and the opaque its
// request asked for (the k and O flags, which every request asks for): a
// reply without them, or with others, belongs to another request.
func checkReply(f *metaFlags, wire string, opaque uint64) error {
	if !f.hasKey {
		return &ProtocolError{Reason: "meta reply without the key asked for (" + strconv.Quote(wire) + ")"}
	}
	if string(f.key) != wire {
		return wrongKey(f.key, wire)
	}
	if !f.hasOpaque || f.opaque != opaque {
		return &ProtocolError{Reason: "meta reply for " + strconv.Quote(wire) + " to an earlier request (opaque " + strconv.FormatUint(f.opaque, 10) + ", not " + strconv.FormatUint(opaque, 10) + ")"}
	}
	return nil
}

// unexpectedMeta is the error for a meta status code the request does not
// expect.
func unexpectedMeta(code string, rest []byte) error {
	return &ProtocolError{Line: code + " " + string(rest), Reason: "unexpected meta reply"}
}

// MetaGet reads key with the meta protocol: besides the value it tells
// whether the item is stale and whether this caller won the right to
// recompute it, which is how a stale-while-revalidate cache avoids
// stampedes. A plain miss is ErrCacheMiss; a miss that Vivify turned into
// a win returns a MetaItem with Won set and no value.
func (c *Client) MetaGet(ctx context.Context, key string, opt MetaGetOptions) (*MetaItem, error) {
	wire, err := c.wireKey(key)
	if err != nil {
		return nil, err
	}
	s, err := c.readServer(key, wire)
	if err != nil {
		return nil, err
	}
	var mi *MetaItem
	err = c.do(ctx, s, "mg", func(cn *conn) error {
		w := append(append(cn.w[:0], "mg "...), wire...)
		w = append(w, " v f c t k"...)
		if opt.TTL != 0 {
			w = strconv.AppendInt(append(w, " T"...), int64(opt.TTL), 10)
		}
		if opt.Vivify > 0 {
			w = strconv.AppendInt(append(w, " N"...), int64(opt.Vivify), 10)
		}
		if opt.RecacheBelow > 0 {
			w = strconv.AppendInt(append(w, " R"...), int64(opt.RecacheBelow), 10)
		}
		// A win token the server may have handed out before closing the
		// connection is not asked for again.
		cn.once = opt.Vivify > 0 || opt.RecacheBelow > 0
		if opt.NoBump {
			w = append(w, " u"...)
		}
		w, opaque := cn.appendOpaque(w)
		cn.w = append(w, crlf...)
		if err := cn.flush(); err != nil {
			return err
		}
		code, rest, err := cn.metaReply(nothingPending)
		if err != nil {
			return err
		}
		line := rest
		var size uint64
		switch code {
		case "VA":
			var sz []byte
			sz, rest = nextField(rest)
			var ok bool
			if size, ok = parseUint(sz); !ok || size > 1<<30 {
				return unexpectedMeta(code, line)
			}
		case "EN":
		default:
			// HD included: it answers a request without v, such as
			// another request's ms or md for the same key.
			return unexpectedMeta(code, line)
		}
		f, err := parseMetaFlags(rest)
		if err != nil {
			return unexpectedMeta(code, line)
		}
		if err := checkReply(&f, wire, opaque); err != nil {
			return err
		}
		if code == "VA" {
			v, err := cn.readNewValue(int(size))
			if err != nil {
				return err
			}
			mi = &MetaItem{Item: Item{Key: key, Value: v}}
		} else if !f.won {
			return ErrCacheMiss
		} else {
			mi = &MetaItem{Item: Item{Key: key}}
		}
		mi.Flags, mi.CAS, mi.TTL = f.flags, f.cas, f.ttl
		mi.Won, mi.Stale, mi.WinPending = f.won, f.stale, f.winPending
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.decode(&mi.Item); err != nil {
		return nil, err
	}
	return mi, nil
}

// MetaSet stores it with the meta protocol ("ms"). With opt.CAS it stores
// only if the CAS matches (ErrCASConflict otherwise, ErrCacheMiss if the
// item is gone); with opt.Invalidate as well an older CAS still stores and
// marks the item stale. A CAS for a replicated key is refused with
// ErrReplicatedCAS.
func (c *Client) MetaSet(ctx context.Context, it *Item, opt MetaSetOptions) error {
	if opt.CAS != 0 && c.replicas(it.Key) > 1 {
		return ErrReplicatedCAS
	}
	value, flags, err := c.encode(it.Value, it.Flags, "set")
	if err != nil {
		return err
	}
	return c.onWriteServers(ctx, "ms", it.Key, func(_ int, cn *conn, wire string) error {
		w := append(append(cn.writeBuffer(len(wire)+len(value)+96), "ms "...), wire...)
		w = strconv.AppendInt(append(w, ' '), int64(len(value)), 10)
		w = strconv.AppendUint(append(w, " F"...), uint64(flags), 10)
		w = strconv.AppendInt(append(w, " T"...), int64(it.Expiration), 10)
		if opt.CAS != 0 {
			w = strconv.AppendUint(append(w, " C"...), opt.CAS, 10)
		}
		if opt.Invalidate {
			w = append(w, " I"...)
		}
		w, opaque := cn.appendOpaque(w)
		cn.w = append(append(append(append(w, " k"...), crlf...), value...), crlf...)
		return cn.metaExchange(wire, opaque, dataPending)
	})
}

// metaExchange sends the request for wire in cn.w, which asks for the key
// and opaque back, and maps the one-line meta reply to an error.
func (cn *conn) metaExchange(wire string, opaque uint64, after pending) error {
	if err := cn.flush(); err != nil {
		return err
	}
	code, rest, err := cn.metaReply(after)
	if err != nil {
		return err
	}
	var status error
	switch code {
	case "HD":
	case "NS":
		status = ErrNotStored
	case "EX":
		status = ErrCASConflict
	case "NF":
		status = ErrCacheMiss
	default:
		return unexpectedMeta(code, rest)
	}
	f, err := parseMetaFlags(rest)
	if err != nil {
		return unexpectedMeta(code, rest)
	}
	if err := checkReply(&f, wire, opaque); err != nil {
		return err
	}
	return status
}

// MetaDelete deletes key with the meta protocol ("md"), or with
// opt.Invalidate marks it stale so that MetaGet callers keep the old value
// while one of them (Won) recomputes it.
func (c *Client) MetaDelete(ctx context.Context, key string, opt MetaDeleteOptions) error {
	return c.onWriteServers(ctx, "md", key, func(_ int, cn *conn, wire string) error {
		w := append(append(cn.w[:0], "md "...), wire...)
		if opt.Invalidate {
			w = append(w, " I"...)
			if opt.TTL != 0 {
				w = strconv.AppendInt(append(w, " T"...), int64(opt.TTL), 10)
			}
		}
		w, opaque := cn.appendOpaque(w)
		cn.w = append(w, " k\r\n"...)
		return cn.metaExchange(wire, opaque, nothingPending)
	})
}

// MetaGetMulti is GetMulti over the meta protocol: per server, one
// pipelined write of quiet "mg" requests, each tagged with an opaque
// number, closed by "mn". Misses send nothing back, hits carry their
// opaque and key, which are checked. Each pipeline is written by a
// goroutine of the call while the replies are read, so that a batch of
// any size flows through a server that stops reading while its replies
// back up. As in GetMulti, each server's replies are given
// Config.Timeout from when the client starts reading them, and a server
// that fails leaves all its keys out of the map.
func (c *Client) MetaGetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	groups := make([][]int, len(c.servers)) // server index -> key indices
	var firstErr error
	for i, k := range keys {
		wire, err := c.wireKey(k)
		if err == nil {
			var s *node
			if s, err = c.readServer(k, wire); err == nil {
				groups[s.idx] = append(groups[s.idx], i)
				continue
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	type flight struct {
		cn    *conn
		stop  func() bool
		idx   []int
		base  uint64     // the opaque of the first request
		wrote chan error // the writer's result
	}
	// Connect to every server before writing any pipeline: a pipeline
	// whose replies nobody reads yet soon stops, and its server would be
	// late for the time another server takes to connect.
	var flights []flight
	for si, idx := range groups {
		if len(idx) == 0 {
			continue
		}
		cn, err := c.servers[si].getConn(ctx)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		flights = append(flights, flight{cn: cn, idx: idx})
	}
	for fi := range flights {
		fl := &flights[fi]
		cn, idx := fl.cn, fl.idx
		stop := cn.begin(ctx)
		w := cn.w[:0]
		fl.base = cn.opaque + 1 // the j-th request's opaque is base+j
		for _, ki := range idx {
			w = c.appendWireKey(append(w, "mg "...), keys[ki])
			w, _ = cn.appendOpaque(append(w, " v f c q k"...))
			w = append(w, crlf...)
		}
		cn.w = append(w, "mn\r\n"...)
		wrote := make(chan error, 1)
		go func() { wrote <- cn.flush() }()
		fl.stop, fl.wrote = stop, wrote
	}
	items := make([]Item, len(keys))
	for _, fl := range flights {
		fl.cn.rearm(ctx)
		err := func() error {
			next := uint64(0) // replies come in request order
			for {
				// An error line in the pipeline answers one request of
				// many: the others' replies are still to come.
				code, rest, err := fl.cn.metaReply(morePending)
				if err != nil {
					return err
				}
				line := rest
				var size uint64
				switch code {
				case "MN":
					if len(rest) != 0 {
						return unexpectedMeta(code, line)
					}
					return nil
				case "VA":
					var sz []byte
					var ok bool
					sz, rest = nextField(rest)
					if size, ok = parseUint(sz); !ok || size > 1<<30 {
						return unexpectedMeta(code, line)
					}
				case "EN", "HD":
				default:
					return unexpectedMeta(code, line)
				}
				f, err := parseMetaFlags(rest)
				// The opaque numbers the request within the pipeline;
				// one below it is an earlier pipeline's.
				j := f.opaque - fl.base
				if err != nil || !f.hasOpaque || f.opaque < fl.base || j < next || j >= uint64(len(fl.idx)) {
					return unexpectedMeta(code, line)
				}
				next = j + 1
				ki := fl.idx[j]
				if !f.hasKey || !c.wireKeyEqual(f.key, keys[ki]) {
					return &ProtocolError{Line: code + " " + string(line), Reason: "reply for another key than " + strconv.Quote(keys[ki])}
				}
				if code != "VA" {
					continue
				}
				v, err := fl.cn.readNewValue(int(size))
				if err != nil {
					return err
				}
				it := &items[ki]
				it.Key, it.Value, it.Flags, it.CAS = keys[ki], v, f.flags, f.cas
			}
		}()
		if err != nil {
			// The connection is out of step, and closing it stops the
			// writer if the server is not reading.
			fl.cn.nc.Close()
		}
		if werr := <-fl.wrote; err == nil {
			err = werr
		}
		if err := c.finish(ctx, fl.cn, fl.stop, "mg", err); err != nil {
			// As in GetMulti, a server that failed leaves all its keys
			// out: what it answered before may be another request's.
			for _, ki := range fl.idx {
				items[ki] = Item{}
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	// Values are uncompressed once the connections are back: a value that
	// does not uncompress is the caller's problem, not the server's.
	m := make(map[string]*Item, len(keys))
	for i := range items {
		if it := &items[i]; it.Key != "" {
			if err := c.decode(it); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			m[it.Key] = it
		}
	}
	return m, firstErr
}

// MetaNoop checks that the key's server speaks the meta protocol; it
// returns ErrNotSupported (wrapped) when the server answers "mn" with
// ERROR.
func (c *Client) MetaNoop(ctx context.Context, key string) error {
	wire, err := c.wireKey(key)
	if err != nil {
		return err
	}
	s, err := c.pick(wire)
	if err != nil {
		return err
	}
	return c.do(ctx, s, "mn", func(cn *conn) error {
		cn.w = append(cn.w[:0], "mn\r\n"...)
		if err := cn.flush(); err != nil {
			return err
		}
		code, rest, err := cn.metaReply(nothingPending)
		if err != nil {
			return err
		}
		if code != "MN" {
			return unexpectedMeta(code, rest)
		}
		return nil
	})
}

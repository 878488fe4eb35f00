package protocol

// Command identifies a text-protocol command.
type Command uint8

// Text-protocol commands, as memcached 1.6 names them.
const (
	CmdNone          Command = iota // the line named no command corvid knows
	CmdGet                          // get <key>* (also memcached's old alias bget)
	CmdGets                         // gets <key>*
	CmdGat                          // gat <exptime> <key>*
	CmdGats                         // gats <exptime> <key>*
	CmdSet                          // set <key> <flags> <exptime> <bytes> [noreply]
	CmdAdd                          // add ...
	CmdReplace                      // replace ...
	CmdAppend                       // append ...
	CmdPrepend                      // prepend ...
	CmdCas                          // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
	CmdDelete                       // delete <key> [0] [noreply]
	CmdIncr                         // incr <key> <value> [noreply]
	CmdDecr                         // decr <key> <value> [noreply]
	CmdTouch                        // touch <key> <exptime> [noreply]
	CmdFlushAll                     // flush_all [delay] [noreply]
	CmdVersion                      // version
	CmdVerbosity                    // verbosity <level> [noreply]
	CmdQuit                         // quit
	CmdShutdown                     // shutdown [graceful]; see Request.Args
	CmdCacheMemlimit                // cache_memlimit <megabytes> [noreply]
	CmdStats                        // stats [group [args...]]
	CmdLRU                          // lru <tune|mode|temp_ttl> <args...> [noreply]
	CmdLRUCrawler                   // lru_crawler <subcommand> [arg]
	CmdWatch                        // watch [event types...]
	CmdSlabs                        // slabs reassign <src> <dst> | slabs automove <0|1|2>; see Request.Args
	CmdConfig                       // config evict <policy> (twemcache); see Request.Args
	CmdRefreshCerts                 // refresh_certs [noreply] (memcached with TLS)
)

// MaxKeyLen is the longest key memcached accepts.
const MaxKeyLen = 250

// Request is one parsed text-protocol command. Byte slices point into the
// buffer given to Parse and are valid only until that buffer changes. A
// Request is reused across calls to Parse to avoid allocation; it is not
// safe for concurrent use.
//
// Numbers are read as memcached reads them (C's strtoul and strtol on a
// 64-bit system): 32-bit fields hold the low 32 bits of what the client
// sent, so flags 4294967296 is 0 and exptime 4294967297 is 1, exactly as
// memcached stores them.
type Request struct {
	// Command is set whenever the line names a known command, also when
	// Parse returns an error for the rest of the line.
	Command Command

	// Keys holds the single key of every keyed command other than the get
	// family, in Keys[0].
	Keys [][]byte

	// GetKeys is the part of a get, gets, gat or gats line that holds its
	// keys, separated by spaces; NextKey walks them. Parse checks them but
	// does not split them, so that a get line of any length costs nothing
	// beyond its own bytes, and a server can look its keys up as it goes.
	// When Parse returns ErrBadFormat for a get-family line because a key
	// is longer than MaxKeyLen, GetKeys holds the keys before it: memcached
	// has looked those up (counting them in its stats, and touching them
	// for gat/gats) but sends none of their values, only the error line.
	GetKeys []byte

	Flags   uint32 // client flags of a storage command
	Exptime int64  // exptime (storage, touch, gat, gats), a 32-bit value
	// ValueLen is the length of the data block that follows a storage
	// command's line, without its trailing "\r\n"; 0 to 2^31-3.
	ValueLen int
	CAS      uint64 // cas unique of a cas command
	Delta    uint64 // incr/decr amount
	Delay    int64  // flush_all delay (0 when absent), a 32-bit value
	Level    uint64 // verbosity level; cache_memlimit megabytes (32-bit values)

	// NoReply is set when the command asked for no reply, exactly where
	// memcached's set_noreply_maybe sets it: on a storage, delete, incr,
	// decr, touch, flush_all, verbosity or cache_memlimit line with an
	// acceptable number of tokens whose last token, not being the key, is
	// "noreply" ("verbosity noreply" sets it; "delete noreply" deletes the
	// key "noreply"). memcached then suppresses error replies too, so
	// NoReply is also meaningful when Parse returns an error; see
	// ErrorReply.
	NoReply bool

	// Args holds the tokens after the command name for stats, shutdown,
	// lru, lru_crawler, watch, slabs and config ("stats items" ->
	// ["items"]), at most 22 of them: memcached ignores the tokens after
	// the 23rd of a line. For lru, a last "noreply" sets NoReply and stays
	// in Args. The server interprets these arguments, as memcached does.
	//
	// Parse accepts shutdown with any Args; the server answers, in
	// memcached's order: "ERROR: shutdown not enabled" when shutdown is
	// disabled, then shuts down for no Args, shuts down gracefully for the
	// single argument "graceful", and otherwise answers
	// "CLIENT_ERROR invalid shutdown mode".
	Args [][]byte
}

// Key returns the first key of r, or nil.
func (r *Request) Key() []byte {
	if len(r.Keys) == 0 {
		return nil
	}
	return r.Keys[0]
}

// NextKey returns the first key of keys (a Request's GetKeys) at or after
// offset i, and the offset just past it; key is empty when none is left.
// The keys of a get line are walked as
//
//	for key, i := NextKey(req.GetKeys, 0); len(key) > 0; key, i = NextKey(req.GetKeys, i) {
func NextKey(keys []byte, i int) (key []byte, next int) { return nextToken(keys, i) }

// reset clears r for reuse, keeping the backing arrays of its slices.
func (r *Request) reset() {
	*r = Request{Keys: r.Keys[:0], Args: r.Args[:0]}
}

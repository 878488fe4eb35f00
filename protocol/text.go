package protocol

import (
	"bytes"
	"math"
)

// MaxLineLen is the longest command line, in bytes before its "\n",
// memcached reads without a newline before it closes the connection (get and
// gets lines may be longer, up to MaxGetLineLen).
const MaxLineLen = 2048

// MaxGetLineLen bounds a multi-get line so that a client cannot grow a
// connection's buffer without limit. memcached sets no bound.
const MaxGetLineLen = 1 << 20

const (
	// maxTokens is how many tokens memcached splits a command line into
	// (its MAX_TOKENS less the terminal token); it ignores the rest of the
	// line, except that get commands read all their keys.
	maxTokens = 23

	// maxLongLineSpaces is how many leading spaces memcached skips when it
	// looks for "get " or "gets " at the start of a long line.
	maxLongLineSpaces = 100

	// maxValueLen is the largest <bytes> memcached accepts (INT_MAX-2).
	maxValueLen = math.MaxInt32 - 2
)

// Parse parses the first command line in buf into req.
//
// It returns the number of bytes of the line including its "\n"; a storage
// command's data block is not consumed: the caller reads req.ValueLen+2 more
// bytes and checks they end in "\r\n". Parse returns 0, nil when buf holds no
// complete line yet, and 0, ErrLineTooLong when buf can never hold an
// acceptable line (the caller closes the connection). When it returns n > 0
// and an error, the line is consumed and the caller answers
// ErrorReply(err, req.NoReply); req.Command, req.NoReply and, for the get
// family, req.GetKeys are set as documented on Request, and other fields are
// unspecified.
//
// A line ends at "\n"; one "\r" before it is dropped, as is everything from
// a NUL byte on (memcached handles the line as a C string). Tokens are
// separated by spaces only: tabs and other control characters belong to the
// token, so they may appear in keys.
//
// A line with more than MaxLineLen bytes before its "\n" is refused with
// ErrLineTooLong, unless it starts with "get " or "gets " after at most 100
// spaces, in which case MaxGetLineLen applies. memcached refuses such a line
// only when its first MaxLineLen+1 bytes arrive before the newline; Parse
// refuses it however the bytes arrive, so that its answer never depends on
// how the input was split.
//
// Parse never allocates once req's slices have grown to the size the
// requests need. It is safe for concurrent use on different Requests.
func Parse(buf []byte, req *Request) (n int, err error) {
	req.reset()
	line, end, err := commandLine(buf)
	if end < 0 {
		return 0, err
	}
	return end + 1, parseLine(line, req)
}

// commandLine returns the first line of buf as memcached reads a command:
// without its "\r\n" (or "\n") and cut at a NUL byte; end is the index of
// its "\n", or -1 with lineEnd's error when the line is not complete.
func commandLine(buf []byte) (line []byte, end int, err error) {
	end, err = lineEnd(buf)
	if end < 0 {
		return nil, end, err
	}
	line = buf[:end]
	if end > 1 && line[end-1] == '\r' {
		line = line[:end-1]
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	return line, end, nil
}

// lineEnd returns the index of the "\n" that ends the first line of buf, or
// -1 and either nil (more input may complete it) or ErrLineTooLong.
func lineEnd(buf []byte) (int, error) {
	if i := bytes.IndexByte(buf[:min(len(buf), MaxLineLen+1)], '\n'); i >= 0 {
		return i, nil
	}
	if len(buf) <= MaxLineLen {
		return -1, nil
	}
	if !isGetLine(buf) {
		return -1, ErrLineTooLong
	}
	const from = MaxLineLen + 1
	if i := bytes.IndexByte(buf[from:min(len(buf), MaxGetLineLen+1)], '\n'); i >= 0 {
		return from + i, nil
	}
	if len(buf) <= MaxGetLineLen {
		return -1, nil
	}
	return -1, ErrLineTooLong
}

// isGetLine reports whether a long line may continue: memcached lets
// "get " and "gets " lines grow when at most 100 spaces precede them.
func isGetLine(buf []byte) bool {
	i := 0
	for i < len(buf) && buf[i] == ' ' {
		i++
	}
	if i > maxLongLineSpaces {
		return false
	}
	return bytes.HasPrefix(buf[i:], []byte("get ")) || bytes.HasPrefix(buf[i:], []byte("gets "))
}

// nextToken returns the first token of line at or after i and the index just
// past it; tok is empty when no token is left.
func nextToken(line []byte, i int) (tok []byte, next int) {
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i == len(line) {
		return nil, i
	}
	j := bytes.IndexByte(line[i:], ' ')
	if j < 0 {
		return line[i:], len(line)
	}
	return line[i : i+j], i + j
}

// parseLine parses one command line (without its end) into req, following
// memcached's process_command_ascii. ERROR answers an unknown command and a
// known one with the wrong number of tokens; in memcached's terms, the
// counts below are the argument counts after the command name, so its
// "ntokens" is len(args)+2.
func parseLine(line []byte, req *Request) error {
	name, i := nextToken(line, 0)
	if len(name) < 2 {
		return ErrUnknownCommand
	}
	switch string(name) {
	case "get", "bget":
		req.Command = CmdGet
		return parseGet(line, i, req, false)
	case "gets":
		req.Command = CmdGets
		return parseGet(line, i, req, false)
	case "gat":
		req.Command = CmdGat
		return parseGet(line, i, req, true)
	case "gats":
		req.Command = CmdGats
		return parseGet(line, i, req, true)
	}

	var buf [maxTokens - 1][]byte
	nargs := 0
	for nargs < len(buf) {
		tok, next := nextToken(line, i)
		if len(tok) == 0 {
			break
		}
		buf[nargs] = tok
		nargs++
		i = next
	}
	args := buf[:nargs]

	switch string(name) {
	case "set":
		return parseStorage(CmdSet, args, req)
	case "add":
		return parseStorage(CmdAdd, args, req)
	case "replace":
		return parseStorage(CmdReplace, args, req)
	case "append":
		return parseStorage(CmdAppend, args, req)
	case "prepend":
		return parseStorage(CmdPrepend, args, req)
	case "cas":
		return parseStorage(CmdCas, args, req)
	case "delete":
		return parseDelete(args, req)
	case "incr":
		return parseArith(CmdIncr, args, req)
	case "decr":
		return parseArith(CmdDecr, args, req)
	case "touch":
		return parseTouch(args, req)
	case "flush_all":
		return parseFlushAll(args, req)
	case "verbosity":
		return parseVerbosity(args, req)
	case "cache_memlimit":
		return parseMemlimit(args, req)
	case "version":
		req.Command = CmdVersion // memcached ignores any arguments
	case "quit":
		req.Command = CmdQuit // memcached ignores any arguments
	case "stats":
		req.Command = CmdStats
		req.Args = append(req.Args, args...)
	case "shutdown":
		req.Command = CmdShutdown
		req.Args = append(req.Args, args...)
	case "lru":
		req.Command = CmdLRU
		noreply(args, req)
		req.Args = append(req.Args, args...)
	case "lru_crawler":
		req.Command = CmdLRUCrawler
		req.Args = append(req.Args, args...)
	case "watch":
		req.Command = CmdWatch
		req.Args = append(req.Args, args...)
	case "slabs":
		req.Command = CmdSlabs
		req.Args = append(req.Args, args...)
	case "config":
		req.Command = CmdConfig
		req.Args = append(req.Args, args...)
	case "refresh_certs":
		req.Command = CmdRefreshCerts // memcached ignores other arguments
		noreply(args, req)
	default:
		return ErrUnknownCommand
	}
	return nil
}

// noreply reports whether args end in "noreply" (memcached's
// set_noreply_maybe), and records it in req.
func noreply(args [][]byte, req *Request) bool {
	req.NoReply = len(args) > 0 && string(args[len(args)-1]) == "noreply"
	return req.NoReply
}

// setKey records key as req's only key, or fails when it is too long.
func setKey(key []byte, req *Request) error {
	if len(key) > MaxKeyLen {
		return ErrBadFormat
	}
	req.Keys = append(req.Keys, key)
	return nil
}

// parseGet parses the rest of a get, gets, gat or gats line from index i:
// for gat and gats an exptime, then any number of keys. A get or gets needs
// at least one key, a gat or gats only its exptime. memcached stops at the
// first key that is too long and answers only the error.
func parseGet(line []byte, i int, req *Request, touch bool) error {
	tok, next := nextToken(line, i)
	if len(tok) == 0 {
		return ErrUnknownCommand
	}
	if touch {
		exptime, ok := parseInt32(tok)
		if !ok {
			return ErrInvalidExptime
		}
		req.Exptime = int64(exptime)
		tok, next = nextToken(line, next)
	}
	start := next - len(tok)
	keys := bytes.TrimRight(line[start:], " ")
	if bad := longToken(keys); bad >= 0 {
		req.GetKeys = keys[:bad]
		return ErrBadFormat
	}
	req.GetKeys = keys
	return nil
}

// longToken returns the index of the first token of keys longer than
// MaxKeyLen, or -1. It is one pass over the bytes, without a call per
// token: a get line may hold half a million keys.
func longToken(keys []byte) int {
	run := 0
	for i, b := range keys {
		if b != ' ' {
			run++
			if run > MaxKeyLen {
				return i + 1 - run
			}
			continue
		}
		run = 0
	}
	return -1
}

// parseStorage parses "<key> <flags> <exptime> <bytes> [noreply]" and, for
// cas, "<key> <flags> <exptime> <bytes> <cas unique> [noreply]".
func parseStorage(cmd Command, args [][]byte, req *Request) error {
	req.Command = cmd
	want := 4
	if cmd == CmdCas {
		want = 5
	}
	if len(args) != want && len(args) != want+1 {
		return ErrUnknownCommand
	}
	noreply(args, req)
	if err := setKey(args[0], req); err != nil {
		return err
	}
	flags, ok1 := parseUint32(args[1])
	exptime, ok2 := parseInt32(args[2])
	vlen, ok3 := parseInt32(args[3])
	if !ok1 || !ok2 || !ok3 {
		return ErrBadFormat
	}
	if cmd == CmdCas {
		cas, ok := parseUint64(args[4])
		if !ok {
			return ErrBadFormat
		}
		req.CAS = cas
	}
	if vlen < 0 || vlen > maxValueLen {
		return ErrBadFormat
	}
	req.Flags, req.Exptime, req.ValueLen = flags, int64(exptime), int(vlen)
	return nil
}

// parseDelete parses "<key> [0] [noreply]". memcached accepts a time
// argument only when it is exactly "0".
func parseDelete(args [][]byte, req *Request) error {
	req.Command = CmdDelete
	if len(args) < 1 || len(args) > 3 {
		return ErrUnknownCommand
	}
	if len(args) > 1 {
		zero := string(args[1]) == "0"
		nr := noreply(args, req)
		if !(len(args) == 2 && (zero || nr) || len(args) == 3 && zero && nr) {
			return ErrDeleteUsage
		}
	}
	return setKey(args[0], req)
}

// parseArith parses incr and decr: "<key> <delta> [noreply]".
func parseArith(cmd Command, args [][]byte, req *Request) error {
	req.Command = cmd
	if len(args) != 2 && len(args) != 3 {
		return ErrUnknownCommand
	}
	noreply(args, req)
	if err := setKey(args[0], req); err != nil {
		return err
	}
	delta, ok := parseUint64(args[1])
	if !ok {
		return ErrInvalidDelta
	}
	req.Delta = delta
	return nil
}

// parseTouch parses "<key> <exptime> [noreply]".
func parseTouch(args [][]byte, req *Request) error {
	req.Command = CmdTouch
	if len(args) != 2 && len(args) != 3 {
		return ErrUnknownCommand
	}
	noreply(args, req)
	if err := setKey(args[0], req); err != nil {
		return err
	}
	exptime, ok := parseInt32(args[1])
	if !ok {
		return ErrInvalidExptime
	}
	req.Exptime = int64(exptime)
	return nil
}

// parseFlushAll parses "[delay] [noreply]". As in memcached, a first
// argument is read as the delay unless it is the only one and is
// "noreply"; "flush_all 5 junk" is a flush in 5 seconds.
func parseFlushAll(args [][]byte, req *Request) error {
	req.Command = CmdFlushAll
	if len(args) > 2 {
		return ErrUnknownCommand
	}
	nr := noreply(args, req)
	if len(args) == 0 || len(args) == 1 && nr {
		return nil
	}
	delay, ok := parseInt32(args[0])
	if !ok {
		return ErrInvalidExptime
	}
	req.Delay = int64(delay)
	return nil
}

// parseVerbosity parses "<level> [noreply]"; a second argument other than
// "noreply" is ignored.
func parseVerbosity(args [][]byte, req *Request) error {
	req.Command = CmdVerbosity
	if len(args) != 1 && len(args) != 2 {
		return ErrUnknownCommand
	}
	noreply(args, req)
	level, ok := parseUint32(args[0])
	if !ok {
		return ErrBadFormat
	}
	req.Level = uint64(level)
	return nil
}

// parseMemlimit parses "<megabytes> [noreply]"; memcached answers ERROR
// when the limit is not a number.
func parseMemlimit(args [][]byte, req *Request) error {
	req.Command = CmdCacheMemlimit
	if len(args) != 1 && len(args) != 2 {
		return ErrUnknownCommand
	}
	noreply(args, req)
	mb, ok := parseUint32(args[0])
	if !ok {
		return ErrInvalidMemlimit
	}
	req.Level = uint64(mb)
	return nil
}

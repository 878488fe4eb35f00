package mctool

import (
	"bytes"
	"context"
	"strconv"
	"time"
)

// maxRelativeTTL is the longest expiry memcached takes as relative
// seconds; longer ones are absolute Unix times.
const maxRelativeTTL = 30 * 24 * 3600

// maxBatchBytes ends a Loader's batch early: large values are sent a
// megabyte or so at a time, not a hundred at once.
const maxBatchBytes = 1 << 20

// LoadConfig configures a Loader. The zero value loads as fast as the
// server takes it, 100 records a round trip.
type LoadConfig struct {
	Rate  float64          // records per second; 0: no limit
	Batch int              // records per round trip (pipelined, fewer past 1 MB); 0: 100
	Now   func() time.Time // clock for expiry; nil: time.Now
}

// LoadStats counts what a Loader did with its records.
type LoadStats struct {
	Loaded     int64  `json:"loaded"`     // stored
	Expired    int64  `json:"expired"`    // skipped: expired before they were sent
	Failed     int64  `json:"failed"`     // refused by the server (too large, out of memory)
	Unsendable int64  `json:"unsendable"` // skipped: keys no command can name (over 250 bytes)
	FirstError string `json:"first_error,omitempty"`
}

// Loader stores records into a server with pipelined quiet meta sets
// ("ms <key> <n> F<flags> T<ttl> q"), keeping each record's flags and
// remaining time to live. A key the text protocol cannot carry (spaces,
// control bytes) is sent in base64 ("ms <base64> <n> b ..."), or, when too
// long for that, with a binary set on a connection of its own. It is not
// safe for concurrent use.
type Loader struct {
	c       *Conn
	cfg     LoadConfig
	bucket  *bucket
	req     []byte
	pending int64
	stats   LoadStats
}

// NewLoader returns a Loader writing to c.
func NewLoader(c *Conn, cfg LoadConfig) *Loader {
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Loader{c: c, cfg: cfg}
	if cfg.Rate > 0 {
		l.bucket = newBucket(cfg.Rate, time.Now())
		l.cfg.Batch = min(l.cfg.Batch, int(l.bucket.burst))
	}
	return l
}

// Add queues r, sending the queue when it holds a batch. A record that
// has expired is counted and skipped.
func (l *Loader) Add(r Record) error {
	ttl := int64(0)
	if r.Exp != 0 {
		ttl = r.Exp - l.cfg.Now().Unix()
		if ttl <= 0 {
			l.stats.Expired++
			return nil
		}
		if ttl > maxRelativeTTL {
			ttl = r.Exp
		}
	}
	b, b64, ok := appendMetaKey(append(l.req, "ms "...), r.Key)
	if !ok && (r.Key == "" || len(r.Key) > maxKey) {
		l.stats.Unsendable++
		return nil
	}
	if l.bucket != nil {
		if l.bucket.wait(l.c.ctx, time.Now) != nil {
			return stopped(l.c.ctx, l.c.addr)
		}
	}
	if !ok {
		return l.addBinary(r, ttl)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(r.Value)), 10)
	if b64 {
		b = append(b, " b"...)
	}
	b = append(b, " F"...)
	b = strconv.AppendUint(b, uint64(r.Flags), 10)
	b = append(b, " T"...)
	b = strconv.AppendInt(b, ttl, 10)
	b = append(b, " q\r\n"...)
	b = append(b, r.Value...)
	l.req = append(b, "\r\n"...)
	l.pending++
	if l.pending >= int64(l.cfg.Batch) || len(l.req) >= maxBatchBytes {
		return l.Flush()
	}
	return nil
}

// addBinary stores a record whose key is too long for a base64 meta
// command with a binary set, after what is queued.
func (l *Loader) addBinary(r Record, ttl int64) error {
	if err := l.Flush(); err != nil {
		return err
	}
	refusal, err := l.c.binarySet(r, ttl)
	switch {
	case err != nil:
		return err
	case refusal != "":
		l.stats.Failed++
		if l.stats.FirstError == "" {
			l.stats.FirstError = refusal
		}
	default:
		l.stats.Loaded++
	}
	return nil
}

// Flush sends what is queued and waits until the server has answered it.
func (l *Loader) Flush() error {
	if l.pending == 0 {
		return nil
	}
	l.req = append(l.req, "mn\r\n"...)
	err := l.c.sendBytes(l.req)
	l.req = l.req[:0]
	if cap(l.req) > 4*maxBatchBytes {
		l.req = nil // a huge value's buffer is not kept
	}
	n := l.pending
	l.pending = 0
	if err != nil {
		return err
	}
	failed := int64(0)
	for {
		line, err := l.c.line()
		if err != nil {
			return err
		}
		switch {
		case string(line) == "MN":
			l.stats.Loaded += n - failed
			return nil
		case bytes.HasPrefix(line, []byte("NS")), bytes.HasPrefix(line, []byte("SERVER_ERROR")):
			failed++
			l.stats.Failed++
			if l.stats.FirstError == "" {
				l.stats.FirstError = string(line)
			}
		case isErrorLine(line):
			l.stats.Loaded += n - failed - 1
			return l.c.refused("ms", line)
		default:
			return l.c.garbage("ms", line)
		}
	}
}

// Stats returns the counts so far.
func (l *Loader) Stats() LoadStats { return l.stats }

// bucket is a token bucket: rate tokens a second, at most burst saved.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	burst := max(1, rate/20) // 50 ms of tokens
	return &bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

// wait takes one token, sleeping until there is one.
func (b *bucket) wait(ctx context.Context, clock func() time.Time) error {
	now := clock()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	d := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	b.tokens = 0
	b.last = b.last.Add(d)
	return nil
}

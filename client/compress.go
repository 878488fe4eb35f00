package client

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// DefaultMaxUncompressedSize is Config.MaxUncompressedSize when zero:
// memcached's default item size limit.
const DefaultMaxUncompressedSize = 1 << 20

// encode compresses value when the Config asks for it and it pays off,
// returning the bytes to store and their flags. It refuses flags that use
// the compression bit, which marks compressed values for every reader, and
// appends and prepends when the client compresses: the server would join
// the bytes as they are, corrupting a compressed value.
func (c *Client) encode(value []byte, flags uint32, verb string) ([]byte, uint32, error) {
	t := c.cfg.CompressThreshold
	if t < 0 {
		return value, flags, nil
	}
	if verb == "append" || verb == "prepend" {
		if t > 0 {
			return nil, 0, ErrAppendCompressed
		}
		return value, flags, nil
	}
	if flags&c.cfg.CompressFlag != 0 {
		return nil, 0, fmt.Errorf("client: flags %#x hold the compression flag %#x: %w", flags, c.cfg.CompressFlag, ErrCompressFlag)
	}
	if t == 0 || len(value) < t {
		return value, flags, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(value)
	zw.Close()
	if float64(buf.Len()) > float64(len(value))*c.cfg.CompressRatio {
		return value, flags, nil
	}
	if len(value) > c.cfg.MaxUncompressedSize {
		// It could be stored, but not read back.
		return nil, 0, fmt.Errorf("client: cannot compress %d bytes: %w", len(value), ErrValueTooLarge)
	}
	return buf.Bytes(), flags | c.cfg.CompressFlag, nil
}

// decode uncompresses an item stored compressed and clears the flag,
// whether or not this client compresses what it stores (unless
// CompressThreshold is negative), so that a compressed value is never
// returned as if it were the value.
func (c *Client) decode(it *Item) error {
	if c.cfg.CompressThreshold < 0 || it.Flags&c.cfg.CompressFlag == 0 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(it.Value))
	if err != nil {
		return fmt.Errorf("client: cannot uncompress %q: %w", it.Key, err)
	}
	limit := c.cfg.MaxUncompressedSize
	v, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return fmt.Errorf("client: cannot uncompress %q: %w", it.Key, err)
	}
	if len(v) > limit {
		return fmt.Errorf("client: cannot uncompress %q: more than %d bytes: %w", it.Key, limit, ErrValueTooLarge)
	}
	it.Value = v
	it.Flags &^= c.cfg.CompressFlag
	return nil
}

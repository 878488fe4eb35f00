package client

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
)

// encode compresses value when the Config asks for it and it pays off,
// returning the bytes to store and their flags. Appends and prepends are
// never compressed: the server joins the bytes as they are.
func (c *Client) encode(value []byte, flags uint32, verb string) ([]byte, uint32) {
	t := c.cfg.CompressThreshold
	if t <= 0 {
		return value, flags
	}
	if len(value) < t || verb == "append" || verb == "prepend" {
		return value, flags &^ c.cfg.CompressFlag
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(value)
	zw.Close()
	if float64(buf.Len()) > float64(len(value))*c.cfg.CompressRatio {
		return value, flags &^ c.cfg.CompressFlag
	}
	return buf.Bytes(), flags | c.cfg.CompressFlag
}

// decode uncompresses an item stored compressed and clears the flag.
func (c *Client) decode(it *Item) error {
	if c.cfg.CompressThreshold <= 0 || it.Flags&c.cfg.CompressFlag == 0 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(it.Value))
	if err != nil {
		return fmt.Errorf("client: cannot uncompress %q: %w", it.Key, err)
	}
	v, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("client: cannot uncompress %q: %w", it.Key, err)
	}
	it.Value = v
	it.Flags &^= c.cfg.CompressFlag
	return nil
}

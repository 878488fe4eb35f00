package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzLargeValues stores, appends and prepends values of sizes up to past
// ItemSizeMax in a cache whose slab_chunk_max is small (1 KiB, -I 8 KiB),
// so that values cross chunk boundaries at many offsets, and reads each key
// back after every operation: a value must read back exactly as a map says
// it is, and a value over the limit must be refused and leave the old one
// (set) or the old one untouched (append, prepend). Each input triple is
// one operation: command and key, then the size in two bytes. Values
// over 1 KiB are chains (with -I 8 KiB, or 16 KiB when the first byte's
// top bit is set, for longer chains); the run ends with every key deleted
// and no chunk left in use.
func FuzzLargeValues(f *testing.F) {
	f.Add([]byte{0, 0x03, 0xe8, 1, 0x04, 0x00, 2, 0x01, 0x00})
	f.Add([]byte{0, 0x1f, 0xc0, 0, 0x1f, 0xd0, 0, 0x20, 0x00, 4, 0x00, 0x00})
	f.Add([]byte{0x10, 0x03, 0xff, 0x11, 0x04, 0x01, 0x12, 0x0b, 0xb8, 0x11, 0x0f, 0xa0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		imax := 8 << 10
		if len(ops) > 0 && ops[0]&0x80 != 0 {
			imax = 16 << 10
		}
		c := chainCache(t, Config{MemoryLimit: 64 << 20, ItemSizeMax: imax, SlabChunkMax: 1 << 10})
		runLarge(t, c, ops)
		for i := range 4 {
			c.Delete([]byte{'k', '0' + byte(i)})
		}
		if used := usedChunks(c); len(used) != 0 {
			t.Fatalf("chunks still used after deleting every key: %v", used)
		}
	})
}

// runLarge is FuzzLargeValues' run of ops against c and a map.
func runLarge(t *testing.T, c *Cache, ops []byte) {
	model := map[string][]byte{}
	for i := 0; i+2 < len(ops) && i < 3*200; i += 3 {
		key := []byte{'k', '0' + ops[i]>>4%4}
		size := int(binary.BigEndian.Uint16(ops[i+1:])) % (10 << 10)
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(j) ^ byte(j>>8)*29 ^ byte(i)
		}
		old, had := model[string(key)]
		switch ops[i] % 4 {
		case 0:
			_, err := c.Store(ModeSet, key, 0, 0, v, 0)
			switch {
			case err == nil:
				model[string(key)] = v
			case errors.Is(err, ErrTooLarge):
				delete(model, string(key)) // memcached drops the old value
			default:
				t.Fatalf("set %d bytes: %v", size, err)
			}
		case 1, 2:
			mode, want := ModeAppend, append(append([]byte(nil), old...), v...)
			if ops[i]%4 == 2 {
				mode, want = ModePrepend, append(append([]byte(nil), v...), old...)
			}
			res, err := c.Store(mode, key, 0, 0, v, 0)
			switch {
			case err != nil && !errors.Is(err, ErrTooLarge):
				t.Fatalf("append/prepend %d bytes: %v", size, err)
			case err == nil && res == Stored:
				if !had {
					t.Fatalf("append/prepend stored onto a missing key")
				}
				model[string(key)] = want
			}
		case 3:
			c.Delete(key)
			delete(model, string(key))
		}
		for k, want := range model {
			got, ok := value(c, k)
			if !ok || !bytes.Equal([]byte(got), want) {
				t.Fatalf("op %d: %s holds %d bytes (found %v), want %d", i/3, k, len(got), ok, len(want))
			}
		}
	}
}

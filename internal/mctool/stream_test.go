package mctool

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fillMany stores n small items "key<i>" with quiet meta sets.
func fillMany(t *testing.T, c *Conn, n int) {
	t.Helper()
	const batch = 5000
	for i := 0; i < n; {
		var req strings.Builder
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			req.WriteString("ms key" + strconv.Itoa(i) + " 1 q\r\nv\r\n")
		}
		req.WriteString("mn\r\n")
		if got := do(t, c, req.String(), 1); got[0] != "MN" {
			t.Fatalf("quiet sets: %q", got)
		}
	}
}

// A Walk holds at most a batch of keys whatever the cache holds: the live
// heap while records are coming stays far below what the keys of the
// whole cache would take.
func TestWalkMemoryBounded(t *testing.T) {
	servers(t, func(t *testing.T, start func() string) {
		c := dial(t, start())
		const n = 50000
		fillMany(t, c, n)
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		before := m.HeapAlloc
		var peak uint64
		seen := 0
		ws, err := c.Walk(0, func(r Record) error {
			seen++
			if seen%(n/4) == 0 {
				runtime.GC()
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// memcached's crawler can miss a few items its LRU maintainer
		// is moving.
		if ws.Records != seen || seen < n-n/100 {
			t.Fatalf("walk saw %d records (%+v), want %d", seen, ws, n)
		}
		// The keys take 100 bytes each with their KeyInfo: a Walk that
		// collected them would hold 5 MB or more.
		if peak > before && peak-before > 3<<20 {
			t.Errorf("the live heap grew by %d KB during a walk of %d keys", (peak-before)>>10, n)
		}
	})
}

// binarySet stores key with the binary protocol, which takes any bytes.
func binarySet(t *testing.T, c *Conn, key, value string, flags uint32) {
	t.Helper()
	p := make([]byte, 24+8, 24+8+len(key)+len(value))
	p[0], p[1] = 0x80, 0x01 // request, SET
	binary.BigEndian.PutUint16(p[2:], uint16(len(key)))
	p[4] = 8 // extras: flags, expiry
	binary.BigEndian.PutUint32(p[8:], uint32(8+len(key)+len(value)))
	binary.BigEndian.PutUint32(p[24:], flags)
	p = append(append(p, key...), value...)
	if err := c.send(string(p)); err != nil {
		t.Fatal(err)
	}
	var h [24]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		t.Fatal(err)
	}
	if status, body := binary.BigEndian.Uint16(h[6:]), binary.BigEndian.Uint32(h[8:]); status != 0 || body != 0 {
		t.Fatalf("binary set %q: status %d, body %d", key, status, body)
	}
}

// Keys the text protocol cannot name (spaces, control bytes), stored
// with the binary protocol or a base64 meta set, are walked, dumped and
// loaded like any other, binary keys too long for a base64 meta command
// (187 to 250 bytes) too.
func TestBinaryKeysCopy(t *testing.T) {
	var ctl []byte
	for b := range 0x20 {
		ctl = append(ctl, byte(b))
	}
	meta := map[string]string{
		"a b":               "space",
		"ctl" + string(ctl): "control",
		"del\x7f":           "delete",
		"%41 x":             "percent",
	}
	bin := map[string]string{"bin key\r\n": "binary", "plain": "text"}
	long := map[string]string{strings.Repeat(" ", 187): "long", strings.Repeat("\x00", 250): "longest"}
	servers(t, func(t *testing.T, start func() string) {
		src := dial(t, start())
		for k, v := range meta {
			got := do(t, src, "ms "+base64.StdEncoding.EncodeToString([]byte(k))+" "+strconv.Itoa(len(v))+" b F7\r\n"+v+"\r\n", 1)
			if got[0] != "HD" {
				t.Fatalf("ms %q: %q", k, got)
			}
		}
		// A connection speaks the protocol of its first byte.
		bc := dial(t, src.Addr())
		for k, v := range bin {
			binarySet(t, bc, k, v, 9)
		}
		for k, v := range long {
			binarySet(t, bc, k, v, 9)
		}
		var file bytes.Buffer
		w, err := NewWriter(&file, src.Addr(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		walked := map[string]bool{}
		ws, err := src.Walk(0, func(r Record) error {
			walked[r.Key] = true
			return w.Write(r)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		n := len(meta) + len(bin) + len(long)
		if !listedOnce(t, ws.Records, len(walked), n) || ws.Unsendable != 0 || ws.Keys != ws.Records {
			t.Errorf("walk %+v over %d keys, want %d records", ws, len(walked), n)
		}
		servers(t, func(t *testing.T, start func() string) {
			dst := dial(t, start())
			r, err := NewReader(bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			l := NewLoader(dst, LoadConfig{Batch: 2})
			for {
				rec, err := r.Next()
				if err != nil {
					break
				}
				if err := l.Add(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats(); st.Loaded != int64(ws.Records) {
				t.Errorf("load stats %+v", st)
			}
			check := func(k, v, flags string) {
				t.Helper()
				got := do(t, dst, "mg "+base64.StdEncoding.EncodeToString([]byte(k))+" b f v\r\n", 1)[0]
				if got != "VA "+strconv.Itoa(len(v))+" f"+flags {
					t.Errorf("%q: %q", k, got)
					return
				}
				if data, err := dst.data(len(v)); err != nil || string(data) != v {
					t.Errorf("%q: value %q, %v", k, data, err)
				}
			}
			for k, v := range meta {
				check(k, v, "7")
			}
			for k, v := range bin {
				check(k, v, "9")
			}
			for k, v := range long {
				rec, ok, err := dst.binaryGet(k)
				if err != nil || !ok || rec.Flags != 9 || string(rec.Value) != v {
					t.Errorf("%d-byte key: %+v, found %v, %v", len(k), rec, ok, err)
				}
			}
		})
	})
}

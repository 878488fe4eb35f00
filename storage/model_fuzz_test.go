package storage

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// modelItem is what a plain map says a key holds.
type modelItem struct {
	value []byte
	flags uint32
	cas   uint64
}

func casOf(m *modelItem) uint64 {
	if m == nil {
		return 0
	}
	return m.cas
}

// modelNumber reads a value as memcached's safe_strtoull reads it: after
// optional white space, decimal digits that end the value or are followed
// by white space; whatever follows that white space is ignored, so "12 "
// and "0 48" are numbers and "12v" is not.
func modelNumber(v []byte) (uint64, bool) {
	s := strings.TrimLeft(string(v), " \t\n\v\f\r")
	if end := strings.IndexAny(s, " \t\n\v\f\r"); end >= 0 {
		s = s[:end]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// FuzzCacheModel runs a sequence of operations decoded from the input
// against the Cache and against a map, and requires the same results. The
// cache is large enough that nothing is evicted, and exptimes are 0, so the
// map is an exact model. Each input byte pair is one operation: the first
// byte picks the command and key, the second the value or CAS choice.
func FuzzCacheModel(f *testing.F) {
	f.Add([]byte{0, 1, 8, 2, 16, 3, 24, 4, 32, 5, 40, 6, 48, 7, 56, 8, 64, 9, 72, 10})
	f.Add([]byte("set get append prepend cas incr decr delete touch"))
	f.Add(bytes.Repeat([]byte{0x50, 0x07, 0x51, 0x02}, 20))
	// set k0 100, decr 100 leaves "0  ", append 48 makes "0  48", which
	// incr reads as 0 (digits, then white space, then anything).
	f.Add([]byte{0, 100, 8, 100, 3, 48, 7, 1, 10, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c, _ := newFakeCache(t)
		runModel(t, c, ops)
		// The same operations on a cache that chains values over 1 KiB,
		// so that values cross chunk boundaries at many offsets.
		runModel(t, chainCache(t, Config{ItemSizeMax: 64 << 10, SlabChunkMax: 1 << 10}), ops)
	})
}

// runModel is FuzzCacheModel's run of ops against c and a map.
func runModel(t *testing.T, c *Cache, ops []byte) {
	model := map[string]*modelItem{}
	var lastCAS uint64
	for i := 0; i+1 < len(ops); i += 2 {
		op, arg := ops[i]%11, ops[i+1]
		key := []byte{'k', '0' + (ops[i]>>4)%4}
		m := model[string(key)]
		val := []byte(strconv.Itoa(int(arg)))
		if arg&0x80 != 0 {
			val = bytes.Repeat([]byte{'v'}, int(arg)*13)
		}
		where := fmt.Sprintf("op %d (%d on %s, arg %d)", i/2, op, key, arg)
		switch op {
		case 0, 1, 2, 3, 4, 5: // set add replace append prepend cas
			mode := StoreMode(op)
			// cas checks the unique for cas, and for append and
			// prepend when one is given (memcached's binary protocol).
			var cas uint64
			if mode == ModeCAS || arg&2 != 0 {
				cas = lastCAS
				if arg&1 == 0 && m != nil {
					cas = m.cas
				}
			}
			res, newCAS, err := c.StoreCAS(mode, key, uint32(arg), 0, val, cas)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			want := Stored
			switch {
			case mode == ModeAdd && m != nil:
				want = NotStored
			case (mode == ModeReplace || mode == ModeAppend || mode == ModePrepend) && m == nil:
				want = NotStored
			case mode == ModeCAS && m == nil:
				want = NotFound
			case (mode == ModeCAS || mode == ModeAppend || mode == ModePrepend) && cas != 0 && m.cas != cas:
				want = Exists
			}
			if res != want {
				t.Fatalf("%s (cas %d, model cas %d): result %d, want %d", where, cas, casOf(m), res, want)
			}
			if res != Stored {
				break
			}
			switch mode {
			case ModeAppend:
				m.value = append(append([]byte{}, m.value...), val...)
			case ModePrepend:
				m.value = append(append([]byte{}, val...), m.value...)
			default:
				m = &modelItem{value: append([]byte{}, val...), flags: uint32(arg)}
				model[string(key)] = m
			}
			if newCAS <= lastCAS {
				t.Fatalf("%s: CAS %d not above the last one %d", where, newCAS, lastCAS)
			}
			m.cas, lastCAS = newCAS, newCAS
		case 6: // delete
			res := c.Delete(key)
			if (res == Stored) != (m != nil) {
				t.Fatalf("%s: delete gave %d with model item %v", where, res, m != nil)
			}
			delete(model, string(key))
		case 7, 8: // incr, decr
			v, newCAS, res, err := c.IncrCAS(key, uint64(arg), op == 8, 0)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if m == nil {
				if res != NotFound {
					t.Fatalf("%s: incr on missing key gave %d", where, res)
				}
				break
			}
			n, ok := modelNumber(m.value)
			// memcached does not read a chained value as a number.
			if c.chained(len(key), len(m.value), m.flags) {
				ok = false
			}
			if !ok {
				if res != NonNumeric {
					t.Fatalf("%s: incr on %q gave %d, want NonNumeric", where, m.value, res)
				}
				break
			}
			if op == 7 {
				n += uint64(arg)
			} else if n < uint64(arg) {
				n = 0
			} else {
				n -= uint64(arg)
			}
			if res != Stored || v != n {
				t.Fatalf("%s: incr gave %d (%d), want %d", where, v, res, n)
			}
			s := strconv.FormatUint(n, 10)
			if len(s) < len(m.value) {
				s += string(bytes.Repeat([]byte{' '}, len(m.value)-len(s)))
			}
			m.value = []byte(s)
			m.cas, lastCAS = newCAS, newCAS
		case 9: // touch
			res := c.Touch(key, 0)
			if (res == Stored) != (m != nil) {
				t.Fatalf("%s: touch gave %d with model item %v", where, res, m != nil)
			}
		case 10: // get
			found := c.Get(key, func(it Item) {
				if m == nil {
					t.Fatalf("%s: hit on a key the model lacks", where)
				}
				v := it.AppendValue(nil)
				if !bytes.Equal(v, m.value) || it.Len() != len(v) || it.Flags != m.flags || it.CAS != m.cas {
					t.Fatalf("%s: got %q flags %d cas %d, want %q flags %d cas %d",
						where, v, it.Flags, it.CAS, m.value, m.flags, m.cas)
				}
			})
			if found != (m != nil) {
				t.Fatalf("%s: found %v, model has %v", where, found, m != nil)
			}
		}
	}
}

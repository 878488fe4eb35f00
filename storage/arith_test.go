package storage

import (
	"math"
	"strings"
	"testing"
)

func TestParseUint(t *testing.T) {
	// Cases checked against memcached 1.6.18's incr (value, then incr 0).
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"100", 100, true},
		{"  12", 12, true},
		{"\n12", 12, true},
		{"12 abc", 12, true},
		{"1\t2", 1, true},
		{"1\n", 1, true},
		{"1\x00", 1, true},
		{"+5", 5, true},
		{"-0", 0, true},
		{"000000000000000000000000000001", 1, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"-18446744073709551615", 1, true}, // strtoull negates; small result passes
		{"-9223372036854775809", 9223372036854775807, true},
		{"-9223372036854775808", 0, false}, // negative as signed: refused
		{"-1", 0, false},
		{"18446744073709551616", 0, false}, // ERANGE
		{"99999999999999999999999", 0, false},
		{"12a", 0, false},
		{"0x10", 0, false},
		{"- 1", 0, false},
		{"+", 0, false},
		{" ", 0, false},
		{"", 0, false},
		{"abc", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseUint([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseUint(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIncrDecr(t *testing.T) {
	tests := []struct {
		name      string
		initial   string // "" = no item
		delta     uint64
		decr      bool
		want      uint64
		wantRes   StoreResult
		wantValue string
	}{
		{"incr", "10", 5, false, 15, Stored, "15"},
		{"decr", "10", 3, true, 7, Stored, "7 "},
		{"decr padded", "100", 1, true, 99, Stored, "99 "},
		{"decr floor", "5", 10, true, 0, Stored, "0"},
		{"decr floor wide", "100", 1000, true, 0, Stored, "0  "},
		{"incr wraps", "18446744073709551615", 2, false, 1, Stored, "1                   "},
		{"incr longer", "99", 1, false, 100, Stored, "100"},
		{"incr much longer", "9", 18446744073709551606, false, 18446744073709551615, Stored, "18446744073709551615"},
		{"incr keeps width", "12 abc", 1, false, 13, Stored, "13    "},
		{"leading spaces", "  12", 1, false, 13, Stored, "13  "},
		{"zero delta", "7", 0, false, 7, Stored, "7"},
		{"non numeric", "abc", 1, false, 0, NonNumeric, "abc"},
		{"negative", "-1", 1, false, 0, NonNumeric, "-1"},
		{"empty", "\x00empty", 1, false, 0, NonNumeric, "\x00empty"},
		{"overflowing value", "18446744073709551616", 1, false, 0, NonNumeric, "18446744073709551616"},
		{"missing incr", "", 1, false, 0, NotFound, ""},
		{"missing decr", "", 1, true, 0, NotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFakeCache(t)
			if tt.initial != "" {
				mustStore(t, c, ModeSet, "n", tt.initial, 42, 500, 0)
			}
			before, _ := lookup(c, "n")
			got, res := c.Incr([]byte("n"), tt.delta, tt.decr)
			if res != tt.wantRes || got != tt.want {
				t.Fatalf("Incr = %d, %v; want %d, %v", got, res, tt.want, tt.wantRes)
			}
			it, ok := lookup(c, "n")
			if tt.initial == "" {
				if ok {
					t.Fatal("incr created an item")
				}
				return
			}
			if string(it.Value) != tt.wantValue {
				t.Fatalf("value = %q, want %q", it.Value, tt.wantValue)
			}
			if it.Flags != 42 || it.Exptime != before.Exptime {
				t.Fatalf("flags %d exptime %d, want 42 and %d kept", it.Flags, it.Exptime, before.Exptime)
			}
			if res == Stored && it.CAS == before.CAS {
				t.Fatal("CAS unchanged after incr")
			}
			if res != Stored && it.CAS != before.CAS {
				t.Fatal("CAS changed after failed incr")
			}
		})
	}
}

func TestIncrEmptyValue(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "e", "")
	if _, res := c.Incr([]byte("e"), 1, false); res != NonNumeric {
		t.Fatalf("incr on empty value = %v, want NonNumeric", res)
	}
}

func TestIncrNewItemWhenChunkFull(t *testing.T) {
	c, _ := newFakeCache(t)
	// Fill the chunk exactly so that a longer number needs a new item.
	cls := c.Classes()[0]
	key := strings.Repeat("k", cls.ChunkSize-int(c.hdrSize)-1)
	mustStore(t, c, ModeSet, key, "9", 5, 0, 0)
	if v, res := c.Incr([]byte(key), 1, false); res != Stored || v != 10 {
		t.Fatalf("incr = %d %v", v, res)
	}
	it, _ := lookup(c, key)
	if string(it.Value) != "10" || it.Flags != 5 {
		t.Fatalf("item = %q flags %d", it.Value, it.Flags)
	}
	if s := stats(c); s.CurrItems != 1 || s.Classes[0].Number != 0 {
		t.Fatalf("curr_items %d, class 1 items %d", s.CurrItems, s.Classes[0].Number)
	}
}

func TestIncrCAS(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "n", "1")
	it, _ := lookup(c, "n")
	if _, _, res, _ := c.IncrCAS([]byte("n"), 1, false, it.CAS+1); res != Exists {
		t.Fatalf("IncrCAS mismatch = %v", res)
	}
	v, cas, res, err := c.IncrCAS([]byte("n"), 1, false, it.CAS)
	if err != nil || res != Stored || v != 2 || cas == it.CAS {
		t.Fatalf("IncrCAS = %d %d %v %v", v, cas, res, err)
	}
	if it2, _ := lookup(c, "n"); it2.CAS != cas {
		t.Fatalf("item CAS %d, IncrCAS said %d", it2.CAS, cas)
	}
}

func TestArithStats(t *testing.T) {
	c, _ := newFakeCache(t)
	mustSet(t, c, "n", "1")
	c.Incr([]byte("n"), 1, false)
	c.Incr([]byte("n"), 1, true)
	c.Incr([]byte("x"), 1, false)
	c.Incr([]byte("x"), 1, true)
	c.Incr([]byte("x"), 1, true)
	s := stats(c)
	if s.IncrMisses != 1 || s.DecrMisses != 2 || s.Classes[0].IncrHits != 1 || s.Classes[0].DecrHits != 1 {
		t.Fatalf("incr/decr stats: misses %d/%d hits %d/%d", s.IncrMisses, s.DecrMisses, s.Classes[0].IncrHits, s.Classes[0].DecrHits)
	}
}

package protocol

import "testing"

// The expectations below are what C's strtoul/strtol/strtoull give on a
// 64-bit Linux system under memcached's safe_* wrappers; the golden
// transcripts check the same rules against memcached itself.

func TestParseUint64(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"zero", "0", 0, true},
		{"one", "1", 1, true},
		{"max", "18446744073709551615", 1<<64 - 1, true},
		{"2^64 overflows", "18446744073709551616", 0, false},
		{"huge overflows", "99999999999999999999999", 0, false},
		{"plus sign", "+5", 5, true},
		{"minus zero", "-0", 0, true},
		{"minus one", "-1", 0, false},
		{"minus 2^63 is negative", "-9223372036854775808", 0, false},
		{"minus 2^63+1 wraps positive", "-9223372036854775809", 1<<63 - 1, true},
		{"minus 2^64-1 wraps to one", "-18446744073709551615", 1, true},
		{"minus 2^64 overflows", "-18446744073709551616", 0, false},
		{"leading tab", "\t7", 7, true},
		{"leading vtab formfeed cr", "\v\f\r7", 7, true},
		{"trailing tab", "7\t", 7, true},
		{"trailing tab then junk", "7\tjunk", 7, true},
		{"trailing cr", "7\r", 7, true},
		{"trailing junk", "7x", 0, false},
		{"hex prefix", "0x10", 0, false},
		{"decimal point", "1.5", 0, false},
		{"empty", "", 0, false},
		{"sign only", "-", 0, false},
		{"space only", "\t", 0, false},
		{"two signs", "+-1", 0, false},
		{"minus one after tab", "\t-1", 0, false},
		{"plus one after tab", "\t+1", 1, true},
		{"space between sign and digits", "+\t1", 0, false},
		{"leading zeros", "007", 7, true},
		{"unsigned max with dash later", "18446744073709551615\t-", 0, false},
		{"small with dash later", "5\t-", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseUint64([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseUint64(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseUint32(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint32
		ok   bool
	}{
		{"max", "4294967295", 1<<32 - 1, true},
		{"2^32 truncates to zero", "4294967296", 0, true},
		{"2^32+7 truncates", "4294967303", 7, true},
		{"2^64-1 truncates", "18446744073709551615", 1<<32 - 1, true},
		{"2^64 overflows", "18446744073709551616", 0, false},
		{"minus one", "-1", 0, false},
		{"minus 2^32 is negative", "-4294967296", 0, false},
		{"minus 2^64-1 wraps to one", "-18446744073709551615", 1, true},
		{"junk", "abc", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseUint32([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseUint32(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseInt32(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int32
		ok   bool
	}{
		{"zero", "0", 0, true},
		{"minus one", "-1", -1, true},
		{"int32 max", "2147483647", 1<<31 - 1, true},
		{"2^31 truncates negative", "2147483648", -1 << 31, true},
		{"2^32 truncates to zero", "4294967296", 0, true},
		{"2^32+1 truncates to one", "4294967297", 1, true},
		{"int64 max truncates", "9223372036854775807", -1, true},
		{"2^63 overflows", "9223372036854775808", 0, false},
		{"int64 min truncates to zero", "-9223372036854775808", 0, true},
		{"below int64 min overflows", "-9223372036854775809", 0, false},
		{"plus sign", "+12", 12, true},
		{"trailing junk", "12x", 0, false},
		{"trailing tab junk", "12\tx", 12, true},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseInt32([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseInt32(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

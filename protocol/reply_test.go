package protocol

import (
	"math"
	"testing"
)

func TestAppendValue(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		flags   uint32
		value   string
		cas     uint64
		withCAS bool
		want    string
	}{
		{"get", "k", 0, "hello", 99, false, "VALUE k 0 5\r\nhello\r\n"},
		{"gets", "k", 7, "hello", 99, true, "VALUE k 7 5 99\r\nhello\r\n"},
		{"empty value", "k", 0, "", 0, false, "VALUE k 0 0\r\n\r\n"},
		{"max numbers", "key", math.MaxUint32, "v", math.MaxUint64, true,
			"VALUE key 4294967295 1 18446744073709551615\r\nv\r\n"},
		{"value with crlf", "k", 1, "a\r\nb", 0, false, "VALUE k 1 4\r\na\r\nb\r\n"},
		{"control bytes in key", "a\tb", 0, "v", 0, false, "VALUE a\tb 0 1\r\nv\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendValue([]byte("END\r\n"), []byte(tt.key), tt.flags, []byte(tt.value), tt.cas, tt.withCAS)
			if string(got) != "END\r\n"+tt.want {
				t.Errorf("AppendValue = %q, want %q", got, "END\r\n"+tt.want)
			}
		})
	}
}

func TestAppendStat(t *testing.T) {
	var b []byte
	b = AppendStat(b, "version", "1.6.18")
	b = AppendStatUint(b, "curr_items", math.MaxUint64)
	b = AppendStatInt(b, "delta", -5)
	b = AppendLine(b, "END")
	want := "STAT version 1.6.18\r\nSTAT curr_items 18446744073709551615\r\nSTAT delta -5\r\nEND\r\n"
	if string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	if got := string(AppendUint([]byte("x"), 1234)); got != "x1234" {
		t.Errorf("AppendUint = %q, want %q", got, "x1234")
	}
}

func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	key, value := []byte("user:1234"), make([]byte, 512)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendValue(buf[:0], key, 3, value, 12345, true)
		b = AppendStatUint(b, "get_hits", 1<<40)
		b = AppendStatInt(b, "time", -1)
		b = AppendStat(b, "version", "1.6.18")
		b = AppendLine(b, "END")
		_ = AppendUint(b, 42)
	})
	if allocs != 0 {
		t.Errorf("Append functions allocate %v times with room in dst", allocs)
	}
}

func BenchmarkAppendValue(b *testing.B) {
	buf := make([]byte, 0, 4096)
	key, value := []byte("user:1234567"), make([]byte, 512)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendValue(buf[:0], key, 0, value, 123456789, true)
	}
}

package server

import "testing"

// TestFormatMicros pins the rusage stats' format, seconds.microseconds
// with six digits, on every platform's source of the times.
func TestFormatMicros(t *testing.T) {
	for _, c := range []struct {
		us   int64
		want string
	}{
		{0, "0.000000"},
		{7, "0.000007"},
		{999999, "0.999999"},
		{1000000, "1.000000"},
		{123456789, "123.456789"},
	} {
		if got := formatMicros(c.us); got != c.want {
			t.Errorf("formatMicros(%d) = %q, want %q", c.us, got, c.want)
		}
	}
	if user, system := processTimes(); user < 0 || system < 0 {
		t.Errorf("processTimes() = %d, %d", user, system)
	}
}

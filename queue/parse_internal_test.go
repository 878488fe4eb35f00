package queue

import (
	"strings"
	"testing"
	"time"
)

func TestParseGet(t *testing.T) {
	for _, tc := range []struct {
		key  string
		name string
		want getOptions
		ok   bool
	}{
		{"q", "q", getOptions{}, true},
		{"q/t=250", "q", getOptions{timeout: 250 * time.Millisecond, hasTimeout: true}, true},
		{"q/t=0/open", "q", getOptions{hasTimeout: true, open: true}, true},
		{"q/close/open", "q", getOptions{close: true, open: true}, true},
		{"q/abort", "q", getOptions{abort: true}, true},
		{"q/peek/t=5", "q", getOptions{peek: true, timeout: 5 * time.Millisecond, hasTimeout: true}, true},
		{"q/unknown", "q", getOptions{}, true}, // Kestrel ignores unknown options
		{"q/", "q", getOptions{}, true},
		{"q/t=2147483647", "q", getOptions{timeout: 2147483647 * time.Millisecond, hasTimeout: true}, true},
		{"q/t=2147483648", "", getOptions{}, false},
		{"q/t=-1", "", getOptions{}, false},
		{"q/t=", "", getOptions{}, false},
		{"q/peek/open", "", getOptions{}, false},
		{"q/peek/close", "", getOptions{}, false},
		{"q/abort/open", "", getOptions{}, false},
		{"q/abort/peek", "", getOptions{}, false},
		{"/open", "", getOptions{}, false},
		{"", "", getOptions{}, false},
	} {
		name, o, ok := parseGet(tc.key)
		if ok != tc.ok || (ok && (name != tc.name || o != tc.want)) {
			t.Errorf("parseGet(%q) = %q, %+v, %v", tc.key, name, o, ok)
		}
	}
}

func FuzzParseGet(f *testing.F) {
	for _, s := range []string{"q", "q/t=10/open", "q/close/open", "q/abort", "q/peek", "a+b/t=99999999999", "//", "q/t=1/t=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		name, o, ok := parseGet(key)
		if !ok {
			return
		}
		if name == "" || strings.Contains(name, "/") || !strings.HasPrefix(key, name) {
			t.Fatalf("parseGet(%q) = name %q", key, name)
		}
		if o.timeout < 0 || (o.peek && (o.open || o.close || o.abort)) || (o.abort && (o.open || o.close)) {
			t.Fatalf("parseGet(%q) = %+v", key, o)
		}
	})
}

package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	fc, err := ParseConfig([]byte(`
max_open_transactions: 3
default:
  max_items: 10
  max_item_size: 2KB
  sync: never
queues:
  orders:
    max_size: 1MB
    max_age: 90
    discard_old_when_full: true
  orders+audit:
    max_items: 5
    open_timeout: 250ms
    expire_to_queue: dead
`))
	if err != nil {
		t.Fatal(err)
	}
	if fc.MaxOpenTransactions != 3 {
		t.Fatalf("max_open_transactions = %d", fc.MaxOpenTransactions)
	}
	for _, tc := range []struct {
		name string
		want queueSettings
	}{
		{"other", queueSettings{store: StoreConfig{MaxItems: 10, MaxItemSize: 2048, Sync: "never"}}},
		{"orders", queueSettings{store: StoreConfig{MaxItems: 10, MaxItemSize: 2048, Sync: "never",
			MaxSize: 1 << 20, MaxAge: 90 * time.Second, DiscardOldWhenFull: true}}},
		{"orders+audit", queueSettings{store: StoreConfig{MaxItems: 5, MaxItemSize: 2048, Sync: "never",
			MaxSize: 1 << 20, MaxAge: 90 * time.Second, DiscardOldWhenFull: true},
			openTimeout: 250 * time.Millisecond, expireToQueue: "dead"}},
		{"other+child", queueSettings{store: StoreConfig{MaxItems: 10, MaxItemSize: 2048, Sync: "never"}}},
	} {
		if got := fc.resolve(tc.name, "always"); !cmp.Equal(got, tc.want, cmp.AllowUnexported(queueSettings{})) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := (*FileConfig)(nil).resolve("q", "always"); got.store.MaxItemSize != DefaultMaxItemSize || got.store.Sync != "always" {
		t.Errorf("no config: %+v", got)
	}
	if _, err := ParseConfig(nil); err != nil {
		t.Errorf("empty config: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "default:\n  max_itemz: 1\n", "max_itemz"},
		{"bad size", "default:\n  max_size: lots\n", "bad size"},
		{"negative size", "default:\n  max_size: -1\n", "bad size"},
		{"size overflow", "default:\n  max_size: 9223372036854775807GB\n", "bad size"},
		{"bad duration", "default:\n  max_age: soon\n", "bad duration"},
		{"negative duration", "default:\n  open_timeout: -1s\n", "bad duration"},
		{"bad queue name", "queues:\n  a/b:\n    max_items: 1\n", "bad queue name"},
		{"bad expire_to_queue", "default:\n  expire_to_queue: a.b\n", "expire_to_queue"},
		{"negative open transactions", "max_open_transactions: -1\n", "max_open_transactions"},
		{"not a map", "- 1\n", "cannot parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"jobs", true}, {"a-b_c", true}, {"orders+audit", true}, {strings.Repeat("x", 250), true},
		{"", false}, {strings.Repeat("x", 251), false}, {"a b", false}, {"a\tb", false},
		{"a/b", false}, {"a~b", false}, {"a.b", false}, {"..", false}, {"a\x00", false},
		{"\x7f", false}, {"+a", false}, {"a+", false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v", tc.name, err)
		}
	}
}

package ring

import (
	"fmt"
	"testing"
)

func TestHashKnownValues(t *testing.T) {
	check := []byte("123456789")
	tests := []struct {
		name string
		key  []byte
		want uint32
	}{
		{"crc32a", check, 0xcbf43926},
		{"crc32", check, 0xcbf43926 >> 16 & 0x7fff},
		{"crc16", []byte("1"), 0x2672}, // XMODEM of one byte
		{"fnv1_32", []byte("a"), 0x050c5d7e},
		{"fnv1a_32", []byte("a"), 0xe40c292c},
		{"fnv1_64", []byte("a"), uint32(0xaf63bd4c8601b7be & 0xffffffff)},
		{"md5", []byte(""), 0xd98c1dd4}, // d41d8cd9... read little-endian
		{"hsieh", nil, 0},
		{"jenkins", nil, 0xdeadbeef + 13},
		{"one_at_a_time", nil, 0},
	}
	for _, tt := range tests {
		h, err := HashNamed(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := h(tt.key); got != tt.want {
			t.Errorf("%s(%q) = %#x, want %#x", tt.name, tt.key, got, tt.want)
		}
	}
	if _, err := HashNamed("sha1"); err == nil {
		t.Error("HashNamed(sha1) succeeded")
	}
	if n := len(HashNames()); n != 12 {
		t.Errorf("%d hashes, want 12", n)
	}
}

func TestSignedBytes(t *testing.T) {
	// twemproxy reads keys as signed chars in these hashes: a byte above
	// 0x7f must not hash like its unsigned value would.
	unsigned := func(key []byte) uint32 {
		h := uint32(fnv32Init)
		for _, b := range key {
			h ^= uint32(b)
			h *= fnv32Prime
		}
		return h
	}
	if FNV1a_32([]byte("é")) == unsigned([]byte("é")) {
		t.Error("fnv1a_32 reads bytes as unsigned")
	}
	if FNV1a_32([]byte("e")) != unsigned([]byte("e")) {
		t.Error("fnv1a_32 differs on ASCII")
	}
}

func TestHashTag(t *testing.T) {
	r, err := New(Config{Servers: servers(5), HashTag: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ a, b string }{
		{"user:{42}:name", "42"},
		{"{42}", "42"},
		{"x{42}y{7}", "42"},
		{"user:{}:name", "user:{}:name"},
		{"user:{42", "user:{42"},
		{"user}42{", "user}42{"},
	} {
		if r.HashKey([]byte(tt.a)) != r.HashKey([]byte(tt.b)) {
			t.Errorf("%q does not hash as %q", tt.a, tt.b)
		}
	}
	if _, err := New(Config{Servers: servers(2), HashTag: "{"}); err == nil {
		t.Error("one-character hash tag accepted")
	}
}

func TestKetamaName(t *testing.T) {
	for _, tt := range []struct {
		s    Server
		want string
	}{
		{Server{Addr: "10.0.0.1:11211"}, "10.0.0.1"},
		{Server{Addr: "10.0.0.1:11212"}, "10.0.0.1:11212"},
		{Server{Addr: "10.0.0.1:11211", Name: "a"}, "a"},
		{Server{Addr: "[::1]:11211"}, "::1"},
	} {
		if got := tt.s.KetamaName(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestKetamaPoints(t *testing.T) {
	r, err := New(Config{Servers: []Server{{Addr: "a:1", Weight: 1}, {Addr: "b:1", Weight: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[int32]int{}
	for _, p := range r.points {
		count[p.server]++
	}
	// 2 servers × 160 points, split 1:3.
	if count[0] != 80 || count[1] != 240 {
		t.Errorf("points per server %v, want 80 and 240", count)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err != ErrNoServers {
		t.Errorf("no servers: %v", err)
	}
	if _, err := New(Config{Servers: servers(1), Distribution: "rendezvous"}); err == nil {
		t.Error("unknown distribution accepted")
	}
}

func TestRandomStaysInRange(t *testing.T) {
	r, err := New(Config{Servers: servers(3), Distribution: Random})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 300 {
		i := r.PickString("k")
		if i < 0 || i > 2 {
			t.Fatalf("Pick = %d", i)
		}
		seen[i] = true
	}
	if len(seen) != 3 {
		t.Errorf("random reached only %v", seen)
	}
}

func TestPickAllocs(t *testing.T) {
	for _, d := range Distributions() {
		r, err := New(Config{Servers: servers(10), Distribution: d})
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { r.PickString("user:12345:profile") }); n != 0 {
			t.Errorf("%s: Pick allocates %v times", d, n)
		}
	}
}

func servers(n int) []Server {
	s := make([]Server, n)
	for i := range s {
		s[i] = Server{Addr: fmt.Sprintf("10.0.0.%d:11211", i+1), Weight: 1}
	}
	return s
}

func BenchmarkPick(b *testing.B) {
	key := []byte("user:12345:profile")
	for _, d := range []Distribution{Ketama, Modula, LibmemcachedKetama} {
		for _, h := range []string{"fnv1a_64", "md5", "murmur"} {
			r, err := New(Config{Servers: servers(100), Hash: h, Distribution: d})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%s/100", d, h), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r.Pick(key)
				}
			})
		}
	}
}

func TestPickN(t *testing.T) {
	for _, d := range []Distribution{Ketama, Modula, LibmemcachedKetama} {
		r, err := New(Config{Servers: servers(5), Distribution: d})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			k := []byte(fmt.Sprint("key", i))
			got := r.PickN(nil, k, 3)
			if len(got) != 3 || got[0] != r.Pick(k) || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
				t.Fatalf("%s: PickN(%s) = %v, Pick = %d", d, k, got, r.Pick(k))
			}
		}
		if got := r.PickN(nil, []byte("k"), 9); len(got) != 5 {
			t.Errorf("%s: PickN of 9 over 5 servers = %v", d, got)
		}
	}
}

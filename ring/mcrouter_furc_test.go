package ring

import (
	"fmt"
	"testing"
)

// furcGolden are the values of kGoldenValues in mcrouter's
// mcrouter/lib/fbi/test/hash_test.cpp (TEST(ch3, golden_values)):
// furc_hash(key, len(key), m).
var furcGolden = []struct {
	key  string
	m    uint32
	want uint32
}{
	{"key0", 1, 0},
	{"key0", 2, 0},
	{"key0", 3, 0},
	{"key0", 5, 4},
	{"key0", 7, 5},
	{"key0", 10, 7},
	{"key0", 16, 14},
	{"key0", 50, 22},
	{"key0", 100, 22},
	{"key0", 500, 413},
	{"key0", 1000, 950},
	{"key0", 5000, 3375},
	{"key0", 10000, 3375},
	{"key0", 100000, 59045},
	{"key0", 1000000, 500854},
	{"key0", 8388608, 4701525},
	{"key0", 16777216, 10218333},
	{"key0", 1073741824, 856543823},
	{"key0", 4294967295, 2635611118},
	{"key1", 1, 0},
	{"key1", 2, 0},
	{"key1", 3, 2},
	{"key1", 5, 2},
	{"key1", 7, 2},
	{"key1", 10, 2},
	{"key1", 16, 2},
	{"key1", 50, 2},
	{"key1", 100, 2},
	{"key1", 500, 2},
	{"key1", 1000, 808},
	{"key1", 5000, 808},
	{"key1", 10000, 808},
	{"key1", 100000, 24368},
	{"key1", 1000000, 768680},
	{"key1", 8388608, 7205857},
	{"key1", 16777216, 7205857},
	{"key1", 1073741824, 144851818},
	{"key1", 4294967295, 1919030847},
	{"key2", 1, 0},
	{"key2", 2, 0},
	{"key2", 3, 0},
	{"key2", 5, 4},
	{"key2", 7, 4},
	{"key2", 10, 4},
	{"key2", 16, 14},
	{"key2", 50, 40},
	{"key2", 100, 40},
	{"key2", 500, 279},
	{"key2", 1000, 794},
	{"key2", 5000, 3741},
	{"key2", 10000, 3741},
	{"key2", 100000, 99468},
	{"key2", 1000000, 99468},
	{"key2", 8388608, 8033017},
	{"key2", 16777216, 8033017},
	{"key2", 1073741824, 720979435},
	{"key2", 4294967295, 720979435},
	{"key3", 1, 0},
	{"key3", 2, 1},
	{"key3", 3, 1},
	{"key3", 5, 1},
	{"key3", 7, 5},
	{"key3", 10, 5},
	{"key3", 16, 5},
	{"key3", 50, 5},
	{"key3", 100, 73},
	{"key3", 500, 214},
	{"key3", 1000, 214},
	{"key3", 5000, 1118},
	{"key3", 10000, 1118},
	{"key3", 100000, 98344},
	{"key3", 1000000, 567453},
	{"key4", 1, 0},
	{"key4", 2, 0},
	{"key4", 3, 2},
	{"key4", 5, 2},
	{"key4", 7, 2},
	{"key4", 10, 8},
	{"key4", 16, 10},
	{"key4", 50, 47},
	{"key4", 100, 47},
	{"key4", 500, 101},
	{"key4", 1000, 878},
	{"key4", 5000, 878},
	{"key4", 10000, 878},
	{"key4", 100000, 19896},
	{"key4", 1000000, 187582},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 1, 0},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 2, 0},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 3, 0},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 5, 4},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 7, 4},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10, 8},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16, 8},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 50, 18},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 100, 18},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 500, 18},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 1000, 964},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 5000, 1334},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10000, 5716},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 100000, 54971},
	{"someKey_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 1000000, 580644},
	{"short", 1, 0},
	{"short", 2, 1},
	{"short", 3, 2},
	{"short", 5, 4},
	{"short", 7, 6},
	{"short", 10, 6},
	{"short", 16, 12},
	{"short", 50, 12},
	{"short", 100, 12},
	{"short", 500, 172},
	{"short", 1000, 569},
	{"short", 5000, 4565},
	{"short", 10000, 4565},
	{"short", 100000, 94116},
	{"short", 1000000, 826962},
	{"short", 8388608, 6473107},
	{"short", 16777216, 10975421},
	{"short", 1073741824, 304085075},
	{"short", 4294967295, 3727818566},
	{"a", 1, 0},
	{"a", 2, 1},
	{"a", 3, 1},
	{"a", 5, 4},
	{"a", 7, 4},
	{"a", 10, 4},
	{"a", 16, 13},
	{"a", 50, 34},
	{"a", 100, 34},
	{"a", 500, 34},
	{"a", 1000, 900},
	{"a", 5000, 1565},
	{"a", 10000, 1565},
	{"a", 100000, 55594},
	{"a", 1000000, 570739},
	{"a", 8388608, 7695180},
	{"a", 16777216, 11809035},
	{"a", 1073741824, 207565192},
	{"a", 4294967295, 2134617590},
	{"ab", 1, 0},
	{"ab", 2, 1},
	{"ab", 3, 2},
	{"ab", 5, 2},
	{"ab", 7, 2},
	{"ab", 10, 2},
	{"ab", 16, 2},
	{"ab", 50, 35},
	{"ab", 100, 35},
	{"ab", 500, 429},
	{"ab", 1000, 429},
	{"ab", 5000, 4150},
	{"ab", 10000, 9404},
	{"ab", 100000, 13199},
	{"ab", 1000000, 103282},
	{"abc", 1, 0},
	{"abc", 2, 0},
	{"abc", 3, 0},
	{"abc", 5, 0},
	{"abc", 7, 5},
	{"abc", 10, 5},
	{"abc", 16, 15},
	{"abc", 50, 47},
	{"abc", 100, 69},
	{"abc", 500, 371},
	{"abc", 1000, 985},
	{"abc", 5000, 3019},
	{"abc", 10000, 3019},
	{"abc", 100000, 44962},
	{"abc", 1000000, 391441},
	{"mcrouter:pool:regional:0001", 1, 0},
	{"mcrouter:pool:regional:0001", 2, 0},
	{"mcrouter:pool:regional:0001", 3, 2},
	{"mcrouter:pool:regional:0001", 5, 3},
	{"mcrouter:pool:regional:0001", 7, 3},
	{"mcrouter:pool:regional:0001", 10, 3},
	{"mcrouter:pool:regional:0001", 16, 13},
	{"mcrouter:pool:regional:0001", 50, 27},
	{"mcrouter:pool:regional:0001", 100, 52},
	{"mcrouter:pool:regional:0001", 500, 493},
	{"mcrouter:pool:regional:0001", 1000, 829},
	{"mcrouter:pool:regional:0001", 5000, 4143},
	{"mcrouter:pool:regional:0001", 10000, 7488},
	{"mcrouter:pool:regional:0001", 100000, 36359},
	{"mcrouter:pool:regional:0001", 1000000, 669957},
	{"mcrouter:pool:regional:0001", 8388608, 6119431},
	{"mcrouter:pool:regional:0001", 16777216, 13341220},
	{"mcrouter:pool:regional:0001", 1073741824, 656478206},
	{"mcrouter:pool:regional:0001", 4294967295, 3984053628},
	{"mcrouter:pool:regional:0002", 1, 0},
	{"mcrouter:pool:regional:0002", 2, 1},
	{"mcrouter:pool:regional:0002", 3, 2},
	{"mcrouter:pool:regional:0002", 5, 4},
	{"mcrouter:pool:regional:0002", 7, 5},
	{"mcrouter:pool:regional:0002", 10, 5},
	{"mcrouter:pool:regional:0002", 16, 13},
	{"mcrouter:pool:regional:0002", 50, 13},
	{"mcrouter:pool:regional:0002", 100, 13},
	{"mcrouter:pool:regional:0002", 500, 405},
	{"mcrouter:pool:regional:0002", 1000, 788},
	{"mcrouter:pool:regional:0002", 5000, 788},
	{"mcrouter:pool:regional:0002", 10000, 6708},
	{"mcrouter:pool:regional:0002", 100000, 65904},
	{"mcrouter:pool:regional:0002", 1000000, 589635},
	{"user:12345:profile", 1, 0},
	{"user:12345:profile", 2, 1},
	{"user:12345:profile", 3, 1},
	{"user:12345:profile", 5, 4},
	{"user:12345:profile", 7, 4},
	{"user:12345:profile", 10, 4},
	{"user:12345:profile", 16, 10},
	{"user:12345:profile", 50, 29},
	{"user:12345:profile", 100, 77},
	{"user:12345:profile", 500, 77},
	{"user:12345:profile", 1000, 712},
	{"user:12345:profile", 5000, 4344},
	{"user:12345:profile", 10000, 5119},
	{"user:12345:profile", 100000, 96279},
	{"user:12345:profile", 1000000, 368844},
	{"user:67890:timeline", 1, 0},
	{"user:67890:timeline", 2, 0},
	{"user:67890:timeline", 3, 0},
	{"user:67890:timeline", 5, 0},
	{"user:67890:timeline", 7, 5},
	{"user:67890:timeline", 10, 7},
	{"user:67890:timeline", 16, 15},
	{"user:67890:timeline", 50, 15},
	{"user:67890:timeline", 100, 73},
	{"user:67890:timeline", 500, 104},
	{"user:67890:timeline", 1000, 748},
	{"user:67890:timeline", 5000, 3756},
	{"user:67890:timeline", 10000, 6138},
	{"user:67890:timeline", 100000, 86163},
	{"user:67890:timeline", 1000000, 86163},
	{"cache:item:999999", 1, 0},
	{"cache:item:999999", 2, 1},
	{"cache:item:999999", 3, 2},
	{"cache:item:999999", 5, 2},
	{"cache:item:999999", 7, 2},
	{"cache:item:999999", 10, 2},
	{"cache:item:999999", 16, 2},
	{"cache:item:999999", 50, 17},
	{"cache:item:999999", 100, 17},
	{"cache:item:999999", 500, 184},
	{"cache:item:999999", 1000, 673},
	{"cache:item:999999", 5000, 3278},
	{"cache:item:999999", 10000, 5532},
	{"cache:item:999999", 100000, 72068},
	{"cache:item:999999", 1000000, 180793},
	{"", 1, 0},
	{"", 2, 1},
	{"", 3, 1},
	{"", 5, 1},
	{"", 7, 6},
	{"", 10, 8},
	{"", 16, 12},
	{"", 50, 12},
	{"", 100, 72},
	{"", 500, 72},
	{"", 1000, 72},
	{"", 5000, 3031},
	{"", 10000, 3031},
	{"", 100000, 86003},
	{"", 1000000, 407687},
}

func TestFurcHashGolden(t *testing.T) {
	for _, c := range furcGolden {
		if got := FurcHash([]byte(c.key), c.m); got != c.want {
			t.Errorf("FurcHash(%q, %d) = %d, want %d", c.key, c.m, got, c.want)
		}
	}
}

// TestFurcHashPowersOfTwo is mcrouter's TEST(ch3, power_of_two_boundaries).
func TestFurcHashPowersOfTwo(t *testing.T) {
	for _, c := range []struct{ m, want uint32 }{
		{4, 0}, {8, 7}, {32, 22}, {64, 22},
		{128, 115}, {256, 115}, {512, 413}, {1024, 950},
		{2048, 1735}, {4096, 3375}, {8192, 3375},
	} {
		if got := FurcHash([]byte("key0"), c.m); got != c.want {
			t.Errorf("FurcHash(%q, %d) = %d, want %d", "key0", c.m, got, c.want)
		}
	}
}

// furcChecksum is the polynomial checksum mcrouter's tests use:
// acc = acc*31 + hash over the keys fmt.Sprintf(format, i), i < n.
func furcChecksum(format string, n int, hash func(key []byte) uint32) uint32 {
	var acc uint32
	buf := make([]byte, 0, 32)
	for i := range n {
		buf = fmt.Appendf(buf[:0], format, i)
		acc = acc*31 + hash(buf)
	}
	return acc
}

// TestFurcHashChecksums is mcrouter's TEST(ch3, bulk_checksum): 100,000
// keys "k<i>" per pool size. It covers the long retry paths (pool sizes
// far from a power of two) and sizes beyond FurcMaxPoolSize.
func TestFurcHashChecksums(t *testing.T) {
	cases := []struct{ m, want uint32 }{
		{2, 1346413954},
		{3, 914505363},
		{5, 1517365794},
		{7, 4252552508},
		{10, 2894016351},
		{16, 2995729350},
		{50, 1717182892},
		{100, 2289223413},
		{500, 2400597860},
		{1000, 2251851331},
		{5000, 2711796627},
		{10000, 1328492545},
		{100000, 1053928120},
		{1000000, 209068971},
		{8388608, 2328588562},
		{16777216, 1406750828},
		{100000000, 55292389},
		{1073741824, 1798155495},
		{4294967295, 504907336},
	}
	if testing.Short() || raceEnabled {
		cases = cases[:4]
	}
	for _, c := range cases {
		got := furcChecksum("k%d", 100000, func(key []byte) uint32 { return FurcHash(key, c.m) })
		if got != c.want {
			t.Errorf("m=%d: checksum %d, want %d", c.m, got, c.want)
		}
	}
}

// TestFurcHashConsistent checks the property mcrouter's
// consistency_at_power_of_two_boundaries and verify_correctness check:
// growing the pool by one server moves a key only onto the new server.
func TestFurcHashConsistent(t *testing.T) {
	for _, m := range []uint32{2, 3, 4, 7, 8, 16, 63, 64, 100, 1024, 8192} {
		for i := range 2000 {
			key := fmt.Appendf(nil, "cons_%d", i)
			at, next := FurcHash(key, m), FurcHash(key, m+1)
			if at >= m || next > m {
				t.Fatalf("FurcHash(%q): %d for m=%d, %d for m=%d", key, at, m, next, m+1)
			}
			if at != next && next != m {
				t.Errorf("FurcHash(%q) moved from %d to %d when m grew to %d", key, at, next, m+1)
			}
		}
	}
}

// TestFurcHashEdges follows mcrouter's m_zero_returns_zero,
// zero_length_key and binary_key_with_embedded_nulls.
func TestFurcHashEdges(t *testing.T) {
	if got := FurcHash([]byte("key"), 0); got != 0 {
		t.Errorf("FurcHash(key, 0) = %d, want 0", got)
	}
	if got := FurcHash(nil, 1000); got != FurcHash([]byte{}, 1000) {
		t.Errorf("nil and empty keys differ: %d", got)
	}
	h1 := FurcHash([]byte("abc\x00def"), 1000000)
	h2 := FurcHash([]byte("abc\x00xyz"), 1000000)
	h3 := FurcHash([]byte("abc"), 1000000)
	if h1 == h2 || h1 == h3 {
		t.Errorf("bytes after a NUL are ignored: %d %d %d", h1, h2, h3)
	}
}

func TestFurcHashAllocs(t *testing.T) {
	key := []byte("user:12345:profile:x")
	if n := testing.AllocsPerRun(100, func() { FurcHash(key, 1000) }); n != 0 {
		t.Errorf("FurcHash allocates %v times", n)
	}
}

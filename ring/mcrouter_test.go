package ring

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// signedBytes returns the 256 bytes mcrouter's hash tests build from the
// chars -128..127, in that order.
func signedBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i - 128)
	}
	return b
}

func reversed(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}

// unitWeights returns n weights of w.
func unitWeights(n int, w float64) []float64 {
	if n == FurcMaxPoolSize && w == 1 {
		return maxUnitWeights()
	}
	ws := make([]float64, n)
	for i := range ws {
		ws[i] = w
	}
	return ws
}

// maxUnitWeights is FurcMaxPoolSize weights of 1, made once.
var maxUnitWeights = sync.OnceValue(func() []float64 {
	ws := make([]float64, FurcMaxPoolSize)
	for i := range ws {
		ws[i] = 1
	}
	return ws
})

// hashBasics are the values of mcrouter's TEST(Ch3Func, basic)
// (mcrouter/lib/test/Ch3HashTest.cpp); TEST(WeightedCh3HashFunc, basic)
// (WeightedCh3HashFuncTest.cpp) expects the same with every weight 1.
var hashBasics = []struct {
	key  []byte
	n    int
	want int
}{
	{[]byte("sample"), 100, 97},
	{[]byte("sample"), 1, 0},
	{[]byte(""), 100, 72},
	{[]byte(""), 1, 0},
	{[]byte(""), FurcMaxPoolSize, 6173600},
	{[]byte("sample"), FurcMaxPoolSize, 5167780},
	{signedBytes(), 99999, 31015},
	{reversed(signedBytes()), 99999, 67101},
}

func TestCh3Basic(t *testing.T) {
	for _, c := range hashBasics {
		if got := Ch3(c.key, c.n); got != c.want {
			t.Errorf("Ch3(%q, %d) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

// countKeys counts where pick puts the keys "0", "1", ... "<n-1>", the
// keys of mcrouter's distribution tests (folly::to<std::string>(i)).
func countKeys(keys, servers int, pick func(key []byte) int) []int {
	counts := make([]int, servers)
	for i := range keys {
		counts[pick(strconv.AppendInt(nil, int64(i), 10))]++
	}
	return counts
}

// TestCh3Counts is mcrouter's TEST(Ch3Func, ch3_3) and
// TEST(Ch3HashFunc, ch3_10).
func TestCh3Counts(t *testing.T) {
	got := countKeys(1000, 3, func(k []byte) int { return Ch3(k, 3) })
	if want := []int{307, 342, 351}; !slices.Equal(got, want) {
		t.Errorf("Ch3 over 3 servers: %v, want %v", got, want)
	}
	got = countKeys(10000, 10, func(k []byte) int { return Ch3(k, 10) })
	if want := []int{995, 955, 1046, 968, 1032, 972, 1016, 1038, 1010, 968}; !slices.Equal(got, want) {
		t.Errorf("Ch3 over 10 servers: %v, want %v", got, want)
	}
}

func TestCh3PoolSize(t *testing.T) {
	for _, n := range []int{0, -1, FurcMaxPoolSize + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Ch3 over %d servers did not panic", n)
				}
			}()
			Ch3([]byte("k"), n)
		}()
	}
}

// TestCrc32Basic is mcrouter's TEST(Crc32Func, basic)
// (mcrouter/lib/test/Crc32HashTest.cpp).
func TestCrc32Basic(t *testing.T) {
	for _, c := range []struct {
		key  []byte
		n    int
		want int
	}{
		{[]byte("sample"), 100, 7},
		{[]byte("sample"), 1, 0},
		{[]byte(""), 100, 0},
		{[]byte(""), 1, 0},
		{[]byte(""), 1<<30 - 1, 0},
		{[]byte("sample"), 1<<30 - 1, 822834884},
		{signedBytes(), 99999, 11697},
		{reversed(signedBytes()), 99999, 97630},
	} {
		if got := Crc32(c.key, c.n); got != c.want {
			t.Errorf("Crc32(%q, %d) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

// TestWeightedCh3Basic is mcrouter's TEST(WeightedCh3HashFunc, basic) and
// zeroWeight.
func TestWeightedCh3Basic(t *testing.T) {
	for _, c := range hashBasics {
		if c.n == FurcMaxPoolSize && (testing.Short() || raceEnabled) {
			continue // 64 MB of weights
		}
		if got := WeightedCh3(c.key, unitWeights(c.n, 1)); got != c.want {
			t.Errorf("WeightedCh3(%q, %d weights of 1) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		key     string
		n, want int
	}{
		{"sample", 1, 0},
		{"", 1, 0},
		{"sample", 100, 59},
		{"", 100, 45},
	} {
		if got := WeightedCh3([]byte(c.key), unitWeights(c.n, 0)); got != c.want {
			t.Errorf("WeightedCh3(%q, %d weights of 0) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

// TestWeightedCh3Counts is mcrouter's TEST(WeightedCh3HashFunc,
// reducedWeight) and randomWeights.
func TestWeightedCh3Counts(t *testing.T) {
	weights := []float64{1, 1, 0.7}
	got := countKeys(1000, 3, func(k []byte) int {
		w := WeightedCh3(k, weights)
		if c := Ch3(k, 3); c != 2 && c != w {
			t.Errorf("key %q moved from %d to %d, whose weight is 1", k, c, w)
		}
		return w
	})
	if want := []int{341, 371, 288}; !slices.Equal(got, want) {
		t.Errorf("WeightedCh3 over %v: %v, want %v", weights, got, want)
	}
	weights = []float64{0.429, 0.541, 0.117, 0.998, 0.283, 0.065, 0.109, 0.042, 0.676, 0.943}
	got = countKeys(10000, 10, func(k []byte) int { return WeightedCh3(k, weights) })
	if want := []int{1016, 1252, 288, 2354, 661, 195, 247, 122, 1668, 2197}; !slices.Equal(got, want) {
		t.Errorf("WeightedCh3 over %v: %v, want %v", weights, got, want)
	}
}

// TestWeightedCh3Checksums is mcrouter's bulkChecksumUnitWeights,
// bulkChecksumHalfWeights, bulkChecksumZeroWeights,
// longKeyBulkChecksumHalfWeights, longKeyBulkChecksumZeroWeights and
// mixedWeightsDistribution (WeightedCh3HashFuncTest.cpp). Weights of 0.5
// and 0 take the salted retries; 0 takes all 32 of them.
func TestWeightedCh3Checksums(t *testing.T) {
	long := make([]byte, 128)
	for i := range long {
		long[i] = 'A' + byte(i%26)
	}
	longFormat := string(long) + "%d"
	type pool struct {
		n    int
		want uint32
	}
	for _, c := range []struct {
		name   string
		format string
		keys   int
		weight float64
		pools  []pool
	}{
		{"unit", "k%d", 100000, 1, []pool{{2, 1346413954}, {3, 914505363}, {7, 4252552508}, {10, 2894016351}, {16, 2995729350}, {100, 2289223413}, {1000, 2251851331}, {10000, 1328492545}, {100000, 1053928120}}},
		{"half", "k%d", 10000, 0.5, []pool{{2, 2395690262}, {10, 547444706}, {100, 2951198297}, {1000, 1336857622}, {10000, 3378951161}}},
		{"zero", "k%d", 10000, 0, []pool{{2, 3431444300}, {10, 1290067504}, {100, 2604325093}, {1000, 337394182}}},
		{"long half", longFormat, 10000, 0.5, []pool{{2, 3784301429}, {10, 707485837}, {100, 4273108085}, {1000, 954106693}}},
		{"long zero", longFormat, 10000, 0, []pool{{2, 2171781178}, {10, 2937312667}, {100, 532711027}}},
	} {
		pools := c.pools
		if testing.Short() || raceEnabled {
			if c.keys > 10000 {
				continue
			}
			pools = pools[:1]
		}
		for _, p := range pools {
			weights := unitWeights(p.n, c.weight)
			got := furcChecksum(c.format, c.keys, func(key []byte) uint32 { return uint32(WeightedCh3(key, weights)) })
			if got != p.want {
				t.Errorf("%s weights, n=%d: checksum %d, want %d", c.name, p.n, got, p.want)
			}
		}
	}

	mixed := []float64{1.0, 0.5, 0.0, 0.75, 1.0}
	counts := make([]int, len(mixed))
	got := furcChecksum("d%d", 10000, func(key []byte) uint32 {
		i := WeightedCh3(key, mixed)
		counts[i]++
		return uint32(i)
	})
	if got != 2309057571 || counts[2] != 0 {
		t.Errorf("weights %v: checksum %d, want 2309057571; counts %v", mixed, got, counts)
	}
}

// TestWeightedCh3Consistent is mcrouter's weightReductionConsistency:
// lowering one server's weight moves keys only off that server.
func TestWeightedCh3Consistent(t *testing.T) {
	full := unitWeights(100, 1)
	reduced := unitWeights(100, 1)
	reduced[42] = 0.3
	moved := 0
	for i := range 10000 {
		key := fmt.Appendf(nil, "cons_%d", i)
		f, r := WeightedCh3(key, full), WeightedCh3(key, reduced)
		switch {
		case f != 42 && f != r:
			t.Errorf("key %q moved from %d to %d when only server 42 changed", key, f, r)
		case f == 42 && r != 42:
			moved++
		}
	}
	if moved == 0 {
		t.Error("no key left server 42")
	}
}

func TestMcrouterHashAllocs(t *testing.T) {
	key := []byte("user:12345:profile:x")
	long := make([]byte, 300)
	zero := unitWeights(100, 0)
	for name, f := range map[string]func(){
		"Ch3":                  func() { Ch3(key, 1000) },
		"Crc32":                func() { Crc32(key, 1000) },
		"WeightedCh3 (salted)": func() { WeightedCh3(key, zero) },
		"RoutingKeyHash":       func() { RoutingKeyHash(key) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
	// Beyond 256 bytes mcrouter salts the key on the heap too.
	if n := testing.AllocsPerRun(100, func() { WeightedCh3(long, zero) }); n != 1 {
		t.Errorf("WeightedCh3 of a 300-byte key allocates %v times, want 1", n)
	}
}

func TestRoutingKey(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"foo", "foo"},
		{"/region/cluster/foo", "foo"},
		{"/region/cluster/foo|#|bar", "foo"},
		{"foo|#|bar|#|baz", "foo"},
		{"foo|bar#|", "foo|bar#|"},
		{"/region/cluster", "/region/cluster"},
		{"/region/", "/region/"},
		{"/a/b/", ""},
		{"//", "//"},
		{"///x", "x"},
		{"a/b/c/d", "a/b/c/d"},
		{"|#|", ""},
		{"", ""},
	} {
		if got := RoutingKey([]byte(c.key)); string(got) != c.want {
			t.Errorf("RoutingKey(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}

// TestKeyFractionRange transcribes mcrouter's integration test
// mcrouter/test/test_shadow.py (with test_shadow.json and
// runtime_vars_file.json): of the keys prefix+"0" .. prefix+"99", exactly
// those listed are shadowed by a key_fraction_range.
func TestKeyFractionRange(t *testing.T) {
	for _, c := range []struct {
		prefix     string
		start, end float64
		shadowed   []int
	}{
		{"f", 0, 0.1, []int{5, 7, 13, 33, 43, 46, 58, 71, 83, 85, 89, 91, 93}},       // test_normal_shadow
		{"f", 0.4, 0.5, []int{9, 10, 20, 26, 32, 34, 42, 47, 54, 63, 64, 98}},        // test_runtime_variables_override_key_fraction
		{"reg_f", 0, 0.1, []int{20, 30, 39, 57, 69, 71}},                             // test_regional_shadow
		{"b_migrate", 0, 0.1, []int{26, 30, 39, 63}},                                 // test_migrated_shadow
		{"b_old", 0, 0.1, []int{10, 33, 35, 43, 45, 46, 47, 62, 85}},                 // test_migrated_old_shadow
		{"b_new", 0, 0.1, []int{10, 11, 15, 34, 40, 43, 47, 71, 93}},                 // test_migrated_new_shadow
		{"/region/cluster/b_new", 0, 0.1, []int{10, 11, 15, 34, 40, 43, 47, 71, 93}}, // a routing prefix does not count
	} {
		r, err := NewKeyFractionRange(c.start, c.end)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for i := range 100 {
			if r.Contains(RoutingKey(fmt.Appendf(nil, "%s%d|#|x", c.prefix, i))) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, c.shadowed) {
			t.Errorf("%q keys in [%v, %v]: %v, want %v", c.prefix, c.start, c.end, got, c.shadowed)
		}
	}
}

func TestNewKeyFractionRange(t *testing.T) {
	for _, c := range []struct {
		start, end float64
		want       KeyFractionRange
	}{
		{0, 1, KeyFractionRange{0, 0xffffffff}},
		{0, 0.1, KeyFractionRange{0, 429496729}},
		{0.4, 0.5, KeyFractionRange{1717986918, 2147483647}},
		{0.5, 0.5, KeyFractionRange{2147483647, 2147483647}},
	} {
		got, err := NewKeyFractionRange(c.start, c.end)
		if err != nil || got != c.want {
			t.Errorf("NewKeyFractionRange(%v, %v) = %v, %v; want %v", c.start, c.end, got, err, c.want)
		}
	}
	// test_shadow.json's broken shadows; ShadowSettings refuses them.
	for _, c := range [][2]float64{{-1, 15}, {0.6, 0.5}, {0, 1.01}, {-0.1, 0}} {
		if _, err := NewKeyFractionRange(c[0], c[1]); !errors.Is(err, ErrKeyFractionRange) {
			t.Errorf("NewKeyFractionRange(%v, %v): %v, want %v", c[0], c[1], err, ErrKeyFractionRange)
		}
	}
}

func BenchmarkCh3(b *testing.B) {
	key := []byte("user:12345:profile:x") // 20 bytes
	b.ReportAllocs()
	b.SetBytes(int64(len(key)))
	for i := 0; b.Loop(); i++ {
		key[19] = byte(i)
		Ch3(key, 1000)
	}
}

func BenchmarkWeightedCh3(b *testing.B) {
	key := []byte("user:12345:profile:x")
	weights := unitWeights(1000, 0.5)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key[19] = byte(i)
		WeightedCh3(key, weights)
	}
}

func BenchmarkSpookyHashV2_32(b *testing.B) {
	key := []byte("user:12345:profile:x")
	b.ReportAllocs()
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		SpookyHashV2_32(key, 0)
	}
}

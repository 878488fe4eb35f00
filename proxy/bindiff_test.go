package proxy

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

var (
	binDiffSeed  = flag.Uint64("bindiff.seed", 0, "seed of TestBinaryDiffRandom's request stream (0: the fixed seeds, then -bindiff.seeds new ones)")
	binDiffSeeds = flag.Int("bindiff.seeds", 0, "number of new random seeds TestBinaryDiffRandom runs after its fixed ones "+
		"(for a long hunt: go test ./proxy -run TestBinaryDiffRandom -bindiff.seeds=1000)")
	binDiffN = flag.Int("bindiff.n", 600, "number of requests TestBinaryDiffRandom sends for each seed")
)

func binDiffRunSeeds() []uint64 {
	if *binDiffSeed != 0 {
		return []uint64{*binDiffSeed}
	}
	seeds := []uint64{1, 2}
	if testutil.RaceEnabled {
		seeds = seeds[:1]
	}
	for range *binDiffSeeds {
		seeds = append(seeds, rand.Uint64()|1)
	}
	return seeds
}

// startDiffMemcached starts a memcached as the server tests' differentials
// do: without its background LRU threads (see server/diff_test.go), and
// with memory enough that nothing is evicted.
func startDiffMemcached(t *testing.T) string {
	t.Helper()
	return testutil.StartMemcached(t, "-m", "256", "-o", "no_lru_crawler,no_lru_maintainer")
}

// TestBinaryDiffRandom sends the binary request stream of the server's
// TestBinaryDiffRandom (see testutil.BinaryDiff) through the proxy and to a
// memcached directly, and requires the same responses: with one memcached
// behind the proxy, every opcode but stat (whose keys and counters are the
// proxy's own); with three, the requests routed by key only. Both data
// paths: goroutines, and Config.EventLoop.
func TestBinaryDiffRandom(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	for _, loop := range []bool{false, true} {
		for _, backends := range []int{1, 3} {
			for _, seed := range binDiffRunSeeds() {
				t.Run(fmt.Sprintf("loop=%v/backends=%d/%d", loop, backends, seed), func(t *testing.T) {
					addrs := make([]string, backends)
					for i := range addrs {
						addrs[i] = startDiffMemcached(t)
					}
					p := serveProxy(t, Config{EventLoop: loop}, poolYAML("127.0.0.1:0", addrs))
					testutil.BinaryDiff(t, testutil.BinaryDiffConfig{
						Seed: seed, Requests: *binDiffN, Batch: 8, ItemMax: 1 << 20,
						// The proxy answers a value over 1 MiB itself,
						// and leaves the old value in place (README).
						ValueMax:  1 << 20,
						SameCAS:   backends == 1,
						KeyScoped: backends > 1,
						NoStat:    true,
					}, [2]string{"proxy", "memcached"}, [2]string{p.Addrs()["alpha"].String(), startDiffMemcached(t)})
				})
			}
		}
	}
}

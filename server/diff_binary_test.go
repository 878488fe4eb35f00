package server_test

import (
	"flag"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/corvidcache/corvid/internal/testutil"
)

var (
	binDiffSeed  = flag.Uint64("bindiff.seed", 0, "seed of TestBinaryDiffRandom's request stream (0: the fixed seeds, then -bindiff.seeds new ones)")
	binDiffSeeds = flag.Int("bindiff.seeds", 0, "number of new random seeds TestBinaryDiffRandom runs after its fixed ones "+
		"(for a long hunt: go test ./server -run TestBinaryDiffRandom -bindiff.seeds=2000)")
	binDiffN = flag.Int("bindiff.n", 1500, "number of requests TestBinaryDiffRandom sends for each seed")
)

// binDiffFixedSeeds are the seeds TestBinaryDiffRandom always runs (the
// first of them only under the race detector, which is slower).
var binDiffFixedSeeds = []uint64{1, 2, 3}

func binDiffRunSeeds() []uint64 {
	if *binDiffSeed != 0 {
		return []uint64{*binDiffSeed}
	}
	seeds := append([]uint64(nil), binDiffFixedSeeds...)
	if testutil.RaceEnabled {
		seeds = seeds[:1]
	}
	for range *binDiffSeeds {
		seeds = append(seeds, rand.Uint64()|1)
	}
	return seeds
}

// TestBinaryDiffRandom sends a seeded random stream of binary requests,
// valid and not, in pipelined batches cut into writes at random byte
// boundaries, to corvid and to memcached, and requires the same responses
// and the same closed connections (see testutil.BinaryDiff). Each seed has a
// new pair of servers.
func TestBinaryDiffRandom(t *testing.T) {
	if testutil.MemcachedPath() == "" {
		t.Skip("memcached is not installed")
	}
	for _, seed := range binDiffRunSeeds() {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			mc := startMemcached(t)
			testutil.BinaryDiff(t, testutil.BinaryDiffConfig{
				Seed: seed, Requests: *binDiffN, Batch: 8, ItemMax: *diffItemMax, SameCAS: !*diffSelf,
			}, [2]string{"corvid", "memcached"}, [2]string{startCorvid(t), mc})
		})
	}
}

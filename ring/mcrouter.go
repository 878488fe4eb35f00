package ring

import (
	"hash/crc32"
	"math"
	"strconv"
)

// Ch3 is mcrouter's Ch3HashFunc, the default hash of PoolRoute and
// HashRoute: FurcHash of the key over a pool of n servers. It returns an
// index in 0..n-1. mcrouter refuses a Ch3 pool of n < 1 or
// n > FurcMaxPoolSize when it reads its configuration; Ch3 panics for
// them, so check n when building the pool.
func Ch3(key []byte, n int) int {
	checkPoolSize("Ch3", n)
	return int(FurcHash(key, uint32(n)))
}

// Crc32 is mcrouter's Crc32HashFunc ("hash_func": "Crc32"): the CRC-32
// (IEEE) of the key with its top bit cleared, modulo n. It panics if n is
// not positive (mcrouter divides by zero).
func Crc32(key []byte, n int) int {
	if n <= 0 {
		panic("ring: Crc32 of a pool of " + strconv.Itoa(n) + " servers")
	}
	return int(uint64(crc32.ChecksumIEEE(key)&0x7fffffff) % uint64(n))
}

const (
	weightedCh3Seed  = 0xface2014 // seed of WeightedCh3's SpookyHash test
	weightedCh3Tries = 32         // kNumTries
	maxSaltLen       = 20         // digits of a size_t salt
	maxStackKeyLen   = 256        // longer keys are salted on the heap
)

// WeightedCh3 is mcrouter's WeightedCh3HashFunc ("hash_func":
// "WeightedCh3"): Ch3 over len(weights) servers, where server i keeps a
// key only with probability weights[i]. It picks i = FurcHash(key); if the
// key's SpookyHashV2_32 (seed 0xface2014) is below
// weights[i]*(2^32-1) (truncated to an integer) the key stays on i,
// otherwise the key is salted with the decimal digits of 0, 1, 2, ... in
// turn (key+"0", key+"1", ...) and both hashes are taken again, up to 32
// tries in all; when every try fails, the last try's server is the answer.
// A server of weight 1 keeps all its keys (but for the one hash value
// 2^32-1); keys of a server of weight 0 go to the others.
//
// Weights must lie in [0, 1], as mcrouter's configuration requires (a
// negative weight acts as 0 here). It panics if len(weights) is 0 or
// above FurcMaxPoolSize, which mcrouter refuses.
func WeightedCh3(key []byte, weights []float64) int {
	n := len(weights)
	checkPoolSize("WeightedCh3", n)
	var stack [maxStackKeyLen + maxSaltLen]byte
	var buf []byte // key followed by the salt, once a retry needs it
	keyLen := len(key)
	index := 0
	for salt := range weightedCh3Tries {
		index = int(FurcHash(key, uint32(n)))
		// mcrouter keeps the 32-bit hash and the scaled weight in 64-bit
		// integers; the weight converts to an integer by truncation.
		p := uint64(SpookyHashV2_32(key, weightedCh3Seed))
		w := uint64(0)
		if x := weights[index] * math.MaxUint32; x > 0 {
			w = uint64(x)
		}
		if p < w {
			return index
		}
		if buf == nil {
			if keyLen+maxSaltLen <= len(stack) {
				buf = stack[:0]
			} else {
				buf = make([]byte, 0, keyLen+maxSaltLen)
			}
			buf = append(buf, key...)
		}
		// mcrouter writes the salt's digits least significant first, so
		// salt 10 appends "01", salt 23 appends "32".
		buf = buf[:keyLen]
		for s := salt; ; s /= 10 {
			buf = append(buf, byte('0'+s%10))
			if s < 10 {
				break
			}
		}
		key = buf
	}
	return index
}

// checkPoolSize panics unless 1 <= n <= FurcMaxPoolSize.
func checkPoolSize(what string, n int) {
	if n < 1 || n > FurcMaxPoolSize {
		panic("ring: " + what + " pool size " + strconv.Itoa(n) + " out of range")
	}
}

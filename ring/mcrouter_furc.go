package ring

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// FurcMaxPoolSize is the largest pool mcrouter's consistent hashing is
// meant for (furc_maximum_pool_size, 2^23). mcrouter refuses a Ch3 or
// WeightedCh3 pool with more servers; FurcHash itself accepts any size.
const FurcMaxPoolSize = 1 << furcShift

const (
	furcSeed     = 4193360111 // the seed of the key's first murmur hash
	furcShift    = 23         // distance between the bits of one draw
	furcMaxTries = 32         // draws before furc_hash gives up and answers 0
	furcWords    = 32         // hash words FurcHash keeps (see furcBits)
	murmurMul    = 0xc6a4a7935bd1e995
)

// FurcHash is mcrouter's furc_hash (mcrouter/lib/fbi/hash.c), the
// consistent hash behind Ch3: it maps key to 0..m-1 so that growing m to
// m+1 moves only keys that then land on m. The key is hashed by itself
// (MurmurHash64A with furc_hash's seed, then re-hashed word after word
// for more bits), so FurcHash(key, m) is what mcrouter computes for
// furc_hash(key, len, m). m of 0 or 1 gives 0. It is pure, safe for
// concurrent use and does not allocate.
func FurcHash(key []byte, m uint32) uint32 {
	if m <= 1 {
		return 0
	}
	var f furcBits
	f.key = key
	// d is the number of bits of the candidate; a is the index of the next
	// bit to read. a is not reset between tries: every try reads fresh
	// bits further along the stream.
	d := uint32(bits.Len32(m - 1))
	a := d
	for range furcMaxTries {
		// Find the top bit of the candidate: the first of the bits
		// d, d-1, ... that is set.
		for f.bit(a) == 0 {
			d--
			if d == 0 {
				return 0
			}
			a = d
		}
		a += furcShift
		num := uint32(1)
		for i := uint32(0); i < d-1; i++ {
			num = num<<1 | f.bit(a)
			a += furcShift
		}
		if num < m {
			return num
		}
	}
	return 0
}

// furcBits is furc_hash's stream of pseudo-random bits for one key: word
// 0 is MurmurHash64A of the key, word n the re-hash of word n-1, and bit
// i is bit i%64 of word i/64. The first furcWords words are kept; later
// ones (needed only after several unlucky tries) are recomputed from
// there, which gives the same bits as furc_hash's larger cache.
type furcBits struct {
	key   []byte
	n     int // words[:n] are computed
	words [furcWords]uint64
	// far is word farOrd, the last word computed beyond words.
	far    uint64
	farOrd int
}

func (f *furcBits) bit(i uint32) uint32 {
	return uint32(f.word(int(i>>6))>>(i&63)) & 1
}

func (f *furcBits) word(ord int) uint64 {
	for f.n <= ord && f.n < furcWords {
		if f.n == 0 {
			f.words[0] = murmurHash64A(f.key, furcSeed)
		} else {
			f.words[f.n] = murmurRehash64A(f.words[f.n-1])
		}
		f.n++
	}
	if ord < f.n {
		return f.words[ord]
	}
	if f.farOrd < furcWords || f.farOrd > ord {
		f.far, f.farOrd = f.words[furcWords-1], furcWords-1
	}
	for f.farOrd < ord {
		f.far = murmurRehash64A(f.far)
		f.farOrd++
	}
	return f.far
}

// murmurHash64A is Austin Appleby's MurmurHash64A as mcrouter's hash.c
// has it (murmur_hash_64A), reading 8-byte words little-endian.
func murmurHash64A(key []byte, seed uint32) uint64 {
	const r = 47
	h := uint64(seed) ^ uint64(len(key))*murmurMul
	p := key
	for len(p) >= 8 {
		k := binary.LittleEndian.Uint64(p)
		k *= murmurMul
		k ^= k >> r
		k *= murmurMul
		h ^= k
		h *= murmurMul
		p = p[8:]
	}
	if len(p) > 0 {
		for i := len(p) - 1; i >= 0; i-- {
			h ^= uint64(p[i]) << (8 * i)
		}
		h *= murmurMul
	}
	h ^= h >> r
	h *= murmurMul
	h ^= h >> r
	return h
}

// murmurRehash64A is murmur_hash_64A of the 8 bytes of k with furc's seed
// (murmur_rehash_64A).
func murmurRehash64A(k uint64) uint64 {
	const r = 47
	// The hash of an 8-byte message starts from seed ^ 8*m (mod 2^64).
	h := uint64(furcSeed ^ (8*murmurMul)&math.MaxUint64)
	k *= murmurMul
	k ^= k >> r
	k *= murmurMul
	h ^= k
	h *= murmurMul
	h ^= h >> r
	h *= murmurMul
	h ^= h >> r
	return h
}

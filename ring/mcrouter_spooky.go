package ring

import (
	"encoding/binary"
	"math/bits"
)

// SpookyHash V2 is Bob Jenkins' 128-bit non-cryptographic hash, in the
// form folly ships it (folly::hash::SpookyHashV2), which is the form
// mcrouter links. Bytes are read little-endian, as folly reads them on
// the little-endian machines mcrouter runs on, so the values here are the
// values mcrouter computes there.

// spookyConst is SpookyHash's sc_const.
const spookyConst = 0xdeadbeefdeadbeef

const (
	spookyBlock = 96  // bytes consumed by one mix of the long hash
	spookyShort = 192 // messages shorter than this take the short hash
)

// SpookyHashV2_128 returns folly's SpookyHashV2::Hash128 of data with the
// seeds seed1 and seed2: the two 64-bit halves of the hash. It is pure and
// safe for concurrent use.
func SpookyHashV2_128(data []byte, seed1, seed2 uint64) (uint64, uint64) {
	if len(data) < spookyShort {
		return spookyShortHash(data, seed1, seed2)
	}
	var s [12]uint64
	for i := 0; i < 12; i += 3 {
		s[i], s[i+1], s[i+2] = seed1, seed2, spookyConst
	}
	p := data
	for len(p) >= spookyBlock {
		spookyMix(&s, p)
		p = p[spookyBlock:]
	}
	// The last partial block is zero-padded and its length stored in the
	// block's last byte.
	var last [spookyBlock]byte
	copy(last[:], p)
	last[spookyBlock-1] = byte(len(p))
	for i := range s {
		s[i] += binary.LittleEndian.Uint64(last[8*i:])
	}
	spookyEndPartial(&s)
	spookyEndPartial(&s)
	spookyEndPartial(&s)
	return s[0], s[1]
}

// SpookyHashV2_64 returns folly's SpookyHashV2::Hash64 of data: the first
// half of SpookyHashV2_128 with both seeds equal to seed. It is pure and
// safe for concurrent use.
func SpookyHashV2_64(data []byte, seed uint64) uint64 {
	h, _ := SpookyHashV2_128(data, seed, seed)
	return h
}

// SpookyHashV2_32 returns folly's SpookyHashV2::Hash32 of data: the low 32
// bits of SpookyHashV2_64 with the seed widened to 64 bits. mcrouter uses
// it for a key's routing hash (seed 0, see RoutingKeyHash) and for
// WeightedCh3's weight test (seed 0xface2014). It is pure and safe for
// concurrent use.
func SpookyHashV2_32(data []byte, seed uint32) uint32 {
	h, _ := SpookyHashV2_128(data, uint64(seed), uint64(seed))
	return uint32(h)
}

// spookyShortHash is SpookyHash's Short, used for messages under 192
// bytes.
func spookyShortHash(data []byte, seed1, seed2 uint64) (uint64, uint64) {
	le := binary.LittleEndian
	n := len(data)
	a, b, c, d := seed1, seed2, uint64(spookyConst), uint64(spookyConst)
	p := data
	rem := n % 32
	if n > 15 {
		for len(p) >= 32 {
			c += le.Uint64(p)
			d += le.Uint64(p[8:])
			a, b, c, d = spookyShortMix(a, b, c, d)
			a += le.Uint64(p[16:])
			b += le.Uint64(p[24:])
			p = p[32:]
		}
		if rem >= 16 {
			c += le.Uint64(p)
			d += le.Uint64(p[8:])
			a, b, c, d = spookyShortMix(a, b, c, d)
			p = p[16:]
			rem -= 16
		}
	}
	// The last 0..15 bytes, and the length in the top byte of d.
	d += uint64(n) << 56
	switch rem {
	case 15:
		d += uint64(p[14]) << 48
		fallthrough
	case 14:
		d += uint64(p[13]) << 40
		fallthrough
	case 13:
		d += uint64(p[12]) << 32
		fallthrough
	case 12:
		d += uint64(le.Uint32(p[8:]))
		c += le.Uint64(p)
	case 11:
		d += uint64(p[10]) << 16
		fallthrough
	case 10:
		d += uint64(p[9]) << 8
		fallthrough
	case 9:
		d += uint64(p[8])
		fallthrough
	case 8:
		c += le.Uint64(p)
	case 7:
		c += uint64(p[6]) << 48
		fallthrough
	case 6:
		c += uint64(p[5]) << 40
		fallthrough
	case 5:
		c += uint64(p[4]) << 32
		fallthrough
	case 4:
		c += uint64(le.Uint32(p))
	case 3:
		c += uint64(p[2]) << 16
		fallthrough
	case 2:
		c += uint64(p[1]) << 8
		fallthrough
	case 1:
		c += uint64(p[0])
	case 0:
		c += spookyConst
		d += spookyConst
	}
	return spookyShortEnd(a, b, c, d)
}

func spookyShortMix(h0, h1, h2, h3 uint64) (uint64, uint64, uint64, uint64) {
	rot := bits.RotateLeft64
	h2 = rot(h2, 50)
	h2 += h3
	h0 ^= h2
	h3 = rot(h3, 52)
	h3 += h0
	h1 ^= h3
	h0 = rot(h0, 30)
	h0 += h1
	h2 ^= h0
	h1 = rot(h1, 41)
	h1 += h2
	h3 ^= h1
	h2 = rot(h2, 54)
	h2 += h3
	h0 ^= h2
	h3 = rot(h3, 48)
	h3 += h0
	h1 ^= h3
	h0 = rot(h0, 38)
	h0 += h1
	h2 ^= h0
	h1 = rot(h1, 37)
	h1 += h2
	h3 ^= h1
	h2 = rot(h2, 62)
	h2 += h3
	h0 ^= h2
	h3 = rot(h3, 34)
	h3 += h0
	h1 ^= h3
	h0 = rot(h0, 5)
	h0 += h1
	h2 ^= h0
	h1 = rot(h1, 36)
	h1 += h2
	h3 ^= h1
	return h0, h1, h2, h3
}

// spookyShortEnd mixes the short hash's four words; it returns the two
// that make the hash.
func spookyShortEnd(h0, h1, h2, h3 uint64) (uint64, uint64) {
	// Each step is h[j+1] ^= h[j]; h[j] = rot(h[j], r); h[j+1] += h[j],
	// going round the four words (j = 2, 3, 0, 1, ...).
	rot := bits.RotateLeft64
	h3 ^= h2
	h2 = rot(h2, 15)
	h3 += h2
	h0 ^= h3
	h3 = rot(h3, 52)
	h0 += h3
	h1 ^= h0
	h0 = rot(h0, 26)
	h1 += h0
	h2 ^= h1
	h1 = rot(h1, 51)
	h2 += h1
	h3 ^= h2
	h2 = rot(h2, 28)
	h3 += h2
	h0 ^= h3
	h3 = rot(h3, 9)
	h0 += h3
	h1 ^= h0
	h0 = rot(h0, 47)
	h1 += h0
	h2 ^= h1
	h1 = rot(h1, 54)
	h2 += h1
	h3 ^= h2
	h2 = rot(h2, 32)
	h3 += h2
	h0 ^= h3
	h3 = rot(h3, 25)
	h0 += h3
	h1 ^= h0
	h0 = rot(h0, 63)
	h1 += h0
	return h0, h1
}

// spookyMixRot are the rotations of the long hash's Mix, one per word.
var spookyMixRot = [12]int{11, 32, 43, 31, 17, 28, 39, 57, 55, 54, 22, 46}

// spookyMix consumes one 96-byte block into the long hash's state. For
// word i it adds data word i to s[i], xors s[i+10] into s[i+2], xors s[i]
// into s[i+11], rotates s[i], and adds s[i+1] to s[i+11] (indices mod 12).
func spookyMix(s *[12]uint64, p []byte) {
	_ = p[spookyBlock-1]
	for i := 0; i < 12; i++ {
		s[i] += binary.LittleEndian.Uint64(p[8*i:])
		s[(i+2)%12] ^= s[(i+10)%12]
		s[(i+11)%12] ^= s[i]
		s[i] = bits.RotateLeft64(s[i], spookyMixRot[i])
		s[(i+11)%12] += s[(i+1)%12]
	}
}

// spookyEndRot are the rotations of EndPartial, one per step.
var spookyEndRot = [12]int{44, 15, 34, 21, 38, 33, 10, 13, 38, 53, 42, 54}

// spookyEndPartial is the long hash's final mixing round. Step j (for
// j = 0..11, indices mod 12) adds s[j+1] to s[j+11], xors s[j+11] into
// s[j+2], and rotates s[j+1].
func spookyEndPartial(s *[12]uint64) {
	for j := 0; j < 12; j++ {
		s[(j+11)%12] += s[(j+1)%12]
		s[(j+2)%12] ^= s[(j+11)%12]
		s[(j+1)%12] = bits.RotateLeft64(s[(j+1)%12], spookyEndRot[j])
	}
}

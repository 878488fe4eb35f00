package ring

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"slices"
)

// Hash maps a key to 32 bits. The functions here compute exactly what
// twemproxy (nutcracker 0.5.0) computes for the hash of the same name,
// including its treatment of bytes above 0x7f as signed chars where its C
// code does so. They are pure and safe for concurrent use.
type Hash func(key []byte) uint32

// hashes maps twemproxy's names to the functions.
var hashes = map[string]Hash{
	"one_at_a_time": OneAtATime,
	"md5":           MD5,
	"crc16":         CRC16,
	"crc32":         CRC32,
	"crc32a":        CRC32a,
	"fnv1_64":       FNV1_64,
	"fnv1a_64":      FNV1a_64,
	"fnv1_32":       FNV1_32,
	"fnv1a_32":      FNV1a_32,
	"hsieh":         Hsieh,
	"murmur":        Murmur,
	"jenkins":       Jenkins,
}

// HashNamed returns the hash function twemproxy calls name.
func HashNamed(name string) (Hash, error) {
	h, ok := hashes[name]
	if !ok {
		return nil, &unknownError{what: "hash", name: name}
	}
	return h, nil
}

// HashNames lists the names HashNamed accepts, sorted.
func HashNames() []string {
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// schar is b read as a C (signed) char and widened to 32 bits.
func schar(b byte) uint32 { return uint32(int32(int8(b))) }

// OneAtATime is Bob Jenkins' one-at-a-time hash.
func OneAtATime(key []byte) uint32 {
	var v uint32
	for _, b := range key {
		v += schar(b)
		v += v << 10
		v ^= v >> 6
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	return v
}

// MD5 is the first four bytes of the key's MD5 digest, little-endian.
func MD5(key []byte) uint32 {
	sum := md5.Sum(key)
	return binary.LittleEndian.Uint32(sum[:4])
}

// crc16Table is the table of the CRC-16 with polynomial 0x1021 (XMODEM).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC16 is twemproxy's crc16: the XMODEM CRC computed in a 32-bit register
// that is never masked, so bits above the low 16 are kept.
func CRC16(key []byte) uint32 {
	var crc uint32
	for _, b := range key {
		crc = crc<<8 ^ uint32(crc16Table[(crc>>8^uint32(b))&0xff])
	}
	return crc
}

// CRC32 is libmemcached's crc32: bits 16..30 of the IEEE CRC-32.
func CRC32(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

// CRC32a is the full IEEE CRC-32.
func CRC32a(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}

const (
	fnv64Init  = 0xcbf29ce484222325
	fnv64Prime = 0x100000001b3
	fnv32Init  = 2166136261
	fnv32Prime = 16777619
)

// FNV1_64 is 64-bit FNV-1 truncated to its low 32 bits.
func FNV1_64(key []byte) uint32 {
	h := uint64(fnv64Init)
	for _, b := range key {
		h *= fnv64Prime
		h ^= uint64(int64(int8(b)))
	}
	return uint32(h)
}

// FNV1a_64 is twemproxy's fnv1a_64, which runs FNV-1a in 32 bits with the
// 64-bit offset basis and prime truncated to 32 bits.
func FNV1a_64(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h ^= schar(b)
		h *= fnv64Prime & 0xffffffff
	}
	return h
}

// FNV1_32 is 32-bit FNV-1.
func FNV1_32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h *= fnv32Prime
		h ^= schar(b)
	}
	return h
}

// FNV1a_32 is 32-bit FNV-1a.
func FNV1a_32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h ^= schar(b)
		h *= fnv32Prime
	}
	return h
}

// Hsieh is Paul Hsieh's SuperFastHash with a zero seed.
func Hsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	get16 := func(p []byte) uint32 { return uint32(p[1])<<8 | uint32(p[0]) }
	var h uint32
	rem := len(key) & 3
	for n := len(key) >> 2; n > 0; n-- {
		h += get16(key)
		tmp := get16(key[2:])<<11 ^ h
		h = h<<16 ^ tmp
		key = key[4:]
		h += h >> 11
	}
	switch rem {
	case 3:
		h += get16(key)
		h ^= h << 16
		h ^= schar(key[2]) << 18
		h += h >> 11
	case 2:
		h += get16(key)
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

// Murmur is MurmurHash2 seeded with 0xdeadbeef times the key length.
func Murmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := 0xdeadbeef*n ^ n
	for len(key) >= 4 {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		key = key[4:]
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Jenkins is Bob Jenkins' lookup3 hashlittle with initial value 13.
func Jenkins(key []byte) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + 13
	b, c := a, a
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key)
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		a -= c
		a ^= bits.RotateLeft32(c, 4)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 6)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 8)
		b += a
		a -= c
		a ^= bits.RotateLeft32(c, 16)
		c += b
		b -= a
		b ^= bits.RotateLeft32(a, 19)
		a += c
		c -= b
		c ^= bits.RotateLeft32(b, 4)
		b += a
		key = key[12:]
	}
	if len(key) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

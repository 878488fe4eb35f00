package proxy

// chooser maps a key to one of n destinations: a PoolRoute's server, a
// HashRoute's child. It must not allocate.
//
// TODO(ring): the implementations here are placeholders until package
// ring has mcrouter's hashes (ring.Ch3, ring.Crc32, ring.WeightedCh3,
// ring.KeyFraction); newChooser and keyFraction are then the only two
// places to change.
type chooser interface {
	choose(key []byte, n int) int
}

// newChooser returns the chooser for an mcrouter hash_func ("Ch3",
// "Crc32", "WeightedCh3"; empty is Ch3) with salt appended to each key.
func newChooser(fn, salt string, weights []float64) chooser {
	_ = fn      // placeholder: every hash is fnv1a until ring has mcrouter's
	_ = weights // placeholder: see chooser
	return fnvChooser{salt: salt}
}

// fnvChooser is a placeholder chooser: FNV-1a over the key and salt,
// modulo n.
type fnvChooser struct{ salt string }

func (f fnvChooser) choose(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv1a(fnvOffset, key)
	for i := 0; i < len(f.salt); i++ {
		h = (h ^ uint64(f.salt[i])) * fnvPrime
	}
	return int(h % uint64(n))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// keyFraction maps a key to [0,1) for shadowing's key_fraction_range
// (placeholder for ring.KeyFraction, see chooser).
func keyFraction(key []byte) float64 {
	h := fnv1a(fnvOffset, key)
	// A 64-bit finaliser: FNV's high bits vary little between keys
	// that differ in their last byte.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

package proxy

import "github.com/corvidcache/corvid/ring"

// chooser maps a key to one of n destinations: a PoolRoute's server, a
// HashRoute's child. It must not allocate.
type chooser interface {
	choose(key []byte, n int) int
}

// newChooser returns the chooser for an mcrouter hash_func ("Ch3",
// "Crc32", "WeightedCh3"; empty is Ch3) with salt appended to each key.
// As mcrouter, it hashes the key's routing part (ring.RoutingKey).
func newChooser(fn, salt string, weights []float64) chooser {
	switch fn {
	case "Crc32":
		return mcChooser{salt: salt, fn: crc32Fn}
	case "WeightedCh3":
		return mcChooser{salt: salt, fn: weightedFn, weights: weights}
	default:
		return mcChooser{salt: salt, fn: ch3Fn}
	}
}

type mcHash uint8

const (
	ch3Fn mcHash = iota
	crc32Fn
	weightedFn
)

// mcChooser is one of mcrouter's hash functions of package ring.
type mcChooser struct {
	salt    string
	fn      mcHash
	weights []float64
}

// maxStackSalted bounds the salted keys built on the stack; longer ones
// are built on the heap.
const maxStackSalted = 320

func (m mcChooser) choose(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	k := ring.RoutingKey(key)
	if m.salt != "" {
		var stack [maxStackSalted]byte
		buf := stack[:0]
		if len(k)+len(m.salt) > len(stack) {
			buf = make([]byte, 0, len(k)+len(m.salt))
		}
		k = append(append(buf, k...), m.salt...)
	}
	switch m.fn {
	case crc32Fn:
		return ring.Crc32(k, n)
	case weightedFn:
		if len(m.weights) == n {
			return ring.WeightedCh3(k, m.weights)
		}
		// Weights that do not match the destinations (a config the
		// loader let through): every destination weighs 1.
		return ring.Ch3(k, min(n, ring.FurcMaxPoolSize))
	default:
		return ring.Ch3(k, min(n, ring.FurcMaxPoolSize))
	}
}

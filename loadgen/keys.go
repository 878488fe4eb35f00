package loadgen

import (
	"math"
	"math/rand/v2"
)

// keyDist draws key numbers in [0, n). It holds only constants, so one
// keyDist is shared by every connection, each with its own random source.
type keyDist struct {
	n     uint64
	theta float64 // 0: uniform; (0,1): Gray et al.; > 1: rand.Zipf
	// Gray et al., "Quickly generating billion-record synthetic databases"
	// (SIGMOD 1994), as YCSB uses it for theta < 1.
	zetan, alpha, eta, half float64
}

func newKeyDist(n int, theta float64) *keyDist {
	d := &keyDist{n: uint64(n), theta: theta}
	if theta > 0 && theta < 1 {
		for i := 1; i <= n; i++ {
			d.zetan += 1 / math.Pow(float64(i), theta)
		}
		zeta2 := 1 + math.Pow(0.5, theta)
		d.alpha = 1 / (1 - theta)
		d.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/d.zetan)
		d.half = zeta2
	}
	return d
}

// sampler returns a function drawing key numbers from d with r. Rank 0 is
// the hottest key.
func (d *keyDist) sampler(r *rand.Rand) func() uint64 {
	switch {
	case d.theta == 0 || d.n == 1:
		return func() uint64 { return r.Uint64N(d.n) }
	case d.theta > 1:
		z := rand.NewZipf(r, d.theta, 1, d.n-1)
		return z.Uint64
	}
	return func() uint64 {
		u := r.Float64()
		uz := u * d.zetan
		if uz < 1 {
			return 0
		}
		if uz < d.half {
			return 1
		}
		k := uint64(float64(d.n) * math.Pow(d.eta*u-d.eta+1, d.alpha))
		return min(k, d.n-1)
	}
}

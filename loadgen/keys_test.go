package loadgen

import (
	"math/rand/v2"
	"testing"
)

func TestKeyDist(t *testing.T) {
	const n, draws = 1000, 200000
	for _, theta := range []float64{0, 0.5, 0.99, 1.5} {
		d := newKeyDist(n, theta)
		next := d.sampler(rand.New(rand.NewPCG(3, 4)))
		count := make([]int, n)
		for range draws {
			k := next()
			if k >= n {
				t.Fatalf("theta %g: key %d outside [0, %d)", theta, k, n)
			}
			count[k]++
		}
		head := count[0] + count[1] + count[2] + count[3] + count[4]
		switch {
		case theta == 0:
			// Uniform: the first five keys get about 5/1000 of the draws.
			if head < draws*4/1000 || head > draws*6/1000 {
				t.Errorf("uniform: first 5 keys drew %d of %d", head, draws)
			}
		default:
			if !(count[0] > count[9] && count[9] > count[99] && count[99] > count[999]) {
				t.Errorf("theta %g: ranks 0, 9, 99, 999 drew %d, %d, %d, %d: not decreasing",
					theta, count[0], count[9], count[99], count[999])
			}
		}
	}
	// Zipf 0.99 over 1000 keys: rank 0 gets 1/H(1000, 0.99) ≈ 13% of draws.
	d := newKeyDist(n, 0.99)
	next := d.sampler(rand.New(rand.NewPCG(5, 6)))
	zero := 0
	for range draws {
		if next() == 0 {
			zero++
		}
	}
	if share := float64(zero) / draws; share < 0.11 || share > 0.15 {
		t.Errorf("zipf 0.99: key 0 drew %.3f of the draws, want about 0.13", share)
	}
}

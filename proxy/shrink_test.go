package proxy

import (
	"slices"
	"testing"
)

// TestShrinkBatches checks the differential tests' shrinker: it keeps
// only what the failure needs, and ends the scenario at the batch of the
// last mismatch found.
func TestShrinkBatches(t *testing.T) {
	// A mismatch wherever 7 follows 3 in one batch, in that batch.
	fails := func(b [][]int, _ []int64) int {
		for i, batch := range b {
			if j := slices.Index(batch, 3); j >= 0 && slices.Contains(batch[j:], 7) {
				return i
			}
		}
		return -1
	}
	batches := [][]int{{1, 2}, {3, 9, 7, 4}, {5}, {6}}
	got, splits := shrinkBatches(batches, []int64{10, 11, 12, 13}, 1, fails)
	if want := [][]int{{3, 7}}; !slices.EqualFunc(got, want, slices.Equal) || !slices.Equal(splits, []int64{11}) {
		t.Errorf("shrunk to %v %v, want %v [11]", got, splits, want)
	}
	if !slices.Equal(batches[1], []int{3, 9, 7, 4}) {
		t.Errorf("the scenario given was changed: %v", batches)
	}
}

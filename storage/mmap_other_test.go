//go:build !linux || race

package storage

// arenaRegionPages is how many pages the arena test takes; the heap arena
// has no regions.
const arenaRegionPages = 8

//go:build linux && !race

package storage

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

const arenaRegionPages = arenaRegion / SlabPageSize

// Slab pages come from regions aligned to huge pages, which the kernel
// counts as eligible for transparent huge pages when the cache asks for
// them, and not when it does not.
func TestPageArenaAsksForHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !strings.Contains(string(mode), "[madvise]") {
		t.Skipf("transparent huge pages are not in madvise mode here (%q)", mode)
	}
	for _, huge := range []bool{true, false} {
		a := newPageArena(huge)
		p, err := a.alloc(SlabPageSize)
		if err != nil {
			t.Fatal(err)
		}
		addr := uintptr(unsafe.Pointer(&p[0]))
		if addr%hugePageSize != 0 {
			t.Errorf("first page at %#x is not aligned to a huge page", addr)
		}
		p[0] = 1
		eligible, err := thpEligible(addr)
		if err != nil {
			t.Fatal(err)
		}
		if eligible != huge {
			t.Errorf("huge=%v: THPeligible is %v", huge, eligible)
		}
		a.close()
	}
}

// thpEligible reports the THPeligible field of the mapping holding addr in
// /proc/self/smaps.
func thpEligible(addr uintptr) (bool, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return false, err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "THPeligible:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "THPeligible:")) == "1", nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, fmt.Errorf("no THPeligible line for %#x in /proc/self/smaps", addr)
}

// A hash table of a huge page or more is eligible for huge pages unless
// the cache is told not to use them.
func TestHashTableAsksForHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !strings.Contains(string(mode), "[madvise]") {
		t.Skipf("transparent huge pages are not in madvise mode here (%q)", mode)
	}
	for _, huge := range []bool{true, false} {
		c := newCache(t, Config{HashPowerInit: 20, NoHugePages: !huge, NoCrawler: true})
		s := &c.stripes[0]
		s.mu.Lock()
		s.buckets[0] = 0 // touch it
		addr := uintptr(unsafe.Pointer(&s.buckets[0]))
		s.mu.Unlock()
		eligible, err := thpEligible(addr)
		if err != nil {
			t.Fatal(err)
		}
		if eligible != huge {
			t.Errorf("huge=%v: the table's THPeligible is %v", huge, eligible)
		}
	}
}

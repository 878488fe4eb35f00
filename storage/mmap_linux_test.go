//go:build linux && !race

package storage

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
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

// Once a store takes a page, the next prefaultAhead bytes of the arena are
// made resident in the background, but not past the memory limit (rounded
// up to a huge page).
func TestPrefaultStaysAheadWithinTheLimit(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		ahead int
	}{{64 << 20, prefaultAhead}, {3 << 20, 2 << 20}} {
		t.Run(fmt.Sprint(tc.limit>>20, "MB"), func(t *testing.T) {
			c := newCache(t, Config{NoCrawler: true, MemoryLimit: tc.limit})
			mustSet(t, c, "k", "v") // takes the first page
			c.arena.mu.Lock()
			rest := c.arena.rest
			c.arena.mu.Unlock()
			// With huge pages the kernel faults in whole ones: what lies
			// past ahead in its last huge page may be resident too.
			lo := uintptr(unsafe.Pointer(&rest[0]))
			next := int((lo+uintptr(tc.ahead)+hugePageSize-1)&^(hugePageSize-1) - lo)
			ahead, beyond := rest[:tc.ahead], rest[next:next+hugePageSize]
			for i := 0; resident(t, ahead) < len(ahead)/4096; i++ {
				if i == 500 {
					t.Fatalf("%d of %d pages ahead resident after 5s", resident(t, ahead), len(ahead)/4096)
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if n := resident(t, beyond); n != 0 {
				t.Fatalf("%d pages resident beyond the %d bytes ahead", n, tc.ahead)
			}
		})
	}
}

// resident returns how many of b's 4 KiB pages are in memory (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+4095)/4096)
	_, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

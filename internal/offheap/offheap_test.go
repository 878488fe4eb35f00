package offheap

import (
	"bytes"
	"testing"
)

func TestAllocFree(t *testing.T) {
	before := InUse()
	b := Alloc(100_000)
	if len(b) != Size(100_000) || len(b) < 100_000 || len(b)%pageSize != 0 {
		t.Fatalf("Alloc(100000): %d bytes, page size %d", len(b), pageSize)
	}
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("a new buffer is not zeroed")
	}
	for i := range b {
		b[i] = byte(i)
	}
	if Mapped && InUse()-before != int64(len(b)) {
		t.Fatalf("InUse grew by %d, want %d", InUse()-before, len(b))
	}
	if Owns(b) != Mapped || Owns(b[1:]) {
		t.Fatalf("Owns(b) = %v, Owns(b[1:]) = %v; mapped: %v", Owns(b), Owns(b[1:]), Mapped)
	}
	Free(b[:10]) // a shorter slice of the same buffer frees it whole
	if Owns(b) {
		t.Fatal("Owns a freed buffer")
	}
	if got := InUse(); got != before {
		t.Fatalf("InUse after Free: %d, want %d", got, before)
	}
}

func TestFreeIgnoresOtherMemory(t *testing.T) {
	b := Alloc(pageSize)
	before := InUse()
	heap := make([]byte, 1<<20)
	Free(heap)
	Free(b[1:]) // not its start: not the buffer
	Free(nil)
	heap[0] = 1 // still ours
	if InUse() != before {
		t.Fatalf("InUse changed from %d to %d freeing memory Alloc did not return", before, InUse())
	}
	Free(b)
}

func TestAllocZero(t *testing.T) {
	if b := Alloc(0); b != nil {
		t.Fatalf("Alloc(0) = %d bytes", len(b))
	}
}

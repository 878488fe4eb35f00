package storage

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestPinnedReadsUnderChurn reads pinned chained values piece by piece,
// yielding between pieces, while other goroutines overwrite (by Store and
// by Incoming), delete and flush their keys, fill the cache past its limit
// and move pages between classes: every value read is one version whole,
// and once the readers are done nothing stays pinned and no chunk leaks.
func TestPinnedReadsUnderChurn(t *testing.T) {
	c := chainCache(t, Config{MemoryLimit: 12 << 20, ItemSizeMax: 2 << 20, SlabChunkMax: 64 << 10})
	const keys = 4
	key := func(i int) []byte { return fmt.Appendf(nil, "k%d", i%keys) }
	largest := stats(c).Classes[len(stats(c).Classes)-1].ID
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				n := 100<<10 + (i*7919+w*104729)%(1<<20)
				v := pattern(n, byte(w*50+i))
				switch i % 10 {
				case 3:
					c.Delete(key(i))
				case 5:
					in, err := c.NewIncoming(ModeSet, key(i), 0, 0, n)
					if err != nil || in == nil {
						continue
					}
					if _, err := in.Write(append(v, '\r', '\n')); err != nil {
						in.Abort()
						continue
					}
					c.StoreIncoming(in, 0, MetaStoreOptions{})
				case 7:
					if w == 0 {
						c.FlushAll(0)
					}
				default:
					c.Store(ModeSet, key(i), 0, 0, v, 0)
				}
				if w == 1 && i%4 == 0 {
					c.Reassign(largest, 1)
					c.Reassign(-1, largest)
				}
			}
		}()
	}
	var readers sync.WaitGroup
	stop := make(chan struct{})
	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var p Pinned
				ok := false
				if (i+r)%2 == 0 {
					c.Get(key(i), func(it Item) { p, ok = it.Pin(true) })
				} else {
					c.MetaGet(key(i), false, false, func(e MetaEntry) MetaOutcome {
						p, ok = e.Pin(true)
						return MetaHit
					})
				}
				if !ok {
					continue
				}
				var got []byte
				for p.Len() > 0 {
					d := p.Next()
					got = append(got, d...)
					p.Skip(len(d))
					runtime.Gosched()
				}
				p.Release()
				n := len(got) - 2
				if n < 1 || !bytes.Equal(got[:n], pattern(n, got[0])) || string(got[n:]) != "\r\n" {
					errs <- fmt.Errorf("%s: a %d-byte value read mixed or damaged", key(i), n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.PinnedItems(); n != 0 {
		t.Fatalf("%d items pinned after every release", n)
	}
	st := stats(c)
	t.Logf("moved %d busy %d reflocked %d evictions %d", st.SlabsMoved, st.SlabReassignBusyItems, st.Classes[len(st.Classes)-1].LRUTailReflocked, st.Evictions)
	want := map[string][]byte{}
	for i := range keys {
		want[string(key(i))] = nil
	}
	checkChains(t, c, want)
}

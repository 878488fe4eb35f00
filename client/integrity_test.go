package client

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corvidcache/corvid/internal/testutil"
	"github.com/corvidcache/corvid/server"
)

var (
	integrityTime = flag.Duration("integrity.time", 0,
		"how long each TestKeyIntegrity case runs (default 1s, 300ms with -short)")
	integritySeed = flag.Uint64("integrity.seed", 0, "TestKeyIntegrity's random seed (default: from the clock)")
)

// integrityOps are the operations TestKeyIntegrity mixes.
var integrityOps = []string{"Get", "Set", "GetMulti", "MetaGet", "MetaSet", "MetaGetMulti", "Delete"}

// integrityKeys is how many keys TestKeyIntegrity's workers share.
const integrityKeys = 64

// integrityValue returns a value for key that names the key, so that a
// value read under another key is recognised, padded to a random length
// that crosses the client's buffer sizes now and then.
func integrityValue(r *rand.Rand, key string) []byte {
	v := fmt.Appendf(nil, "%s:%d:", key, r.Uint32())
	n := r.IntN(64)
	if r.IntN(8) == 0 {
		n = r.IntN(3 * defaultReadBufferSize)
	}
	for range n {
		v = append(v, byte('a'+r.IntN(26)))
	}
	return v
}

// integrityFlags are the flags stored with key's values: a hash of the key
// without the compression bit.
func integrityFlags(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32() &^ DefaultCompressFlag
}

// oracle checks every item a call returns against the key it was asked
// for.
type oracle struct {
	t          *testing.T
	mismatches atomic.Int64
	calls      [7]atomic.Int64 // by integrityOps index
	errs       [7]atomic.Int64
	hits       [7]atomic.Int64
}

func (o *oracle) check(op int, key string, it *Item) {
	o.hits[op].Add(1)
	if it.Key == key && strings.HasPrefix(string(it.Value), key+":") && it.Flags == integrityFlags(key) {
		return
	}
	if o.mismatches.Add(1) <= 10 {
		v := it.Value
		if len(v) > 40 {
			v = v[:40]
		}
		o.t.Errorf("%s(%q) returned key %q flags %d value %q…", integrityOps[op], key, it.Key, it.Flags, v)
	}
}

// runIntegrity runs workers doing random operations on random clients of
// cs until d has passed. With cancel, a third of the calls get a context
// that ends within a few milliseconds, or is cancelled from another
// goroutine.
func runIntegrity(t *testing.T, cs []*Client, d time.Duration, cancel bool) {
	seed := *integritySeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-integrity.seed)", seed)
	o := &oracle{t: t}
	keys := make([]string, integrityKeys)
	for i := range keys {
		keys[i] = fmt.Sprint("ik:", i)
	}
	const workers = 8
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; i < 1e6 && time.Now().Before(deadline); i++ {
				ctx, stop := context.Background(), func() {}
				if cancel && r.IntN(3) == 0 {
					if r.IntN(2) == 0 {
						ctx, stop = context.WithTimeout(ctx, time.Duration(r.IntN(3000))*time.Microsecond)
					} else {
						var cf context.CancelFunc
						ctx, cf = context.WithCancel(ctx)
						tm := time.AfterFunc(time.Duration(r.IntN(2000))*time.Microsecond, cf)
						stop = func() { tm.Stop(); cf() }
					}
				}
				integrityCall(ctx, cs[r.IntN(len(cs))], o, r, keys)
				stop()
			}
		}()
	}
	wg.Wait()
	var summary []string
	var hits int64
	for i, op := range integrityOps {
		summary = append(summary, fmt.Sprintf("%s %d calls %d errors %d hits", op,
			o.calls[i].Load(), o.errs[i].Load(), o.hits[i].Load()))
		hits += o.hits[i].Load()
	}
	t.Log(strings.Join(summary, "; "))
	if hits == 0 {
		t.Error("no call returned a value: nothing was checked")
	}
}

// integrityCall makes one random call and checks what it returns.
func integrityCall(ctx context.Context, c *Client, o *oracle, r *rand.Rand, keys []string) {
	op := r.IntN(len(integrityOps))
	key := keys[r.IntN(len(keys))]
	multi := func() []string {
		ks := make([]string, 1+r.IntN(12))
		for i := range ks {
			ks[i] = keys[r.IntN(len(keys))]
		}
		return ks
	}
	o.calls[op].Add(1)
	var err error
	switch integrityOps[op] {
	case "Get":
		var it *Item
		if it, err = c.Get(ctx, key); err == nil {
			o.check(op, key, it)
		}
	case "Set":
		err = c.Set(ctx, &Item{Key: key, Value: integrityValue(r, key), Flags: integrityFlags(key)})
	case "MetaSet":
		err = c.MetaSet(ctx, &Item{Key: key, Value: integrityValue(r, key), Flags: integrityFlags(key)}, MetaSetOptions{})
	case "Delete":
		err = c.Delete(ctx, key)
	case "MetaGet":
		var mi *MetaItem
		if mi, err = c.MetaGet(ctx, key, MetaGetOptions{}); err == nil {
			o.check(op, key, &mi.Item)
		}
	case "GetMulti", "MetaGetMulti":
		ks := multi()
		var m map[string]*Item
		if integrityOps[op] == "GetMulti" {
			m, err = c.GetMulti(ctx, ks)
		} else {
			m, err = c.MetaGetMulti(ctx, ks)
		}
		asked := map[string]bool{}
		for _, k := range ks {
			asked[k] = true
		}
		for k, it := range m {
			if !asked[k] {
				o.t.Errorf("%s(%q) returned key %q, not asked for", integrityOps[op], ks, k)
			}
			o.check(op, k, it)
		}
	}
	if err != nil {
		o.errs[op].Add(1)
	}
}

// integrityDuration is how long one TestKeyIntegrity case runs.
func integrityDuration() time.Duration {
	switch {
	case *integrityTime > 0:
		return *integrityTime
	case testing.Short():
		return 300 * time.Millisecond
	}
	return time.Second
}

// TestKeyIntegrity checks that no call ever returns a value stored under
// another key, whatever goes wrong on the way: against fake servers that
// spoil replies in each way in turn, and against corvid and memcached
// with short timeouts and cancelled contexts. Errors are fine.
func TestKeyIntegrity(t *testing.T) {
	d := integrityDuration()
	t.Run("fake", func(t *testing.T) {
		for fl := faultUnexpected; fl < numFaults; fl++ {
			t.Run(fl.String(), func(t *testing.T) {
				var addrs []string
				for range 2 {
					seed := uint64(time.Now().UnixNano())
					var mu sync.Mutex
					r := rand.New(rand.NewPCG(seed, uint64(len(addrs))))
					f := startFake(t, func(int, string) fault {
						mu.Lock()
						defer mu.Unlock()
						if r.IntN(20) == 0 {
							return fl
						}
						return faultNone
					})
					f.delay = 150 * time.Millisecond
					addrs = append(addrs, f.addr)
				}
				c := newClient(t, addrs, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond })
				runIntegrity(t, []*Client{c}, d, false)
			})
		}
	})
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			addrs := b.start(t, 2)
			// Most calls have time; some time out after a millisecond.
			c := newClient(t, addrs, nil)
			hasty := newClient(t, addrs, func(cfg *Config) { cfg.Timeout = time.Millisecond })
			runIntegrity(t, []*Client{c, c, c, hasty}, d, true)
		})
	}
	// A corvid server restarted under load.
	t.Run("corvid restarts", func(t *testing.T) {
		k := startKillable(t, "127.0.0.1:0")
		other := testutil.StartCorvid(t, server.Config{})
		c := newClient(t, []string{k.addr, other}, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			runIntegrity(t, []*Client{c}, d, false)
		}()
		for i := 0; i < 3; i++ {
			select {
			case <-done:
				return
			case <-time.After(d / 4):
			}
			k.stop()
			k = startKillable(t, k.addr)
		}
		<-done
	})
}
